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
 * The webhook outbox. A sync only inserts here (one statement per commit's events); the
 * dispatcher (delivery/webhook.ts) claims what is due, sends it and records the outcome, so a
 * slow or dead receiver never holds a sync up, and an event survives a restart.
 */
export class WebhookEventStore {
  constructor(private readonly db: Kysely<Database>) {}

  async add(events: readonly NewWebhookEvent[], now: number): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < events.length; i += ROWS_PER_STATEMENT) {
      const rows = events.slice(i, i + ROWS_PER_STATEMENT).map((e) => ({ account_id: e.accountId, url: e.url, type: e.type, body: e.body, next_attempt_at: now }));
      const inserted = await this.db.insertInto('webhook_events').values(rows).returning('id').execute();
      ids.push(...inserted.map((r) => r.id));
    }
    return ids;
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
  async claimDue(now: number, limit: number, leaseUntil: number): Promise<WebhookEvent[]> {
    const due = await this.db
      .selectFrom('webhook_events')
      .select('id')
      .where('delivered_at', 'is', null)
      .where('next_attempt_at', '<=', now)
      .orderBy('next_attempt_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    if (due.length === 0) return [];
    const claimed = await this.db
      .updateTable('webhook_events')
      .set({ next_attempt_at: leaseUntil })
      .where('id', 'in', due.map((r) => r.id))
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

  /** Hands a claimed event back uncounted (the dispatcher stopped before its attempt ended). */
  async release(id: number, now: number): Promise<void> {
    await this.db.updateTable('webhook_events').set({ next_attempt_at: now }).where('id', '=', id).where('delivered_at', 'is', null).execute();
  }
}
