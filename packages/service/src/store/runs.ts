import type { Kysely } from 'kysely';
import { insertWebhookEvents, type NewWebhookEvent } from './webhook-events.js';
import { accountCondition, EVERY_ACCOUNT, type AccountFilter } from './account-filter.js';
import type { Database, RunStatus, SyncRun } from './schema.js';

export interface RunCounts {
  readonly sessions: number;
  readonly newMessages: number;
  readonly alreadyHad: number;
  readonly deleted: number;
  readonly skipped: number;
  readonly bytes: number;
}

export interface RunEnd extends RunCounts {
  readonly status: Exclude<RunStatus, 'running' | 'interrupted'>;
  readonly errorCode?: string | undefined;
  readonly errorMessage?: string | undefined;
}

/** One row per sync run: when, what it did, how it ended. `filter` limits what forAccount sees (Store.restrictedTo). */
export class RunStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly filter: AccountFilter = EVERY_ACCOUNT,
  ) {}

  /**
   * A new run of the account. The caller holds the account's lock (sync/lock.ts), so a run of the
   * account still marked `running` is one whose process died holding it (a SIGKILL, a lost
   * machine): it is closed as `interrupted` here, whoever syncs the account next (either
   * scheduler, or the CLI), rather than left `running` for ever.
   */
  async start(accountId: number, now: number): Promise<number> {
    return inTransaction(this.db, async (trx) => {
      await trx.updateTable('sync_runs').set(interruptedAt(now)).where('account_id', '=', accountId).where('status', '=', 'running').execute();
      const { id } = await trx
        .insertInto('sync_runs')
        .values({ account_id: accountId, started_at: now, status: 'running' })
        .returning('id')
        .executeTakeFirstOrThrow();
      return id;
    });
  }

  /**
   * Records the run's end, and its events (`sync.failed`) in the same transaction: a run is
   * never recorded failed without its event, whatever moment a crash picks.
   */
  async finish(runId: number, end: RunEnd, now: number, events: readonly NewWebhookEvent[] = []): Promise<void> {
    await inTransaction(this.db, async (trx) => {
      await this.recordEnd(trx, runId, end, now);
      if (events.length > 0) await insertWebhookEvents(trx, events, now);
    });
  }

  private async recordEnd(db: Kysely<Database>, runId: number, end: RunEnd, now: number): Promise<void> {
    await db
      .updateTable('sync_runs')
      .set({
        finished_at: now,
        status: end.status,
        sessions: end.sessions,
        new_messages: end.newMessages,
        already_had: end.alreadyHad,
        deleted: end.deleted,
        skipped: end.skipped,
        bytes: end.bytes,
        error_code: end.errorCode ?? null,
        error_message: end.errorMessage ?? null,
      })
      .where('id', '=', runId)
      .execute();
  }

  /**
   * Closes as `interrupted` the runs left `running` by a process that died: their account holds
   * no unexpired lease (a running sync renews it, sync/lock.ts), and they started at least
   * `graceMs` ago. Returns the accounts whose runs were closed.
   */
  async closeInterrupted(now: number, graceMs: number): Promise<number[]> {
    const rows = await this.db
      .updateTable('sync_runs')
      .set(interruptedAt(now))
      .where('status', '=', 'running')
      .where('started_at', '<', now - graceMs)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb.selectFrom('accounts').select('accounts.id').whereRef('accounts.id', '=', 'sync_runs.account_id').where('accounts.lock_owner', 'is not', null).where('accounts.lock_expires', '>=', now),
          ),
        ),
      )
      .returning('account_id')
      .execute();
    return [...new Set(rows.map((r) => r.account_id))];
  }

  /** Newest first. */
  async forAccount(accountId: number, limit = 50): Promise<SyncRun[]> {
    const condition = accountCondition('sync_runs.account_id', this.filter);
    const query = this.db.selectFrom('sync_runs').selectAll().where('account_id', '=', accountId);
    return (condition === undefined ? query : query.where(condition)).orderBy('id', 'desc').limit(limit).execute();
  }
}

/** In a transaction of its own, or in the caller's (Store.transaction): Kysely does not nest them. */
function inTransaction<T>(db: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db) : db.transaction().execute(work);
}

/** How a run whose process died is closed. */
function interruptedAt(now: number) {
  return {
    status: 'interrupted',
    finished_at: now,
    error_code: 'SYNC_INTERRUPTED',
    error_message: 'the process running this sync stopped; the account was taken up again',
  } as const;
}
