import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { within } from './common.js';
import type { JobExecutor } from './in-process.js';
import type { JobRef, RunControl } from './runner.js';
import type { FromWorker, SyncWorkerData, ToWorker } from './sync-worker.js';

export interface SyncWorkerPoolOptions {
  /** Worker threads; jobs go to the one running the fewest. */
  readonly size: number;
  readonly data: SyncWorkerData;
  /** The main thread's metrics: the workers' counts are added to them. */
  readonly metrics: Metrics;
  /** Called when a worker wrote webhook rows: the main thread's sender sends them now. */
  readonly wake: () => void;
  /** Where the workers' log lines go, as written (the service logger's destination). */
  readonly logLine: (line: string) => void;
  readonly logger: Logger;
  /** The main thread's store: a job whose worker died is marked failed through it. */
  readonly store: Store;
}

interface Pending {
  readonly job: JobRef;
  readonly failures: number;
  readonly resolve: (failures: number) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  readonly jobs: Map<number, Pending>;
  /** popwire_syncs_running as this worker raised it: taken back if it dies. */
  running: number;
  closing: boolean;
}

/**
 * How much less CPU priority a worker thread takes than the main thread (nice, Linux). When the
 * cores are busy (the syncs, Dovecot on the same machine, anything else) the scheduler lets
 * the API's thread run first: a request needs a few milliseconds of CPU, and waited behind the
 * syncs' time slices. A thread's nice is its own on Linux (setpriority on the thread's id);
 * elsewhere, or if refused, the worker runs at the process's priority (sync-worker.ts sets it).
 */
export const WORKER_NICE = 5;

/** How long a worker asked to close may take (its jobs have ended by then) before it is terminated. */
const CLOSE_WAIT_MS = 10_000;

/**
 * Runs sync jobs in worker threads (sync-worker.ts says why) for the in-process scheduler: the
 * scheduler still decides what runs when and how many at once; each job is handed to a worker,
 * with the account's failures in a row, and comes back with them after the run. Workers start on
 * the first job. A worker that dies fails its jobs (their rows say so) and is replaced by the next job.
 */
export class SyncWorkerPool implements JobExecutor {
  private readonly slots: Slot[] = [];

  constructor(private readonly options: SyncWorkerPoolOptions) {
    if (!Number.isSafeInteger(options.size) || options.size < 1) throw new RangeError(`sync workers must be a positive integer; got ${options.size}`);
  }

  async execute(job: JobRef, control: RunControl, failures: number): Promise<number> {
    const slot = this.slot();
    try {
      await slot.ready;
    } catch (error) {
      return this.failJob(job, failures, error);
    }
    const done = new Promise<number>((resolve) => slot.jobs.set(job.id, { job, failures, resolve }));
    slot.worker.postMessage({ type: 'run', job, failures } satisfies ToWorker);
    for (const kind of ['stop', 'abandon'] as const) {
      const signal = control[kind];
      const send = () => slot.worker.postMessage({ type: kind, jobId: job.id } satisfies ToWorker);
      if (signal.aborted) send();
      else signal.addEventListener('abort', send, { once: true });
    }
    return done;
  }

  /** Lets each worker finish its jobs and close its store, then ends it. */
  async close(): Promise<void> {
    await Promise.all(
      this.slots.splice(0).map(async (slot) => {
        slot.closing = true;
        const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()));
        slot.worker.postMessage({ type: 'close' } satisfies ToWorker);
        if (!(await within(exited, CLOSE_WAIT_MS))) await slot.worker.terminate();
      }),
    );
  }

  private slot(): Slot {
    if (this.slots.length < this.options.size) {
      const slot = this.spawn();
      this.slots.push(slot);
      return slot;
    }
    return this.slots.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  private spawn(): Slot {
    const { data, logger } = this.options;
    const worker = workerThread(data);
    let started!: () => void;
    let failedToStart!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => ((started = resolve), (failedToStart = reject)));
    ready.catch(() => {});
    const slot: Slot = { worker, ready, jobs: new Map(), running: 0, closing: false };
    worker.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'ready':
          return started();
        case 'start-failed':
          return failedToStart(new Error(`the sync worker could not open the store: ${message.message}`));
        case 'done': {
          const pending = slot.jobs.get(message.jobId);
          slot.jobs.delete(message.jobId);
          return pending?.resolve(message.failures);
        }
        case 'metric':
          if (message.name === 'running') slot.running += message.value;
          return this.count(message);
        case 'wake':
          return this.options.wake();
        case 'log':
          return this.options.logLine(message.line);
        case 'closed':
          return;
      }
    });
    worker.on('error', (error) => logger.error({ err: error }, 'a sync worker failed'));
    worker.on('exit', (code) => {
      failedToStart(new Error(`the sync worker exited with code ${code} before it was ready`));
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      if (slot.running !== 0) this.options.metrics.running.dec(slot.running);
      const lost = [...slot.jobs.values()];
      slot.jobs.clear();
      if (lost.length > 0 || !slot.closing) logger.error({ code, jobs: lost.length }, 'a sync worker stopped; its jobs are marked failed');
      for (const pending of lost) void this.failJob(pending.job, pending.failures, new Error('the sync worker running it stopped')).then(pending.resolve);
    });
    return slot;
  }

  /** A job that no worker could run: its row says why; the account's count of failures goes up. */
  private async failJob(job: JobRef, failures: number, error: unknown): Promise<number> {
    this.options.logger.error({ err: error, job: job.id, account: job.accountId }, 'sync job failed');
    const message = error instanceof Error ? error.message : 'the sync worker failed';
    await this.options.store.jobs.finish(job.id, { status: 'failed', runId: null, error: message }, Date.now()).catch(() => {});
    return failures + 1;
  }

  private count(message: Extract<FromWorker, { type: 'metric' }>): void {
    const { metrics } = this.options;
    const { value, labels = {} } = message;
    switch (message.name) {
      case 'running':
        return value > 0 ? metrics.running.inc(value) : metrics.running.dec(-value);
      case 'syncs':
        return metrics.syncs.inc(labels, value);
      case 'errors':
        return metrics.errors.inc(labels, value);
      case 'duration':
        return metrics.duration.observe(value);
      case 'deleted':
        return metrics.deleted.inc(value);
      case 'messages':
        return metrics.messages.inc(value);
      case 'bytes':
        return metrics.bytes.inc(value);
    }
  }
}

/**
 * The worker's thread. Built, it runs sync-worker.js next to this module (in the bundle,
 * import.meta.url is this module's place in dist/: scripts/build.mjs). From the sources (tests,
 * `node --import tsx`) a worker does not inherit tsx's loader: it registers it, then imports the .ts.
 */
function workerThread(data: SyncWorkerData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./sync-worker.js', here), { workerData: data });
  const source = JSON.stringify(new URL('./sync-worker.ts', here).href);
  return new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${source}); });`, { eval: true, workerData: data });
}
