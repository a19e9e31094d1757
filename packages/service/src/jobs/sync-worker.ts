/**
 * A sync worker thread (config `sync.workers`): runs whole sync jobs (the POP3 session, message
 * parsing, the store's writes with their fsyncs) off `popwire serve`'s main thread, which keeps
 * the HTTP API. Bench (e) showed the main thread's event loop held for 50 to 230 ms at a time by
 * the syncs' synchronous SQLite statements and commits, and every API request waiting behind them.
 *
 * The worker opens its own connection to the store: SQLite in WAL mode lets the main thread read
 * beside it, and writers queue on the file's lock (busy_timeout, database.ts); on PostgreSQL it
 * has its own pool. It builds the accounts and the webhook outbox from the same configuration as
 * the main thread (service-parts.ts) and runs each job with the same JobRunner, so the job's row,
 * the run, exactly-once and the webhook rows are written as in the main thread. What only the
 * main thread has crosses as messages (worker-pool.ts): the metrics, the webhook sender's wake-up,
 * the log lines, and stop and abandon at shutdown. Nothing secret crosses back: the key ring comes
 * in with workerData and stays here; outcomes carry only counts.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { SecretBox } from '../accounts/secrets.js';
import type { ServiceConfig } from '../config.js';
import { REDACTED_PATHS } from '../logger.js';
import { serviceParts } from '../service-parts.js';
import type { StoreLocation } from '../store/database.js';
import { Store } from '../store/store.js';
import { backoffWith } from './backoff.js';
import { Rescheduler } from './common.js';
import { DEFAULT_SYNC_BACKOFF } from './reschedule.js';
import { JobRunner, type EventSink, type JobRef, type RunnerMetrics } from './runner.js';
import { WORKER_NICE } from './worker-pool.js';

export interface SyncWorkerData {
  readonly config: ServiceConfig;
  readonly location: StoreLocation;
  readonly keyRing: Buffer[];
  readonly ca: Buffer | undefined;
}

/** Main thread to worker. */
export type ToWorker =
  | { readonly type: 'run'; readonly job: JobRef; readonly failures: number }
  | { readonly type: 'stop' | 'abandon'; readonly jobId: number }
  | { readonly type: 'close' };

/** Worker to main thread. */
export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'start-failed'; readonly message: string }
  | { readonly type: 'done'; readonly jobId: number; readonly failures: number }
  | { readonly type: 'metric'; readonly name: MetricName; readonly value: number; readonly labels?: Record<string, string> }
  | { readonly type: 'wake' }
  | { readonly type: 'log'; readonly line: string }
  | { readonly type: 'closed' };

export type MetricName = 'running' | 'syncs' | 'duration' | 'deleted' | 'errors' | 'messages' | 'bytes';


lowerThreadPriority(WORKER_NICE);

function lowerThreadPriority(by: number): void {
  try {
    // /proc/thread-self -> "PID/task/TID"
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, Math.min(19, getPriority(tid) + by));
  } catch {
    // Not Linux, or not allowed: the default priority.
  }
}

const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);
const data = workerData as SyncWorkerData;

// Lines go to the main thread's log destination, one message each, as pino formats them.
const logger = pino(
  { level: data.config.log.level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
  { write: (line: string) => post({ type: 'log', line }) },
).child({ part: 'sync-worker' });

const metrics: RunnerMetrics = {
  running: { inc: () => post({ type: 'metric', name: 'running', value: 1 }), dec: () => post({ type: 'metric', name: 'running', value: -1 }) },
  syncs: { inc: (labels) => post({ type: 'metric', name: 'syncs', value: 1, labels }) },
  duration: { observe: (seconds) => post({ type: 'metric', name: 'duration', value: seconds }) },
  deleted: { inc: (value) => post({ type: 'metric', name: 'deleted', value }) },
  errors: { inc: (labels) => post({ type: 'metric', name: 'errors', value: 1, labels }) },
  messages: { inc: (value) => post({ type: 'metric', name: 'messages', value }) },
  bytes: { inc: (value) => post({ type: 'metric', name: 'bytes', value }) },
};

let store: Store;
try {
  store = await Store.open(data.location, { create: false });
} catch (error) {
  post({ type: 'start-failed', message: (error as Error).message });
  process.exit(1);
}
const box = new SecretBox(data.keyRing);
const { accounts, webhooks } = serviceParts(data.config, store, box, data.ca, logger);
// The outbox rows are written here, in the sync's transactions; the main thread's sender is woken to send them.
const sink: EventSink = {
  rowsFor: (account, events) => webhooks.rowsFor(account, events),
  enqueue: async (account, events) => {
    const rows = webhooks.rowsFor(account, events);
    if (rows.length === 0) return;
    await store.webhookEvents.add(rows, Date.now());
    post({ type: 'wake' });
  },
  wake: () => post({ type: 'wake' }),
};
const runner = new JobRunner({ store, accounts, metrics, webhooks: sink, logger });
const rescheduler = new Rescheduler(store, backoffWith(DEFAULT_SYNC_BACKOFF, {}), logger, Date.now, accounts.minInterval);
const controls = new Map<number, { stop: AbortController; abandon: AbortController }>();
const running = new Set<Promise<void>>();

async function run(job: JobRef, failures: number): Promise<void> {
  const control = { stop: new AbortController(), abandon: new AbortController() };
  controls.set(job.id, control);
  let after = failures;
  try {
    const outcome = await runner.run(job, { stop: control.stop.signal, abandon: control.abandon.signal });
    after = await rescheduler.apply(job.accountId, outcome, failures).catch((error: unknown) => {
      logger.error({ err: error, account: job.accountId }, 'the next sync could not be scheduled');
      return failures;
    });
  } finally {
    controls.delete(job.id);
    post({ type: 'done', jobId: job.id, failures: after });
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'run': {
      const work = run(message.job, message.failures);
      running.add(work);
      void work.finally(() => running.delete(work));
      return;
    }
    case 'stop':
    case 'abandon':
      controls.get(message.jobId)?.[message.type].abort();
      return;
    case 'close':
      void Promise.allSettled(running)
        .then(() => store.close())
        .finally(() => {
          post({ type: 'closed' });
          port.close();
        });
  }
});
post({ type: 'ready' });
