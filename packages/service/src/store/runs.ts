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
  readonly status: Exclude<RunStatus, 'running'>;
  readonly errorCode?: string | undefined;
  readonly errorMessage?: string | undefined;
}

/** One row per sync run: when, what it did, how it ended. `filter` limits what forAccount sees (Store.restrictedTo). */
export class RunStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly filter: AccountFilter = EVERY_ACCOUNT,
  ) {}

  async start(accountId: number, now: number): Promise<number> {
    const { id } = await this.db
      .insertInto('sync_runs')
      .values({ account_id: accountId, started_at: now, status: 'running' })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  /**
   * Records the run's end, and its events (`sync.failed`) in the same transaction: a run is
   * never recorded failed without its event, whatever moment a crash picks.
   */
  async finish(runId: number, end: RunEnd, now: number, events: readonly NewWebhookEvent[] = []): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
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

  /** Newest first. */
  async forAccount(accountId: number, limit = 50): Promise<SyncRun[]> {
    const condition = accountCondition('sync_runs.account_id', this.filter);
    const query = this.db.selectFrom('sync_runs').selectAll().where('account_id', '=', accountId);
    return (condition === undefined ? query : query.where(condition)).orderBy('id', 'desc').limit(limit).execute();
  }
}
