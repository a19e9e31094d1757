import type { Kysely } from 'kysely';
import type { Database, WebhookEvent } from './schema.js';

export interface NewWebhookEvent {
  readonly accountId: number | null;
  readonly url: string;
  readonly type: string;
  /** The JSON body, exactly as it will be signed and sent. */
  readonly body: string;
}

/** `next_attempt_at` of an event given up on: never due again. Its `last_error` says why. */
export const GAVE_UP = Number.MAX_SAFE_INTEGER;

/** Rows per INSERT: 4 columns x 500 stays far below SQLite's 32,766 bound parameters. */
const ROWS_PER_STATEMENT = 500;

/**
 * The webhook outbox. A sync only inserts here (in the transactions that commit its messages
 * and end its run: insertWebhookEvents); the
 * dispatcher (delivery/webhook.ts) claims what is due, sends it and records the outcome, so a
 * slow or dead receiver never holds a sync up, and an event survives a restart.
 */
export class WebhookEventStore {
  constructor(private readonly db: Kysely<Database>) {}

  async add(events: readonly NewWebhookEvent[], now: number): Promise<number[]> {
    return insertWebhookEvents(this.db, events, now);
  }

  async get(id: number): Promise<WebhookEvent | undefined> {
    return this.db.selectFrom('webhook_events').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Takes up to `limit` due events for sending: their next attempt moves to `leaseUntil`, so
   * another dispatcher (another process on the same PostgreSQL) does not send them too, and an
   * event whose sender died is due again once the lease is over. The UPDATE re-checks that the
   * event is still due, so of two dispatchers that selected the same rows only one gets each.
   */
  async claimDue(now: number, limit: number, leaseUntil: number, room: (url: string) => number = () => limit): Promise<WebhookEvent[]> {
    const picked: number[] = [];
    const taken = new Map<string, number>();
    const full = new Set<string>();
    // `room(url)`: how many more of that URL's events may be taken (the dispatcher's per-receiver
    // bound and circuit breaker). A URL without room is left out of the next look, so a dead
    // receiver's thousand due events do not hide a healthy one's behind them. Each look either
    // takes a row or fills a URL, so the looks end.
    for (;;) {
      let query = this.db.selectFrom('webhook_events').select(['id', 'url']).where('delivered_at', 'is', null).where('next_attempt_at', '<=', now);
      if (full.size > 0) query = query.where('url', 'not in', [...full]);
      if (picked.length > 0) query = query.where('id', 'not in', picked);
      const rows = await query.orderBy('next_attempt_at').orderBy('id').limit(limit).execute();
      for (const row of rows) {
        if (picked.length >= limit || full.has(row.url)) continue;
        const count = taken.get(row.url) ?? 0;
        if (count >= room(row.url)) {
          full.add(row.url);
          continue;
        }
        taken.set(row.url, count + 1);
        picked.push(row.id);
      }
      if (picked.length >= limit || rows.length < limit) break;
    }
    if (picked.length === 0) return [];
    const claimed = await this.db
      .updateTable('webhook_events')
      .set({ next_attempt_at: leaseUntil })
      .where('id', 'in', picked)
      .where('delivered_at', 'is', null)
      .where('next_attempt_at', '<=', now)
      .returningAll()
      .execute();
    return claimed.sort((a, b) => a.id - b.id);
  }

  async markDelivered(id: number, now: number): Promise<void> {
    await this.db
      .updateTable('webhook_events')
      .set((eb) => ({ delivered_at: now, attempts: eb('attempts', '+', 1), last_error: null }))
      .where('id', '=', id)
      .execute();
  }

  async scheduleRetry(id: number, nextAttemptAt: number, error: string): Promise<void> {
    await this.db
      .updateTable('webhook_events')
      .set((eb) => ({ next_attempt_at: nextAttemptAt, attempts: eb('attempts', '+', 1), last_error: error }))
      .where('id', '=', id)
      .execute();
  }

  /** No more attempts: kept (with its error) for whoever looks, never due again. */
  async giveUp(id: number, error: string, countAttempt = true): Promise<void> {
    await this.db
      .updateTable('webhook_events')
      .set((eb) => ({ next_attempt_at: GAVE_UP, attempts: countAttempt ? eb('attempts', '+', 1) : eb.ref('attempts'), last_error: error }))
      .where('id', '=', id)
      .execute();
  }

  /**
   * Not now, and not counted as an attempt: the event could not even be tried (its receiver's
   * secret cannot be opened until its key is back in the ring). Never given up for that.
   */
  async postpone(id: number, nextAttemptAt: number, error: string): Promise<void> {
    await this.db.updateTable('webhook_events').set({ next_attempt_at: nextAttemptAt, last_error: error }).where('id', '=', id).execute();
  }

  /** Hands a claimed event back uncounted (the dispatcher stopped before its attempt ended). */
  async release(id: number, now: number): Promise<void> {
    await this.db.updateTable('webhook_events').set({ next_attempt_at: now }).where('id', '=', id).where('delivered_at', 'is', null).execute();
  }
}

/**
 * Writes outbox rows on `db`, which may be a transaction: a sync writes a message's
 * `message.new` rows in the transaction that commits the message, and a run's `sync.failed` in
 * the one that records its end, so no crash can leave one without the other.
 */
export async function insertWebhookEvents(db: Kysely<Database>, events: readonly NewWebhookEvent[], now: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < events.length; i += ROWS_PER_STATEMENT) {
    const rows = events.slice(i, i + ROWS_PER_STATEMENT).map((e) => ({ account_id: e.accountId, url: e.url, type: e.type, body: e.body, next_attempt_at: now }));
    const inserted = await db.insertInto('webhook_events').values(rows).returning('id').execute();
    ids.push(...inserted.map((r) => r.id));
  }
  return ids;
}
