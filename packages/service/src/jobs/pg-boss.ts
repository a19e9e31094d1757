import { CompiledQuery, sql, type Kysely } from 'kysely';
import { setTimeout as delay } from 'node:timers/promises';
import PgBoss from 'pg-boss';
import { pino, type Logger } from 'pino';
import { JobStore } from '../store/jobs.js';
import type { Database, SyncJob } from '../store/schema.js';
import { LEASE_MS } from '../sync/lock.js';
import { backoffWith } from './backoff.js';
import { ABANDON_WAIT_MS, jobView, loadJob, Rescheduler, within } from './common.js';
import { DEFAULT_SYNC_BACKOFF } from './reschedule.js';
import type { InProcessSchedulerOptions } from './in-process.js';
import { JobRunner } from './runner.js';
import type { SyncJobView, SyncScheduler } from './scheduler.js';

/** As the in-process scheduler's, over a PostgreSQL store; `concurrency` is per process. */
export interface PgBossSchedulerOptions extends InProcessSchedulerOptions {
  /** Seconds between an idle worker's looks at the queue (at least 0.5). Default 2; a job queued here wakes this process's workers at once. */
  readonly pollingSeconds?: number | undefined;
  /** pg-boss's schema in the store's database. Default `pgboss`. */
  readonly schema?: string | undefined;
  /**
   * Milliseconds a sync's account lease lasts unrenewed (config jobs.leaseSeconds; default 60 s).
   * A sync whose process died is taken up by another process about this long after its last
   * renewal. Every process on one database should use the same.
   */
  readonly leaseMs?: number | undefined;
}

/** A pg-boss job's data: the sync_jobs row it runs. */
interface JobData {
  readonly accountId: number;
  readonly jobId: number;
  readonly reason: string;
}

const QUEUE = 'popwire-sync';
/** First key of the advisory lock under which a process queues an account's job ('pop'). */
const LOCK_SPACE = 0x706f70;
/** pg-boss fails an active job after this (its limit is 24 h); a job whose process died is found sooner, by its lease (reapOrphans). */
const EXPIRE_SECONDS = 23 * 3600;
const INTERRUPTED = 'interrupted: the process running it stopped';

/**
 * The scale-out scheduler: several `popwire serve` processes, on several machines, share one
 * PostgreSQL store, and pg-boss (in its own schema of that database) holds the queue.
 *
 * - One sync per account at a time, across processes: the queue's policy is `stately` keyed by
 *   account id, so an account has at most one job waiting and one running (a unique index of
 *   pg-boss's: the second activation of a key fails). The account's sync lease (sync/lock.ts)
 *   guards it again: a second sync would end SYNC_LOCKED and be tried later.
 * - Concurrency: `concurrency` pg-boss workers in this process, one job each.
 * - Due accounts: every process ticks like the in-process scheduler. A job is queued under a
 *   transaction-scoped advisory lock on the account: whoever comes second finds the live job
 *   (and returns it) or, for a scheduled job, the account no longer due; the job's row and its
 *   pg-boss job commit together. Had two sends raced anyway, `stately` drops the second.
 * - The account is rescheduled before its pg-boss job completes, so a tick never finds it due
 *   and without a live job at once.
 * - Liveness is the account's lease (sync/lock.ts), a heartbeat in the accounts row: a running
 *   sync renews it every third of `leaseMs`. A process that dies mid-sync leaves an active
 *   pg-boss job, a `running` job row and a `running` run; once the job is one lease old and the
 *   account's lease has run out, any process's tick fails the job and its row, closes the run as
 *   `interrupted`, and queues the account again at once (reason `retry`), whatever its interval.
 *   So a killed sync is taken up again about one lease (60 s by default) after its process died.
 *   pg-boss's own expiry cannot be the mechanism: it must outlast the longest honest sync.
 */
export class PgBossScheduler implements SyncScheduler {
  private boss: PgBoss;
  /** pg-boss started (its pool and maintenance are running): stop() must stop it. */
  private bossStarted = false;
  /** Cuts start()'s wait between attempts short at stop(). */
  private readonly halt = new AbortController();
  private readonly runner: JobRunner;
  private readonly rescheduler: Rescheduler;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly concurrency: number;
  private readonly tickMs: number;
  private readonly pollingSeconds: number;
  private readonly schema: string;
  private readonly leaseMs: number;
  /** When this process last closed runs left `running` by dead processes (reapOrphans). */
  private lastSweep = 0;
  /** This process's running syncs, by pg-boss job id. */
  private readonly running = new Map<string, { stop: AbortController; abandon: AbortController; run: Promise<void> }>();
  private readonly workers: string[] = [];
  private installed: Promise<void> | undefined;
  private ready: Promise<void> | undefined;
  private live = false;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private depth = 0;

