import { pino, type Logger } from 'pino';
import { Pop3Client } from 'popwire';
import { AccountError, type AccountService } from '../accounts/service.js';
import { messageNewEvent, syncFailedEvent, type WebhookPayload } from '../delivery/events.js';
import type { Account } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { NewWebhookEvent } from '../store/webhook-events.js';
import { SyncError, syncAccount, type CommittedMessage, type SyncReport, type SyncRequest } from '../sync/index.js';
import type { SyncOutbox } from '../sync/run.js';
import { errorKind, publicError } from './failure.js';
import type { JobOutcome } from './reschedule.js';

/** Where events go: the webhook outbox (delivery/webhook.ts). Writing must not wait for any receiver. */
export interface EventSink {
  enqueue(account: Account, events: readonly WebhookPayload[]): Promise<unknown>;
  /** The outbox rows for these events, for a caller that writes them in its own transaction. */
  rowsFor(account: Account, events: readonly WebhookPayload[]): NewWebhookEvent[];
  /** Rows were written: send them now rather than at the next poll. */
  wake(): void;
}

export type SyncFunction = (request: SyncRequest) => Promise<SyncReport>;

/** The counters a job updates (metrics.ts's; in a sync worker, forwarded to the main thread's). */
export interface RunnerMetrics {
  readonly running: { inc(): void; dec(): void };
  readonly syncs: { inc(labels: { status: string }): void };
  readonly duration: { observe(seconds: number): void };
  readonly deleted: { inc(value: number): void };
  readonly errors: { inc(labels: { kind: string }): void };
  readonly messages: { inc(value: number): void };
  readonly bytes: { inc(value: number): void };
}

export interface JobRunnerOptions {
  readonly store: Store;
  readonly accounts: AccountService;
  readonly metrics: RunnerMetrics;
  readonly webhooks?: EventSink | undefined;
  readonly logger?: Logger | undefined;
  readonly now?: (() => number) | undefined;
  /** syncAccount, or a wrapper of it (tests count the runs in flight per account). */
  readonly sync?: SyncFunction | undefined;
  /** How long a sync's account lease lasts unrenewed (sync/lock.ts): the heartbeat another process watches. */
  readonly leaseMs?: number | undefined;
}

export interface JobRef {
  readonly id: number;
  readonly accountId: number;
  readonly reason: string;
}

export interface RunControl {
  /** Stop at the next message boundary, commit, DELE what is committed, QUIT. */
  readonly stop: AbortSignal;
  /** Drop the connection now, without QUIT: the server keeps every message. */
  readonly abandon: AbortSignal;
}

/**
 * Runs one sync job: loads the account, runs syncAccount with the account's connection
 * settings and policy, and records what happened, in the job's row, the metrics and the
 * webhook outbox. Never throws: how it ended is the outcome (the scheduler reschedules from it).
 */
export class JobRunner {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly sync: SyncFunction;

  constructor(private readonly options: JobRunnerOptions) {
    this.log = options.logger ?? pino({ level: 'silent' });
    this.now = options.now ?? Date.now;
    this.sync = options.sync ?? syncAccount;
  }

  async run(job: JobRef, control: RunControl): Promise<JobOutcome> {
    try {
      return await this.runJob(job, control);
    } catch (error) {
      // Only the job's own bookkeeping can get here (the store went away between two writes).
      this.log.error({ err: error, job: job.id }, 'sync job failed');
      await this.options.store.jobs.finish(job.id, { status: 'failed', runId: null, error: publicError(error).message }, this.now()).catch(() => {});
      return { kind: 'error', error, accountGone: false };
    }
  }

  private async runJob(job: JobRef, control: RunControl): Promise<JobOutcome> {
    const { store, accounts, metrics } = this.options;
    const jobs = store.jobs;
    let row: Account;
    try {
      row = await accounts.row(job.accountId);
    } catch (error) {
      const gone = error instanceof AccountError && error.code === 'ACCOUNT_NOT_FOUND';
      await jobs.finish(job.id, { status: 'failed', runId: null, error: gone ? 'the account no longer exists' : publicError(error).message }, this.now());
      return { kind: 'error', error, accountGone: gone };
    }
    // Paused, or its password rejected, since the job was queued: a scheduled job has no business
    // now; one asked for through the API runs anyway.
    if (job.reason !== 'api' && (row.paused === 1 || row.needs_attention === 1)) {
      await jobs.finish(job.id, { status: 'done', runId: null, error: row.paused === 1 ? 'skipped: the account is paused' : 'skipped: the account needs attention' }, this.now());
      return { kind: 'skipped' };
    }

    await jobs.markRunning(job.id, this.now());
    const events = this.eventQueue(row);
    const started = this.now();
    let sawProgress = false;
    metrics.running.inc();
    let outcome: JobOutcome;
    // RFC 2449 LOGIN-DELAY, as CAPA announced it after the login (Gmail: 300): the rescheduler never comes sooner.
    let loginDelay: number | null | undefined;
    try {
      // The account's API destinations, loaded (nodemailer, ImapFlow) only when it has some.
      const destinations = await accounts.destinations.targets(row, async (spec, options) => (await import('../destinations/index.js')).createDestination(spec, options));
      const report = await this.sync({
        store,
        accountId: row.id,
        // The abandon signal cuts the session (and any connect retry wait) without QUIT.
        connect: async () => {
          const client = await Pop3Client.connect({ ...accounts.clientOptions(row), signal: control.abandon });
          loginDelay = client.capabilities().loginDelay ?? null;
          return client;
        },
        policy: accounts.policy(row),
        leaseMs: this.options.leaseMs,
        stop: control.stop,
        onProgress: () => {
          if (sawProgress) return;
          sawProgress = true;
          // The run's row exists from the first progress report on, and our lock makes it the account's newest.
          events.track(this.attachRun(job.id, row.id));
        },
        onCommit: (messages) => this.committed(messages),
        outbox: this.outbox(row, control),
        destinations: { targets: destinations.targets, options: { uidHeader: destinations.uidHeader } },
      });
      outcome = { kind: 'report', report, abandoned: control.abandon.aborted };
    } catch (error) {
      outcome = error instanceof SyncError && error.code === 'SYNC_LOCKED' ? { kind: 'locked' } : { kind: 'error', error, accountGone: false };
    } finally {
      metrics.running.dec();
    }

    if (outcome.kind === 'report' || outcome.kind === 'error') {
      const report = outcome.kind === 'report' ? outcome.report : undefined;
      const status = report?.status ?? 'failed';
      const error = report === undefined ? (outcome as { error: unknown }).error : report.error;
      metrics.syncs.inc({ status });
      metrics.duration.observe(report?.seconds ?? (this.now() - started) / 1000);
      if (report !== undefined) metrics.deleted.inc(report.deleted);
      if (status === 'failed' || status === 'deferred') metrics.errors.inc({ kind: errorKind(error) });
      // A sync cut off at shutdown is not the account's failure: no event for it.
      if (status === 'failed' && !control.abandon.aborted) {
        // A recorded run wrote its sync.failed with its end (outbox below); one that could not be recorded gets it here.
        if (!report?.runId) events.add([syncFailedEvent(row, null, publicError(error), this.now())]);
        this.log.warn({ account: row.id, job: job.id, code: publicError(error).code }, 'sync failed');
      }
    }
    if (loginDelay !== undefined && loginDelay !== row.login_delay) {
      await store.accounts.update(row.id, { login_delay: loginDelay }, this.now()).catch((error: unknown) => this.log.error({ err: error, account: row.id }, 'could not record the LOGIN-DELAY'));
    }
    await events.settled();
    await jobs.finish(job.id, jobEnd(outcome, control.abandon.aborted), this.now());
    return outcome;
  }

