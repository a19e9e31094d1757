import { pino, type Logger } from 'pino';
import type { AccountService } from '../accounts/service.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { backoffWith, type Backoff } from './backoff.js';
import { ABANDON_WAIT_MS, loadJob, Rescheduler, within } from './common.js';
import { DEFAULT_SYNC_BACKOFF } from './reschedule.js';
import { JobRunner, type EventSink, type JobRef, type RunControl, type SyncFunction } from './runner.js';
import { type SyncJobView, type SyncScheduler } from './scheduler.js';

export interface InProcessSchedulerOptions {
  readonly store: Store;
  readonly accounts: AccountService;
  readonly metrics: Metrics;
  /** The webhook outbox; without it no events are written. */
  readonly webhooks?: EventSink | undefined;
  readonly logger?: Logger | undefined;
  /** Syncs at once, across accounts. Default 4. */
  readonly concurrency?: number | undefined;
  /** Milliseconds between looks for accounts whose sync is due. Default 1,000. */
  readonly tickMs?: number | undefined;
  /** Waits after failed syncs. Default 30 s doubling to 1 h, jitter 0.5. */
  readonly backoff?: Partial<Backoff> | undefined;
  readonly now?: (() => number) | undefined;
  /** syncAccount, or a wrapper of it. */
  readonly sync?: SyncFunction | undefined;
  /** Where jobs run; default: in this thread. `popwire serve` with `sync.workers` passes a SyncWorkerPool. */
  readonly executor?: JobExecutor | undefined;
}

/**
 * Runs one job and writes when its account syncs next (Rescheduler.apply) from `failures`, the
 * account's failed syncs in a row before it; returns the count after it. Never throws.
 */
export interface JobExecutor {
  execute(job: JobRef, control: RunControl, failures: number): Promise<number>;
}

/** A job this process holds: queued (its row being written, or waiting for a slot) or running. */
interface Entry {
  readonly accountId: number;
  readonly reason: string;
  readonly id: Promise<number>;
  state: 'queued' | 'running';
  run?: Promise<void>;
  stop?: AbortController;
  abandon?: AbortController;
}

/**
 * The embedded scheduler: timers and a queue in this process, the jobs' rows in the store.
 *
 * Every `tickMs` it looks for accounts whose sync is due (store/jobs.ts dueAccounts) and queues
 * a job for each; jobs run in queue order, at most `concurrency` at once. An account has at most
 * one job here at a time, queued or running: enqueue() returns that job rather than queueing
 * another, and the account is rescheduled (reschedule.ts) before its job lets go of it, so a
 * tick never finds it due twice. Across processes, the account's sync lock (sync/lock.ts) keeps
 * syncs apart; a job that finds it held is tried again later, not counted as a failure.
 *
 * One in-process scheduler per store: at start it takes the store's queued jobs as its own and
 * fails those left running by a process that is gone. Scale-out takes a job engine that
 * implements SyncScheduler across machines (pg-boss.ts).
 */
export class InProcessScheduler implements SyncScheduler {
  private readonly entries = new Map<number, Entry>();
  private readonly queue: Entry[] = [];
  private readonly executor: JobExecutor;
  private readonly rescheduler: Rescheduler;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly concurrency: number;
  private readonly tickMs: number;
  private running = 0;
  private ready: Promise<void> | undefined;
  private live = false;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(private readonly options: InProcessSchedulerOptions) {
    this.log = options.logger ?? pino({ level: 'silent' });
    this.now = options.now ?? Date.now;
    this.concurrency = options.concurrency ?? 4;
    this.tickMs = options.tickMs ?? 1_000;
    if (!Number.isSafeInteger(this.concurrency) || this.concurrency < 1) throw new RangeError(`concurrency must be a positive integer; got ${this.concurrency}`);
    const { store, accounts, metrics, webhooks, sync } = options;
    this.rescheduler = new Rescheduler(store, backoffWith(DEFAULT_SYNC_BACKOFF, options.backoff), this.log, this.now, options.accounts.minInterval);
    const runner = new JobRunner({ store, accounts, metrics, webhooks, sync, logger: this.log, now: this.now });
    const rescheduler = this.rescheduler;
    const log = this.log;
    this.executor = options.executor ?? {
      async execute(job, control, failures) {
        const outcome = await runner.run(job, control);
        return rescheduler.apply(job.accountId, outcome, failures).catch((error: unknown) => {
          log.error({ err: error, account: job.accountId }, 'the next sync could not be scheduled');
          return failures;
        });
      },
    };
  }

  async enqueue(accountId: number, reason: string): Promise<SyncJobView> {
    let entry = this.entries.get(accountId);
    if (entry === undefined) {
      // Reserved before the first await, so that two calls at once make one job.
      const created: Entry = { accountId, reason, state: 'queued', id: this.createJob(accountId, reason) };
      this.entries.set(accountId, created);
      created.id.then(
        () => this.push(created),
        () => this.entries.get(accountId) === created && this.entries.delete(accountId),
      );
      entry = created;
    }
    return this.job(await entry.id);
  }