  constructor(private readonly options: PgBossSchedulerOptions) {
    const { store, accounts, metrics, webhooks, sync } = options;
    if (store.location.kind !== 'postgres') throw new Error('the pg-boss scheduler needs a PostgreSQL store');
    this.log = options.logger ?? pino({ level: 'silent' });
    this.now = options.now ?? Date.now;
    this.concurrency = options.concurrency ?? 4;
    this.tickMs = options.tickMs ?? 1_000;
    this.pollingSeconds = options.pollingSeconds ?? 2;
    this.schema = options.schema ?? 'pgboss';
    this.leaseMs = options.leaseMs ?? LEASE_MS;
    if (!Number.isSafeInteger(this.leaseMs) || this.leaseMs < 1000) throw new RangeError(`leaseMs must be at least 1000; got ${this.leaseMs}`);
    if (!Number.isSafeInteger(this.concurrency) || this.concurrency < 1) throw new RangeError(`concurrency must be a positive integer; got ${this.concurrency}`);
    if (!/^[a-z_][a-z0-9_]*$/.test(this.schema)) throw new RangeError(`schema must be a plain lower-case identifier; got ${this.schema}`);
    this.runner = new JobRunner({ store, accounts, metrics, webhooks, sync, logger: this.log, now: this.now, leaseMs: this.leaseMs });
    this.rescheduler = new Rescheduler(store, backoffWith(DEFAULT_SYNC_BACKOFF, options.backoff), this.log, this.now, options.accounts.minInterval);
    this.boss = this.createBoss();
  }

  async enqueue(accountId: number, reason: string): Promise<SyncJobView> {
    // Throws AccountError ACCOUNT_NOT_FOUND for a missing or deleted account.
    await this.options.accounts.row(accountId);
    const row = await this.queue(accountId, reason, false);
    this.wake();
    await this.refreshDepth();
    return jobView(row!);
  }

  job(id: number): Promise<SyncJobView> {
    return loadJob(this.options.store, id);
  }

  /** Jobs waiting to run, in every process, as of this process's last look (each tick, each enqueue). */
  queueDepth(): number {
    return this.depth;
  }

  start(): void {
    if (this.ready === undefined && !this.stopping) this.ready = this.boot();
  }

