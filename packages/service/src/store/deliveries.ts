import { sql, type Kysely } from 'kysely';
import type { AccountDestination, Database, DeliveryState, DestinationOrigin } from './schema.js';

/** A destination as its owner names it: the row is found (or made) by `key`. */
export interface DestinationInput {
  readonly key: string;
  readonly kind: string;
  /** Settings as JSON text, no secret in it. */
  readonly spec: string;
  /** Sealed (accounts/secrets.ts), or null. */
  readonly credentials: string | null;
}

/** A stored message some destinations have not accepted yet: the outbox. */
export interface DueMessage {
  readonly messageId: number;
  readonly uid: string;
  /** Octets stored. */
  readonly size: number;
  /** The destinations (ids) still to accept it, in the order given to `due`. */
  readonly destinationIds: readonly number[];
}

/** One destination's answer for one message. */
export interface DeliveryAnswer {
  readonly messageId: number;
  readonly destinationId: number;
  readonly state: DeliveryState;
  readonly reply: string | null;
}

/** What the message API shows per destination: `pending` when no answer is recorded yet. */
export interface DeliveryView {
  readonly destinationId: number;
  readonly key: string;
  readonly kind: string;
  readonly state: DeliveryState | 'pending';
  readonly attempts: number;
  readonly reply: string | null;
  readonly updatedAt: number | null;
}

/** Rows per INSERT: 6 columns x 200 stays far below either database's bound parameters. */
const ROWS_PER_STATEMENT = 200;

/**
 * Destinations and the delivery state per message and destination: the outbox that `popwire
 * sync` and serve hand over from after the store has committed (sync/handover.ts).
 *
 * The store's own promise stays exactly-once (a message is committed once). A destination gets
 * at-least-once: an answer is recorded after the destination gave it, in batches, so a process
 * killed between the two hands the unrecorded ones over again; no more than one batch.
 */
export class DeliveryStore {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * This run's destinations for `popwire sync`: each found by its key, or added. One that is
   * added receives the messages stored from now on (its `first_message_id` is the account's
   * newest message id), not the store's history.
   */
  async ensure(accountId: number, origin: DestinationOrigin, inputs: readonly DestinationInput[], now: number): Promise<AccountDestination[]> {
    return this.db.transaction().execute(async (trx) => {
      const newest = await trx
        .selectFrom('messages')
        .select((eb) => eb.fn.max('id').as('id'))
        .where('account_id', '=', accountId)
        .executeTakeFirst();
      const first = Number(newest?.id ?? 0);
      const rows: AccountDestination[] = [];
      for (const [position, input] of inputs.entries()) {
        const row = await trx
          .insertInto('account_destinations')
          .values({ account_id: accountId, origin, position, ...input, first_message_id: first, created_at: now, updated_at: now })
          .onConflict((oc) =>
            oc.columns(['account_id', 'origin', 'key']).doUpdateSet({ kind: input.kind, spec: input.spec, credentials: input.credentials, position, updated_at: now }),
          )
          .returningAll()
          .executeTakeFirstOrThrow();
        rows.push(row);
      }
      return rows;
    });
  }

  /**
   * The API's list for an account, whole: a destination whose key is in the list keeps its row
   * and delivery state (its credentials kept when `credentials` is undefined: an update that
   * does not repeat the secret); the others go, with their state.
   */
  async replace(
    accountId: number,
    inputs: ReadonlyArray<Omit<DestinationInput, 'credentials'> & { readonly credentials: string | null | undefined }>,
    now: number,
  ): Promise<AccountDestination[]> {
    return this.db.transaction().execute(async (trx) => {
      const keys = inputs.map((i) => i.key);
      let removal = trx.deleteFrom('account_destinations').where('account_id', '=', accountId).where('origin', '=', 'api');
      if (keys.length > 0) removal = removal.where('key', 'not in', keys);
      await removal.execute();
      const newest = await trx.selectFrom('messages').select((eb) => eb.fn.max('id').as('id')).where('account_id', '=', accountId).executeTakeFirst();
      const first = Number(newest?.id ?? 0);
      const rows: AccountDestination[] = [];
      for (const [position, input] of inputs.entries()) {
        const { credentials, ...rest } = input;
        const kept = credentials === undefined ? {} : { credentials };
        const row = await trx
          .insertInto('account_destinations')
          .values({ account_id: accountId, origin: 'api', position, ...rest, credentials: credentials ?? null, first_message_id: first, created_at: now, updated_at: now })
          .onConflict((oc) => oc.columns(['account_id', 'origin', 'key']).doUpdateSet({ kind: rest.kind, spec: rest.spec, position, updated_at: now, ...kept }))
          .returningAll()
          .executeTakeFirstOrThrow();
        rows.push(row);
      }
      return rows;
    });
  }

  /** Key rotation: `reseal` returns the sealed value anew, or undefined to leave it. Returns how many changed. */
  async reseal(accountId: number, reseal: (sealed: string, destinationKey: string) => string | undefined): Promise<number> {
    let count = 0;
    for (const row of await this.forAccount(accountId)) {
      if (row.credentials === null) continue;
      const sealed = reseal(row.credentials, row.key);
      if (sealed === undefined) continue;
      await this.db.updateTable('account_destinations').set({ credentials: sealed }).where('id', '=', row.id).execute();
      count++;
    }
    return count;
  }

