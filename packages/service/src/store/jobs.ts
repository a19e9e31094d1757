import type { Kysely } from 'kysely';
import { accountCondition, EVERY_ACCOUNT, type AccountFilter } from './account-filter.js';
import type { Account, Database, SyncJob } from './schema.js';

/**
 * Sync jobs: a request to sync an account (from its interval, a retry, or the API) and what
 * became of it. `queued` -> `running` -> `done` | `failed`. The scheduler keeps the queue in
 * memory; these rows are what the API shows and what survives a restart.
 */
export class JobStore {
  /** `filter` limits what get sees (Store.restrictedTo). */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly filter: AccountFilter = EVERY_ACCOUNT,
  ) {}

  async insert(accountId: number, reason: string, now: number): Promise<SyncJob> {
    return this.db.insertInto('sync_jobs').values({ account_id: accountId, status: 'queued', reason, queued_at: now }).returningAll().executeTakeFirstOrThrow();
  }

  async get(id: number): Promise<SyncJob | undefined> {
    const condition = accountCondition('sync_jobs.account_id', this.filter);
    const query = this.db.selectFrom('sync_jobs').selectAll().where('id', '=', id);
    return (condition === undefined ? query : query.where(condition)).executeTakeFirst();
  }

  /** The account's job that is queued or running, if any (the newest, should there be several). */
  async active(accountId: number): Promise<SyncJob | undefined> {
    return this.db
      .selectFrom('sync_jobs')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('status', 'in', ['queued', 'running'])
      .orderBy('id', 'desc')
      .executeTakeFirst();
  }

  /** Jobs waiting to run, oldest first. */
  async queued(): Promise<SyncJob[]> {
    return this.db.selectFrom('sync_jobs').selectAll().where('status', '=', 'queued').orderBy('id').execute();
  }

  async countQueued(): Promise<number> {
    const row = await this.db.selectFrom('sync_jobs').select((eb) => eb.fn.countAll<number | string>().as('n')).where('status', '=', 'queued').executeTakeFirstOrThrow();
    // PostgreSQL's count(*) is int8, read as a number by database.ts; SQLite's is one already.
    return Number(row.n);
  }

  async markRunning(id: number, now: number): Promise<void> {
    await this.db.updateTable('sync_jobs').set({ status: 'running', started_at: now }).where('id', '=', id).execute();
  }

  /** Records the run a running job made, as soon as it is known. */
  async attachRun(id: number, runId: number): Promise<void> {
    await this.db.updateTable('sync_jobs').set({ run_id: runId }).where('id', '=', id).where('status', '=', 'running').execute();
  }

  /** `error`: why a job that is done did not end `ok` (deferred, stopped), or why it failed. */
  async finish(id: number, end: { status: 'done' | 'failed'; runId: number | null; error: string | null }, now: number): Promise<void> {
    await this.db.updateTable('sync_jobs').set({ status: end.status, run_id: end.runId, error: end.error, finished_at: now }).where('id', '=', id).execute();
  }

  /**
   * Jobs a previous process left `running` (it died, or was killed past its grace time): failed,
   * since nobody is running them now. The sync promise held for them either way.
   */
  async failRunning(error: string, now: number): Promise<number> {
    const result = await this.db.updateTable('sync_jobs').set({ status: 'failed', error, finished_at: now }).where('status', '=', 'running').executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /**
   * Accounts whose scheduled sync is due: an interval, not paused, not deleted, not waiting for
   * new credentials, next_sync_at reached. Most overdue first.
   */
  async dueAccounts(now: number, limit: number): Promise<Array<Pick<Account, 'id' | 'next_sync_at'>>> {
    return this.db
      .selectFrom('accounts')
      .select(['id', 'next_sync_at'])
      .where('sync_interval', 'is not', null)
      .where('paused', '=', 0)
      .where('needs_attention', '=', 0)
      .where('deleted_at', 'is', null)
      // An interval set on an account that never had one leaves next_sync_at null: due now.
      .where((eb) => eb.or([eb('next_sync_at', 'is', null), eb('next_sync_at', '<=', now)]))
      .orderBy('next_sync_at')
      .orderBy('id')
      .limit(limit)
      .execute();
  }
}
