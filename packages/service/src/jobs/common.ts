import type { Logger } from 'pino';
import { isoTime, isoTimeOrNull } from '../iso-time.js';
import type { Account, SyncJob } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { Backoff } from './backoff.js';
import { nextSync, type JobOutcome } from './reschedule.js';
import { JobNotFoundError, type SyncJobView } from './scheduler.js';

/** What both schedulers (in-process.ts, pg-boss.ts) share: the job view, the rescheduling, the shutdown wait. */

/** After the grace time, abandoned syncs get this long to drop their connections and record the run. */
export const ABANDON_WAIT_MS = 5_000;

export function jobView(row: SyncJob): SyncJobView {
  return {
    id: row.id,
    accountId: row.account_id,
    status: row.status,
    reason: row.reason,
    queuedAt: isoTime(row.queued_at),
    startedAt: isoTimeOrNull(row.started_at),
    finishedAt: isoTimeOrNull(row.finished_at),
    runId: row.run_id,
    error: row.error,
  };
}

/** The job's row as the API shows it; throws JobNotFoundError. */
export async function loadJob(store: Store, id: number): Promise<SyncJobView> {
  const row = await store.jobs.get(id);
  if (row === undefined) throw new JobNotFoundError(`no sync job ${id}`);
  return jobView(row);
}

/**
 * Seconds between the account's scheduled syncs: its own interval, but never under the floor
 * (an account stored before the floor existed may have less) nor under the server's
 * LOGIN-DELAY (a login sooner is refused with [LOGIN-DELAY], and some providers lock accounts
 * that keep trying). Null: synced only on request.
 */
export function effectiveInterval(row: Pick<Account, 'sync_interval' | 'login_delay'>, minInterval: number): number | null {
  if (row.sync_interval === null) return null;
  return Math.max(row.sync_interval, minInterval, row.login_delay ?? 0);
}

/** Whether `work` settled within `ms`. */
export async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Writes when an account syncs next, from how its job ended (reschedule.ts), and counts its
 * failed syncs in a row for the backoff. The count lives in this process: it starts again from
 * zero after a restart, and, with several processes, on whichever process runs the account.
 */
export class Rescheduler {
  private readonly failures = new Map<number, number>();

  constructor(
    private readonly store: Store,
    private readonly backoff: Backoff,
    private readonly log: Logger,
    private readonly now: () => number,
    /** The floor under every interval, seconds (AccountService.minInterval, config sync.minInterval). */
    private readonly minInterval: number,
  ) {}

  /** Whether the account's last sync here failed (its next job is a `retry`). */
  failing(accountId: number): boolean {
    return this.failures.has(accountId);
  }

  /** Failed syncs of the account in a row, as this process counted them. */
  failuresOf(accountId: number): number {
    return this.failures.get(accountId) ?? 0;
  }

  /** The count apply() returned (a sync worker applies the outcome itself: jobs/sync-worker.ts). */
  record(accountId: number, failures: number): void {
    if (failures === 0) this.failures.delete(accountId);
    else this.failures.set(accountId, failures);
  }

  async reschedule(accountId: number, outcome: JobOutcome): Promise<void> {
    this.record(accountId, await this.apply(accountId, outcome, this.failuresOf(accountId)));
  }

  /** Writes the account's next sync from the outcome and `failures` before it; returns the failures in a row after it. */
  async apply(accountId: number, outcome: JobOutcome, failures: number): Promise<number> {
    const store = this.store;
    const row = await store.accounts.get(accountId).catch(() => undefined);
    if (row === undefined) return failures;
    const now = this.now();
    const next = nextSync(outcome, effectiveInterval(row, this.minInterval), failures, now, this.backoff);
    if (next.needsAttention) {
      this.log.warn({ account: accountId }, 'the server rejected the credentials: the account needs attention and is not synced until they change');
      await store.accounts.update(accountId, { needs_attention: 1 }, now);
    } else if (next.nextSyncAt !== undefined) {
      await store.accounts.update(accountId, { next_sync_at: next.nextSyncAt }, now);
    }
    return next.failures;
  }
}
