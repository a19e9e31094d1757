import { pino, type Logger } from 'pino';
import type { Store } from '../store/store.js';

const DAY_MS = 86_400_000;
/** Once an hour: what ages out is days old, so the exact moment does not matter. */
const DEFAULT_INTERVAL_MS = 3_600_000;

export interface PruneCounts {
  readonly jobs: number;
  readonly runs: number;
  readonly events: number;
  /** Soft-deleted messages purged. */
  readonly messages?: number;
}

/**
 * Deletes the history older than `before` (ms since the epoch): finished sync jobs, finished
 * runs (except each account's newest, which says how its last sync went), and delivered webhook
 * events. Without it a service that syncs 200 accounts every 5 minutes adds about 58,000 job and
 * 58,000 run rows a day, for ever. Events not yet delivered, or given up (kept with their error
 * for whoever looks), stay.
 */
export async function pruneHistory(store: Store, before: number): Promise<PruneCounts> {
  const jobs = await store.db.deleteFrom('sync_jobs').where('status', 'in', ['done', 'failed']).where('finished_at', '<', before).executeTakeFirst();
  const runs = await store.db
    .deleteFrom('sync_runs')
    .where('status', '!=', 'running')
    .where('finished_at', '<', before)
    .where('id', 'not in', (eb) => eb.selectFrom('sync_runs as newest').select((e) => e.fn.max('newest.id').as('id')).groupBy('newest.account_id'))
    .executeTakeFirst();
  const events = await store.db.deleteFrom('webhook_events').where('delivered_at', '<', before).executeTakeFirst();
  return { jobs: Number(jobs.numDeletedRows), runs: Number(runs.numDeletedRows), events: Number(events.numDeletedRows) };
}

export interface PrunerOptions {
  /** Days of history kept (config `history.keepDays`, default 30). */
  readonly keepDays: number;
  /** Days a soft-deleted message is kept before it is purged (config `messages.purgeAfterDays`); undefined: never purged here. */
  readonly purgeAfterDays?: number | undefined;
  readonly logger?: Logger | undefined;
  readonly intervalMs?: number | undefined;
  readonly now?: (() => number) | undefined;
}

/** Runs pruneHistory at start and then every hour; a failed prune is logged and tried at the next. */
export class Pruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: PrunerOptions,
  ) {
    this.log = options.logger ?? pino({ level: 'silent' });
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.prune(), this.options.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
    this.prune();
  }

  /** Stops the timer and waits for a prune in progress, so the store can close after it. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private prune(): void {
    if (this.running !== undefined) return;
    const now = this.now();
    const { purgeAfterDays } = this.options;
    this.running = pruneHistory(this.store, now - this.options.keepDays * DAY_MS)
      .then(async (history) => {
        // A soft-deleted message's purge: its UID stays known (store/messages.ts), nothing happens on the server.
        const counts = purgeAfterDays === undefined ? history : { ...history, messages: await this.store.messages.purgeDeleted(now - purgeAfterDays * DAY_MS) };
        if (counts.jobs + counts.runs + counts.events + (counts.messages ?? 0) > 0) this.log.info({ ...counts, keepDays: this.options.keepDays, purgeAfterDays }, 'pruned old history');
      })
      .catch((error: unknown) => this.log.error({ err: error }, 'pruning old history failed; tried again later'))
      .finally(() => (this.running = undefined));
  }
}