  async forAccount(accountId: number, origin?: DestinationOrigin): Promise<AccountDestination[]> {
    let query = this.db.selectFrom('account_destinations').selectAll().where('account_id', '=', accountId);
    if (origin !== undefined) query = query.where('origin', '=', origin);
    return query.orderBy('position').orderBy('id').execute();
  }

  /** Every account's destinations of `origin`, by account, in one query (for the account list: not one query per account). */
  async byAccount(origin: DestinationOrigin): Promise<Map<number, AccountDestination[]>> {
    const rows = await this.db.selectFrom('account_destinations').selectAll().where('origin', '=', origin).orderBy('account_id').orderBy('position').orderBy('id').execute();
    const byAccount = new Map<number, AccountDestination[]>();
    for (const row of rows) {
      const list = byAccount.get(row.account_id);
      if (list === undefined) byAccount.set(row.account_id, [row]);
      else list.push(row);
    }
    return byAccount;
  }

  /**
   * The account's stored messages that some of `destinations` has not accepted: never handed
   * over, in flight when a run died, or refused (temporarily or not: every run tries again).
   * Whole messages only (a headers-only copy is not the message); oldest first.
   */
  async due(accountId: number, destinations: readonly AccountDestination[]): Promise<DueMessage[]> {
    const byMessage = new Map<number, { uid: string; size: number; destinationIds: number[] }>();
    for (const destination of destinations) {
      const rows = await this.db
        .selectFrom('messages as m')
        .leftJoin('message_deliveries as d', (join) => join.onRef('d.message_id', '=', 'm.id').on('d.destination_id', '=', destination.id))
        .select(['m.id', 'm.uid', 'm.size'])
        .where('m.account_id', '=', accountId)
        .where('m.pending', '=', 0)
        .where('m.headers_only', '=', 0)
        .where('m.id', '>', destination.first_message_id)
        .where((eb) => eb.or([eb('d.state', 'is', null), eb('d.state', '<>', 'delivered')]))
        .execute();
      for (const row of rows) {
        const entry = byMessage.get(row.id) ?? { uid: row.uid, size: row.size, destinationIds: [] };
        entry.destinationIds.push(destination.id);
        byMessage.set(row.id, entry);
      }
    }
    return [...byMessage.entries()].sort(([a], [b]) => a - b).map(([messageId, entry]) => ({ messageId, ...entry }));
  }

  /**
   * The bytes of several messages in one query (the outbox reads ahead in batches: two queries
   * per message, as MessageStore.rawBuffer makes, cost more than the LMTP round trip).
   */
  async bytes(messageIds: readonly number[]): Promise<Map<number, Buffer>> {
    const parts = new Map<number, Buffer[]>();
    if (messageIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('message_chunks')
      .select(['message_id', 'data'])
      .where('message_id', 'in', messageIds)
      .orderBy('message_id')
      .orderBy('seq')
      .execute();
    for (const row of rows) {
      const data: Uint8Array = row.data;
      const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const list = parts.get(row.message_id) ?? [];
      list.push(chunk);
      parts.set(row.message_id, list);
    }
    return new Map([...parts].map(([id, list]) => [id, list.length === 1 ? list[0]! : Buffer.concat(list)]));
  }

  /** Records answers in one transaction; each answer counts one more attempt. */
  async record(answers: readonly DeliveryAnswer[], now: number): Promise<void> {
    if (answers.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < answers.length; i += ROWS_PER_STATEMENT) {
        await trx
          .insertInto('message_deliveries')
          .values(
            answers.slice(i, i + ROWS_PER_STATEMENT).map((a) => ({ message_id: a.messageId, destination_id: a.destinationId, state: a.state, reply: a.reply, attempts: 1, updated_at: now })),
          )
          .onConflict((oc) =>
            oc.columns(['message_id', 'destination_id']).doUpdateSet((eb) => ({
              state: eb.ref('excluded.state'),
              reply: eb.ref('excluded.reply'),
              updated_at: eb.ref('excluded.updated_at'),
              attempts: sql<number>`message_deliveries.attempts + 1`,
            })),
          )
          .execute();
      }
    });
  }

  /** A message's delivery to each destination of its account that covers it (messages stored after the destination was added). */
  async forMessage(accountId: number, messageId: number): Promise<DeliveryView[]> {
    const rows = await this.db
      .selectFrom('account_destinations as a')
      .leftJoin('message_deliveries as d', (join) => join.onRef('d.destination_id', '=', 'a.id').on('d.message_id', '=', messageId))
      .select(['a.id', 'a.key', 'a.kind', 'd.state', 'd.attempts', 'd.reply', 'd.updated_at'])
      .where('a.account_id', '=', accountId)
      .where('a.first_message_id', '<', messageId)
      .orderBy('a.origin')
      .orderBy('a.position')
      .orderBy('a.id')
      .execute();
    return rows.map((r) => ({
      destinationId: r.id,
      key: r.key,
      kind: r.kind,
      state: r.state ?? 'pending',
      attempts: r.attempts ?? 0,
      reply: r.reply,
      updatedAt: r.updated_at,
    }));
  }
}
