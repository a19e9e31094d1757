import { LEASE_MS } from '../sync/lock.js';
import { SyncError, type SyncReport } from '../sync/index.js';
import { backoffDelay, type Backoff } from './backoff.js';
import { credentialsRejected } from './failure.js';

/** How a job ended, as the scheduler needs to know it. */
export type JobOutcome =
  /** syncAccount ran and reported (its status says how it went). `abandoned`: cut off at shutdown. */
  | { readonly kind: 'report'; readonly report: SyncReport; readonly abandoned: boolean }
  /** Another process holds the account's sync lock (a `popwire sync`, another worker). */
  | { readonly kind: 'locked' }
  /** Not run: the account was paused, or marked as needing attention, after the job was queued. */
  | { readonly kind: 'skipped' }
  /** The run could not start or finish (the store failed, the account is gone). */
  | { readonly kind: 'error'; readonly error: unknown; readonly accountGone: boolean };

/** 30 s, 1 min, 2, 4 ... up to 1 h between attempts of an account whose syncs keep failing. */
export const DEFAULT_SYNC_BACKOFF: Backoff = { baseMs: 30_000, maxMs: 3_600_000, jitter: 0.5 };

export interface NextSync {
  /** Undefined: leave next_sync_at as it is. */
  readonly nextSyncAt?: number | undefined;
  readonly needsAttention?: true | undefined;
  /** Failed runs in a row, for the next backoff. */
  readonly failures: number;
}

/**
 * When the account syncs next, from how its job ended. Pure: the tests walk every case.
 *
 * - ok, stopped: one interval from now.
 * - deferred ([IN-USE], [LOGIN-DELAY]): when the server said (report.retryAfter).
 * - failed, credentials rejected: marked as needing attention and not rescheduled; the
 *   scheduler leaves it alone until its credentials change (AccountService.update clears the
 *   mark and makes it due).
 * - failed otherwise, or the store failed: backoff on the failures in a row, whatever the
 *   interval (an account with a long interval is retried sooner; a broken server is not hammered).
 * - locked: someone else is syncing it now; again after an interval, but no later than a lease,
 *   which is when a dead holder's claim runs out.
 * - abandoned at shutdown, skipped, account gone: unchanged.
 *
 * An account with no interval (synced only on request) is only ever marked, never rescheduled.
 */
export function nextSync(outcome: JobOutcome, intervalSeconds: number | null, failures: number, now: number, backoff: Backoff, random: () => number = Math.random): NextSync {
  const scheduled = intervalSeconds !== null;
  const interval = (intervalSeconds ?? 0) * 1000;
  switch (outcome.kind) {
    case 'skipped':
      return { failures };
    case 'locked':
      return { nextSyncAt: scheduled ? now + Math.min(interval, LEASE_MS) : undefined, failures };
    case 'error': {
      if (outcome.accountGone) return { failures };
      return { nextSyncAt: scheduled ? now + backoffDelay(failures + 1, backoff, random) : undefined, failures: failures + 1 };
    }
    case 'report': {
      const { report } = outcome;
      if (outcome.abandoned) return { failures };
      if (report.status === 'ok' || report.status === 'stopped') return { nextSyncAt: scheduled ? now + interval : undefined, failures: 0 };
      if (report.status === 'deferred') return { nextSyncAt: scheduled ? (report.retryAfter ?? now + interval) : undefined, failures };
      // The lease was lost mid-run (sync/lock.ts): another process has the account now.
      if (report.error instanceof SyncError && report.error.code === 'SYNC_LOCKED') return nextSync({ kind: 'locked' }, intervalSeconds, failures, now, backoff, random);
      if (credentialsRejected(report.error)) return { needsAttention: true, failures: failures + 1 };
      return { nextSyncAt: scheduled ? now + backoffDelay(failures + 1, backoff, random) : undefined, failures: failures + 1 };
    }
  }
}