  /** Messages and bytes counted as each commit returns; its message.new rows, written with it, are sent. */
  private committed(messages: readonly CommittedMessage[]): void {
    const { metrics } = this.options;
    metrics.messages.inc(messages.length);
    metrics.bytes.inc(messages.reduce((n, m) => n + m.size, 0));
    this.options.webhooks?.wake();
  }

  /**
   * The run's webhook rows, written by the sync in the transactions they belong to: a
   * message.new per stored message with its commit, a sync.failed with the run's failed end
   * (not for a sync cut off at shutdown, which is not the account's failure).
   */
  private outbox(row: Account, control: RunControl): SyncOutbox | undefined {
    const sink = this.options.webhooks;
    if (sink === undefined) return undefined;
    return {
      committed: (messages) => {
        const now = this.now();
        return sink.rowsFor(row, messages.map((m) => messageNewEvent(row, m, now)));
      },
      ended: ({ runId, status, error }) =>
        status === 'failed' && !control.abandon.aborted ? sink.rowsFor(row, [syncFailedEvent(row, runId, publicError(error), this.now())]) : [],
    };
  }

  private async attachRun(jobId: number, accountId: number): Promise<void> {
    const [run] = await this.options.store.runs.forAccount(accountId, 1);
    if (run?.status === 'running') await this.options.store.jobs.attachRun(jobId, run.id);
  }

  /**
   * Outbox writes, one after another, in commit order. onCommit is synchronous and a sync never
   * waits for its listeners, so they run beside it; the job waits for them only at its end, and
   * a failed write is logged, never the sync's failure.
   */
  private eventQueue(row: Account): EventQueue {
    const sink = this.options.webhooks;
    let chain: Promise<void> = Promise.resolve();
    const track = (work: Promise<unknown>) => {
      chain = chain.then(() => work).then(
        () => undefined,
        (error: unknown) => this.log.error({ err: error, account: row.id }, 'sync job bookkeeping failed'),
      );
    };
    return {
      add: (events) => {
        if (sink === undefined || events.length === 0) return;
        chain = chain.then(() => sink.enqueue(row, events)).then(
          () => undefined,
          (error: unknown) => this.log.error({ err: error, account: row.id }, 'webhook events could not be written to the outbox'),
        );
      },
      track,
      settled: () => chain,
    };
  }
}

interface EventQueue {
  add(events: readonly WebhookPayload[]): void;
  track(work: Promise<unknown>): void;
  settled(): Promise<void>;
}

/** The job's row at its end: `done` for a run that ended ok, deferred or stopped; `failed` otherwise. */
function jobEnd(outcome: JobOutcome, abandoned: boolean): { status: 'done' | 'failed'; runId: number | null; error: string | null } {
  switch (outcome.kind) {
    case 'locked':
      return { status: 'failed', runId: null, error: 'another sync of this account was running; it is tried again later' };
    case 'skipped':
      return { status: 'done', runId: null, error: null };
    case 'error':
      return { status: 'failed', runId: null, error: publicError(outcome.error).message };
    case 'report': {
      const { report } = outcome;
      const runId = report.runId || null;
      if (abandoned) return { status: 'failed', runId, error: 'abandoned at shutdown: the connection was dropped without QUIT, so the server kept every message' };
      if (report.status === 'ok') return { status: 'done', runId, error: null };
      if (report.status === 'stopped') return { status: 'done', runId, error: 'stopped early at shutdown; the next run goes on' };
      if (report.status === 'deferred') {
        const until = report.retryAfter === null ? '' : ` until ${new Date(report.retryAfter).toISOString()}`;
        return { status: 'done', runId, error: `deferred${until}: ${publicError(report.error).message}` };
      }
      return { status: 'failed', runId, error: publicError(report.error).message };
    }
  }
}
