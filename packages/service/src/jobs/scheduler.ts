import type { JobStatus } from '../store/schema.js';

/** A sync job as the API shows it. */
export interface SyncJobView {
  readonly id: number;
  readonly accountId: number;
  readonly status: JobStatus;
  /** `schedule` (the account's interval), `api` (POST /v1/accounts/{id}/sync), `retry` (after a failure). */
  readonly reason: string;
  /** ISO 8601, UTC, with milliseconds, as every time the API gives. */
  readonly queuedAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** The sync run it made (GET /v1/accounts/{id}/runs), once it started. */
  readonly runId: number | null;
  readonly error: string | null;
}

/**
 * Runs account syncs in the background. The embedded default (in-process.ts) keeps timers in
 * this process; a distributed job engine on PostgreSQL can implement the same interface to run
 * syncs across machines. Either way: at most one sync per account at a time (POP3 locks the
 * maildrop; two would fight, and sync/lock.ts refuses the second), a bounded number at once.
 */
export interface SyncScheduler {
  /**
   * Queues a sync of the account now and returns its job. Idempotent: while a job of the
   * account is queued or running, that job is returned and nothing new is queued.
   */
  enqueue(accountId: number, reason: string): Promise<SyncJobView>;
  /** Throws JobNotFoundError. */
  job(id: number): Promise<SyncJobView>;
  /** Jobs waiting to run. */
  queueDepth(): number;
  /** Starts running jobs and the accounts' intervals. */
  start(): void;
  /**
   * Stops taking jobs; running syncs are asked to stop at the next message boundary (commit,
   * DELE what is committed, QUIT) and awaited for up to `graceMs`, then abandoned: their
   * connections are dropped without QUIT, so the server keeps every message (the sync promise
   * holds either way).
   */
  stop(graceMs: number): Promise<void>;
}

export class JobNotFoundError extends Error {
  override readonly name = 'JobNotFoundError';
  readonly code = 'JOB_NOT_FOUND';
}