  /** Installs the queue (tried again until it works: the database may be starting too), then the workers and the tick. */
  private async boot(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.install();
        break;
      } catch (error) {
        this.log.error({ err: error }, 'the job queue could not be started; trying again');
        await delay(Math.min(1000 * attempt, 10_000), undefined, { signal: this.halt.signal }).catch(() => {});
      }
    }
    for (let i = 0; i < this.concurrency && !this.stopping; i++) {
      this.workers.push(await this.boss.work<JobData>(QUEUE, { batchSize: 1, pollingIntervalSeconds: this.pollingSeconds }, ([job]) => this.runJob(job!)));
    }
    if (this.stopping) return;
    this.live = true;
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref();
    void this.tick();
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.halt.abort();
    clearInterval(this.timer);
    await this.ready?.catch(() => {});
    await this.ticking;
    await this.installed?.catch(() => {});
    if (!this.bossStarted) return;
    // No more fetches; a job fetched meanwhile is handed back to the queue (runJob).
    await Promise.all(this.workers.map((id) => this.boss.offWork({ id })));
    const active = [...this.running.values()];
    for (const entry of active) entry.stop.abort();
    const runs = Promise.allSettled(active.map((e) => e.run));
    if (!(await within(runs, graceMs))) {
      this.log.warn({ running: active.length }, 'syncs did not stop within the grace time; dropping their connections');
      for (const entry of active) entry.abandon.abort();
      await within(runs, ABANDON_WAIT_MS);
    }
    // Graceful: waits for the handlers to return (they complete their jobs), fails any left active.
    await this.boss.stop({ graceful: true, wait: true, timeout: ABANDON_WAIT_MS });
  }

  /** One look for due accounts and orphaned jobs: the timer's work. */
  async tick(): Promise<void> {
    if (!this.live || this.stopping || this.ticking !== undefined) return;
    this.ticking = this.queueDue()
      .catch((error: unknown) => this.log.error({ err: error }, 'due accounts could not be queued'))
      .finally(() => (this.ticking = undefined));
    await this.ticking;
  }

  private async queueDue(): Promise<void> {
    await this.reapOrphans();
    // Enough to keep this process's slots busy until its next tick; the rest stay due.
    const room = this.concurrency * 2 - (await this.refreshDepth());
    if (room <= 0) return;
    const live = await this.liveAccounts();
    const due = await this.options.store.jobs.dueAccounts(this.now(), room + live.size);
    for (const account of due) {
      if (this.stopping) return;
      if (live.has(account.id)) continue;
      await this.queue(account.id, this.rescheduler.failing(account.id) ? 'retry' : 'schedule', true).catch((error: unknown) =>
        this.log.error({ err: error, account: account.id }, 'sync job could not be queued'),
      );
    }
    this.wake();
    await this.refreshDepth();
  }

  /**
   * The account's live job (waiting or running, in any process), else a new one. Under the
   * account's advisory lock, so that processes queue one between them; `ifDue`: only if the
   * account is still due (another process may have synced it since the tick read it).
   */
  private async queue(accountId: number, reason: string, ifDue: boolean): Promise<SyncJob | undefined> {
    await this.install();
    const now = this.now();
    return this.options.store.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${LOCK_SPACE}, ${accountId})`.execute(trx);
      const jobs = new JobStore(trx);
      const { rows } = await sql<{ job_id: number }>`
        select (data->>'jobId')::int as job_id from ${this.table()} where name = ${QUEUE} and singleton_key = ${String(accountId)} and state < 'completed'
        order by created_on desc limit 1`.execute(trx);
      const current = rows[0] === undefined ? undefined : await jobs.get(rows[0].job_id);
      if (current !== undefined) return current;
      if (ifDue) {
        const account = await trx.selectFrom('accounts').select('next_sync_at').where('id', '=', accountId).executeTakeFirst();
        if (account === undefined || (account.next_sync_at !== null && account.next_sync_at > now)) return undefined;
      }
      // Rows still queued or running without a live job: their process is gone, or they are an earlier engine's.
      await trx.updateTable('sync_jobs').set({ status: 'failed', error: INTERRUPTED, finished_at: now }).where('account_id', '=', accountId).where('status', 'in', ['queued', 'running']).execute();
      const row = await jobs.insert(accountId, reason, now);
      const data: JobData = { accountId, jobId: row.id, reason };
      const sent = await this.boss.send(QUEUE, data, { singletonKey: String(accountId), db: executor(trx) });
      if (sent === null) throw new Error(`the queue refused a job for account ${accountId} while holding none`);
      return row;
    });
  }

  /** A worker's job: one sync, rescheduled before the job completes. */
  private async runJob(job: PgBoss.Job<JobData>): Promise<void> {
    const { accountId, jobId, reason } = job.data;
    if (this.stopping) return this.handBack(job);
    const stop = new AbortController();
    const abandon = new AbortController();
    const run = this.runner
      .run({ id: jobId, accountId, reason }, { stop: stop.signal, abandon: abandon.signal })
      .then((outcome) => this.rescheduler.reschedule(accountId, outcome))
      .catch((error: unknown) => this.log.error({ err: error, account: accountId }, 'the next sync could not be scheduled'));
    this.running.set(job.id, { stop, abandon, run });
    try {
      await run;
    } finally {
      this.running.delete(job.id);
    }
    // Completed here rather than after the handler returns, so that a stop() right after cannot lose it.
    await this.completeJob(job.id);
  }

  /**
   * Marks the job complete, trying again while the database is unreachable (a restart). pg-boss
   * 10 completes it again once the handler returns, without awaiting that: with the database
   * still down then, the rejection went unhandled and ended the process (found by `npm run soak`).
   * So the handler returns only once the database answered, or when this process stops.
   */
  private async completeJob(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.boss.complete(QUEUE, id);
        return;
      } catch (error) {
        if (this.stopping) return this.log.error({ err: error, job: id }, 'the queue could not mark a job complete');
        if (attempt === 1) this.log.warn({ err: error, job: id }, 'the queue could not mark a job complete; trying again');
        await delay(Math.min(500 * attempt, 5_000), undefined, { signal: this.halt.signal }).catch(() => {});
      }
    }
  }

  /** A job fetched as this process stops: queued again for another process, its row left queued. */
  private async handBack(job: PgBoss.Job<JobData>): Promise<void> {
    const sent = await this.boss.send(QUEUE, job.data, { singletonKey: String(job.data.accountId) }).catch(() => null);
    if (sent === null) await this.options.store.jobs.finish(job.data.jobId, { status: 'failed', runId: null, error: INTERRUPTED }, this.now());
    await this.boss.complete(QUEUE, job.id).catch(() => {});
  }

  /**
   * Takes up the syncs of processes that are gone: an active job at least one lease old whose
   * account holds no unexpired lease is failed (and its row), the account's run is closed as
   * `interrupted`, and the account is queued again now. Runs left `running` otherwise (their job
   * was failed by queue(), or by a process that died in between) are closed too, every quarter lease.
   */
  private async reapOrphans(): Promise<void> {
    const now = this.now();
    const db = this.options.store.db;
    const { rows } = await sql<{ id: string; job_id: number; account_id: number; account_live: boolean }>`
      select j.id, (j.data->>'jobId')::int as job_id, (j.data->>'accountId')::int as account_id, (a.id is not null and a.deleted_at is null) as account_live
      from ${this.table()} j left join accounts a on a.id = (j.data->>'accountId')::int
      where j.name = ${QUEUE} and j.state = 'active' and j.started_on < now() - make_interval(secs => ${this.leaseMs / 1000})
        and (a.id is null or a.lock_owner is null or a.lock_expires < ${now})`.execute(db);
    const orphans = rows.filter((row) => !this.running.has(row.id));
    for (const row of orphans) {
      await this.boss.fail(QUEUE, row.id, { message: INTERRUPTED });
      await db.updateTable('sync_jobs').set({ status: 'failed', error: INTERRUPTED, finished_at: now }).where('id', '=', row.job_id).where('status', 'in', ['queued', 'running']).execute();
    }
    if (orphans.length > 0 || now - this.lastSweep >= this.leaseMs / 4) {
      this.lastSweep = now;
      const closed = await this.options.store.runs.closeInterrupted(now, this.leaseMs);
      if (closed.length > 0) this.log.warn({ accounts: closed }, 'runs of a process that is gone were closed as interrupted');
    }
    for (const row of orphans) {
      if (!row.account_live || this.stopping) continue;
      const job = await this.queue(row.account_id, 'retry', false);
      this.log.warn({ account: row.account_id, interrupted: row.job_id, job: job?.id }, 'a sync of a process that is gone was interrupted; the account is queued again');
    }
  }

  /** Accounts with a job waiting or running, in any process. */
  private async liveAccounts(): Promise<Set<number>> {
    const { rows } = await sql<{ key: string }>`select distinct singleton_key as key from ${this.table()} where name = ${QUEUE} and state < 'completed'`.execute(this.options.store.db);
    return new Set(rows.map((r) => Number(r.key)));
  }

  private async refreshDepth(): Promise<number> {
    this.depth = await this.boss.getQueueSize(QUEUE);
    this.options.metrics.queueDepth.set(this.depth);
    return this.depth;
  }

  /** Workers here look at the queue now rather than at their next poll. */
  private wake(): void {
    if (this.live && !this.stopping) for (const id of this.workers) this.boss.notifyWorker(id);
  }

  /** pg-boss started (its schema made or migrated) and the queue created, once. */
  private install(): Promise<void> {
    this.installed ??= (async () => {
      if (!this.bossStarted) {
        // A pg-boss whose start failed cannot start again: the next attempt gets a new one.
        await this.boss.start().catch(async (error: unknown) => {
          await this.boss.stop({ graceful: false }).catch(() => {});
          this.boss = this.createBoss();
          throw error;
        });
        this.bossStarted = true;
      }
      // Processes starting together race to create it (a duplicate name, or a deadlock between them): look again.
      for (let attempt = 1; (await this.boss.getQueue(QUEUE)) === null; attempt++) {
        await this.boss.createQueue(QUEUE, { name: QUEUE, policy: 'stately', retryLimit: 0, expireInSeconds: EXPIRE_SECONDS }).catch(async (error: unknown) => {
          if (attempt >= 5) throw error;
          await delay(100 * attempt);
        });
      }
    })().catch((error: unknown) => {
      this.installed = undefined;
      throw error;
    });
    return this.installed;
  }

  private createBoss(): PgBoss {
    const url = this.options.store.location.kind === 'postgres' ? this.options.store.location.url : '';
    const boss = new PgBoss({ connectionString: url, schema: this.schema, schedule: false, max: this.concurrency + 2, application_name: 'popwire-jobs' });
    boss.on('error', (error) => this.log.error({ err: error }, 'the job queue reported an error'));
    return boss;
  }

  private table() {
    return sql.table(`${this.schema}.job`);
  }
}

/** pg-boss's queries run inside a Kysely transaction. */
function executor(db: Kysely<Database>): PgBoss.Db {
  return { executeSql: async (text, values) => ({ rows: [...(await db.executeQuery(CompiledQuery.raw(text, values))).rows] }) };
}
