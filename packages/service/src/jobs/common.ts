import type { Logger } from 'pino';
import type { SyncJob } from '../store/schema.js';
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
    queuedAt: row.queued_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
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
  ) {}

  /** Whether the account's last sync here failed (its next job is a `retry`). */
  failing(accountId: number): boolean {
    return this.failures.has(accountId);
  }

  async reschedule(accountId: number, outcome: JobOutcome): Promise<void> {
    const store = this.store;
    const row = await store.accounts.get(accountId).catch(() => undefined);
    if (row === undefined) return;
    const now = this.now();
    const next = nextSync(outcome, row.sync_interval, this.failures.get(accountId) ?? 0, now, this.backoff);
    if (next.failures === 0) this.failures.delete(accountId);
    else this.failures.set(accountId, next.failures);
    if (next.needsAttention) {
      this.log.warn({ account: accountId }, 'the server rejected the credentials: the account needs attention and is not synced until they change');
      await store.accounts.update(accountId, { needs_attention: 1 }, now);
    } else if (next.nextSyncAt !== undefined) {
      await store.accounts.update(accountId, { next_sync_at: next.nextSyncAt }, now);
    }
  }
}