  async job(id: number): Promise<SyncJobView> {
    return loadJob(this.options.store, id);
  }

  queueDepth(): number {
    return this.queue.length;
  }

  start(): void {
    if (this.ready !== undefined || this.stopping) return;
    this.ready = this.recover()
      .catch((error: unknown) => this.log.error({ err: error }, 'sync jobs left by an earlier process could not be taken over'))
      .then(() => {
        if (this.stopping) return;
        this.live = true;
        this.timer = setInterval(() => void this.tick(), this.tickMs);
        this.timer.unref();
        void this.tick();
        this.pump();
      });
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.ready;
    await this.ticking;
    const active = [...this.entries.values()].filter((e) => e.state === 'running');
    for (const entry of active) entry.stop?.abort();
    const runs = Promise.allSettled(active.map((e) => e.run));
    if (!(await within(runs, graceMs))) {
      this.log.warn({ running: active.length }, 'syncs did not stop within the grace time; dropping their connections');
      for (const entry of active) entry.abandon?.abort();
      await within(runs, ABANDON_WAIT_MS);
    }
  }

  /** One look for due accounts: the timer's work. */
  async tick(): Promise<void> {
    if (!this.live || this.stopping || this.ticking !== undefined) return;
    this.ticking = this.queueDue()
      .catch((error: unknown) => this.log.error({ err: error }, 'due accounts could not be read'))
      .finally(() => (this.ticking = undefined));
    await this.ticking;
  }

  private async queueDue(): Promise<void> {
    // Enough to keep every slot busy until the next tick; the rest stay due and come next time.
    const room = this.concurrency * 2 - this.queue.length;
    if (room <= 0) return;
    const due = await this.options.store.jobs.dueAccounts(this.now(), room + this.entries.size);
    for (const account of due) {
      if (this.stopping) return;
      if (this.entries.has(account.id)) continue;
      await this.enqueue(account.id, this.rescheduler.failing(account.id) ? 'retry' : 'schedule').catch((error: unknown) =>
        this.log.error({ err: error, account: account.id }, 'sync job could not be queued'),
      );
    }
  }

  private async createJob(accountId: number, reason: string): Promise<number> {
    // Throws AccountError ACCOUNT_NOT_FOUND for a missing or deleted account.
    await this.options.accounts.row(accountId);
    // A job an earlier process queued and never ran is this request already.
    const waiting = await this.options.store.jobs.active(accountId);
    if (waiting?.status === 'queued') return waiting.id;
    return (await this.options.store.jobs.insert(accountId, reason, this.now())).id;
  }

  private push(entry: Entry): void {
    this.queue.push(entry);
    this.pump();
  }

  private pump(): void {
    while (this.live && !this.stopping && this.running < this.concurrency && this.queue.length > 0) {
      const entry = this.queue.shift()!;
      entry.state = 'running';
      entry.stop = new AbortController();
      entry.abandon = new AbortController();
      this.running++;
      entry.run = this.execute(entry).finally(() => {
        this.running--;
        this.entries.delete(entry.accountId);
        this.pump();
      });
    }
    this.options.metrics.queueDepth.set(this.queue.length);
  }

  private async execute(entry: Entry): Promise<void> {
    const id = await entry.id;
    // The next time is written before the entry goes, so that the next tick sees it.
    const failures = await this.executor.execute(
      { id, accountId: entry.accountId, reason: entry.reason },
      { stop: entry.stop!.signal, abandon: entry.abandon!.signal },
      this.rescheduler.failuresOf(entry.accountId),
    );
    this.rescheduler.record(entry.accountId, failures);
  }

  /** Jobs an earlier process left: queued ones are ours to run, running ones ran in a process that is gone. */
  private async recover(): Promise<void> {
    const jobs = this.options.store.jobs;
    const failed = await jobs.failRunning('interrupted: the service stopped while the sync ran', this.now());
    if (failed > 0) this.log.warn({ jobs: failed }, 'sync jobs left running by an earlier process marked failed');
    for (const row of await jobs.queued()) {
      if (this.entries.has(row.account_id)) {
        // The account's newer request (enqueue adopts the queued row; this one is a duplicate).
        if ((await this.entries.get(row.account_id)!.id.catch(() => undefined)) !== row.id) {
          await jobs.finish(row.id, { status: 'failed', runId: null, error: 'superseded by a newer job of the account' }, this.now());
        }
        continue;
      }
      const entry: Entry = { accountId: row.account_id, reason: row.reason, state: 'queued', id: Promise.resolve(row.id) };
      this.entries.set(row.account_id, entry);
      this.queue.push(entry);
    }
  }
}
