import { sql, type Kysely, type RawBuilder, type SqlBool, type Transaction } from 'kysely';
import { randomUUID } from 'node:crypto';
import { accountCondition, EVERY_ACCOUNT, type AccountFilter } from './account-filter.js';
import { sqliteDatabaseOf } from './database.js';
import { dialectOf, type Dialect } from './dialect.js';
import { StoreError } from './errors.js';
import { indexSqlite, postgresHits, tsvectorOf } from './search.js';
import { toFts5, type SearchQuery } from './search-query.js';
import { ftsDocument, searchDocument, type BodyText } from './search-text.js';
import { SqliteWrites } from './sqlite-writes.js';
import { insertWebhookEvents, type NewWebhookEvent } from './webhook-events.js';
import type { Account, Database, StoredMessage } from './schema.js';

export interface Recipient {
  readonly name: string;
  readonly address: string;
}

/** A stored message's To mailboxes; a row from before migration 0003 knows only their addresses. */
export function recipientsOf(row: Pick<StoredMessage, 'to_mailboxes' | 'to_addresses'>): Recipient[] {
  if (row.to_mailboxes !== null) return JSON.parse(row.to_mailboxes) as Recipient[];
  return row.to_addresses === '' ? [] : row.to_addresses.split(',').map((address) => ({ name: '', address: address.trim() }));
}

/** What a list view shows of a message, read from its headers at store time. */
export interface MessageSummary {
  readonly date: number | null;
  readonly fromAddress: string | null;
  readonly fromName: string | null;
  readonly toAddresses: string;
  /** The same recipients with their display names ('' when none), groups flattened. */
  readonly to: readonly Recipient[];
  readonly subject: string | null;
  readonly messageId: string | null;
  readonly hasAttachments: boolean;
  /**
   * The text body (at most MAX_INDEXED_TEXT characters), for the search index only: never stored
   * as a column. ASCII octets when the body is ASCII text as it stands (search-text.ts singlePartBody).
   */
  readonly text?: BodyText | null | undefined;
}

/** A message ready to commit: its bytes, already hashed, and its UID's row. */
export interface MessageToCommit {
  readonly uid: string;
  readonly listedSize: number;
  readonly firstSeenAt: number;
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly headersOnly: boolean;
  readonly summary: MessageSummary;
}

/** A message that a commit has just stored: what its `message.new` event tells. */
export interface NewlyStored {
  readonly id: number;
  readonly uid: string;
  readonly size: number;
  readonly headersOnly: boolean;
  readonly summary: MessageSummary;
}

/**
 * The outbox rows for messages a commit stores for the first time, written in the same
 * transaction: a message is never stored without its `message.new` (nor the event sent for a
 * message that was rolled back). A message that was already stored (a commit whose outcome was
 * lost, run again) has its rows already and gets none: repeats keep one Popwire-Delivery.
 */
export type OutboxRows = (messages: readonly NewlyStored[]) => readonly NewWebhookEvent[];

/** A page of an account's messages, newest first; `next` continues it. */
export interface MessagePage {
  readonly messages: StoredMessage[];
  readonly next: MessageCursor | null;
}

/** Where a page ended: the last message's (date, id); messages without a date sort last. */
export interface MessageCursor {
  readonly date: number | null;
  readonly id: number;
}

export interface MessageListOptions {
  readonly accountId?: number | undefined;
  readonly limit?: number | undefined;
  readonly after?: MessageCursor | null | undefined;
  /** Dated at or after this time (ms since the epoch). */
  readonly since?: number | undefined;
  /** Dated before this time. */
  readonly until?: number | undefined;
  /** The sender's address contains this, in any case. */
  readonly from?: string | undefined;
  readonly seen?: boolean | undefined;
  readonly flagged?: boolean | undefined;
  /** Soft-deleted messages: left out (the default), listed with the others, or the only ones listed. */
  readonly deleted?: DeletedFilter | undefined;
}

export type DeletedFilter = 'exclude' | 'include' | 'only';

/** A page of search results, best first; `next` continues it. */
export interface SearchPage {
  readonly messages: StoredMessage[];
  readonly next: SearchCursor | null;
}

/** Where a page of results ended: the last one's rank (lower is better, on both dialects) and id. */
export interface SearchCursor {
  readonly rank: number;
  readonly id: number;
}

export interface SearchOptions extends Omit<MessageListOptions, 'after'> {
  readonly after?: SearchCursor | null | undefined;
  /** How many of the newest matches are ranked; default SEARCH_CANDIDATES (for tests and the benchmark). */
  readonly candidates?: number | undefined;
}

export interface MessageStateChange {
  readonly seen?: boolean | undefined;
  readonly flagged?: boolean | undefined;
}

/** The account fields a `message.updated` event needs: where it goes, and how it names the account. */
export type EventAccount = Pick<Account, 'id' | 'name' | 'webhook_url' | 'webhook_secret'>;

/** The outbox rows for a state change, written in its transaction. */
export type UpdateOutboxRows = (account: EventAccount, before: StoredMessage, after: StoredMessage) => readonly NewWebhookEvent[];

/**
 * The columns a message row is read with. Not `select *`: PostgreSQL's `search` tsvector is
 * as large as the text it indexes, and no reader wants it.
 */
const COLUMNS = [
  'messages.id',
  'messages.account_id',
  'messages.uid',
  'messages.size',
  'messages.sha256',
  'messages.pending',
  'messages.headers_only',
  'messages.date',
  'messages.from_address',
  'messages.from_name',
  'messages.to_addresses',
  'messages.to_mailboxes',
  'messages.subject',
  'messages.message_id_header',
  'messages.has_attachments',
  'messages.stored_at',
  'messages.seen',
  'messages.flagged',
  'messages.deleted_at',
] as const;

/** How many of the newest matches a search ranks (MessageStore.search says why). */
export const SEARCH_CANDIDATES = 1000;

/** FTS5's bm25 weights, in the index's column order: subject, sender, recipients, body. */
const BM25 = sql.raw('bm25(message_search, 4.0, 2.0, 2.0, 1.0)');

/** Raw bytes are kept in chunks of at most this size, so a large message streams out of the database. */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * Messages and their bytes. A message is committed together with its UID's row (state
 * `stored`), in one transaction: a UID is never marked stored without its bytes, and its bytes
 * never exist without the UID (except the `pending` rows of a large message being written,
 * which the next run removes).
 *
 * `filter` limits what get, raw, list and count see (Store.restrictedTo): a message of an
 * account outside it is not found.
 */
export class MessageStore {
  private readonly dialect: Dialect;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly filter: AccountFilter = EVERY_ACCOUNT,
  ) {
    this.dialect = dialectOf(db as unknown as Kysely<unknown>);
  }

  /** The rows of visible messages: committed, of an account the filter lets through. */
  private visible(db: Kysely<Database> = this.db) {
    const query = db.selectFrom('messages').where('messages.pending', '=', 0);
    const condition = accountCondition('messages.account_id', this.filter);
    return condition === undefined ? query : query.where(condition);
  }

  /** Commits the batch: one transaction, so one fsync of the log for all of them. */
  async commit(accountId: number, batch: readonly MessageToCommit[], now: number, outbox?: OutboxRows): Promise<number[]> {
    if (batch.length === 0) return [];
    const database = sqliteDatabaseOf(this.db);
    if (database !== undefined) return this.commitSqlite(SqliteWrites.of(database), accountId, batch, now, outbox);
    // A handful of statements per batch, not per message: each statement through the query
    // builder costs far more than SQLite's own work on a 4 KB row.
    return this.db.transaction().execute(async (trx) => {
      await dropReplacedHeaders(trx, accountId, batch.filter((m) => !m.headersOnly).map((m) => m.uid));
      const ids = new Map<string, number>();
      for (const rows of slices(batch, ROWS_PER_STATEMENT)) {
        const inserted = await trx
          .insertInto('messages')
          .values(rows.map((m) => messageRow(accountId, m, now, 0, this.dialect)))
          .onConflict((oc) => oc.columns(['account_id', 'uid', 'sha256']).doNothing())
          .returning(['id', 'uid'])
          .execute();
        for (const row of inserted) ids.set(row.uid, row.id);
      }
      const fresh = new Set(ids.keys());
      if (this.dialect === 'sqlite') await indexSqlite(trx, batch.filter((m) => fresh.has(m.uid)).map((m) => ({ id: ids.get(m.uid)!, doc: ftsDocumentOf(m.summary) })));
      // Already stored: this very commit ran before and its outcome was lost. Mark the UID, store nothing twice.
      for (const message of batch.filter((m) => !fresh.has(m.uid))) {
        const existing = await storedCopy(trx, accountId, message);
        if (existing === undefined) throw new StoreError('STORE_MESSAGE_NOT_FOUND', `the message under UID ${message.uid} was neither inserted nor found`);
        ids.set(message.uid, existing);
      }
      const chunks = batch
        .filter((m) => fresh.has(m.uid))
        .flatMap((m) => chunked(m.bytes).map((data, seq) => ({ message_id: ids.get(m.uid)!, seq, data })));
      for (const rows of slices(chunks, ROWS_PER_STATEMENT)) await trx.insertInto('message_chunks').values(rows).execute();
      for (const rows of slices(batch, ROWS_PER_STATEMENT)) {
        await markStored(
          trx,
          accountId,
          rows.map((m) => ({ ...m, messageId: ids.get(m.uid)! })),
        );
      }
      if (outbox !== undefined) {
        const stored = batch.filter((m) => fresh.has(m.uid)).map((m) => ({ id: ids.get(m.uid)!, uid: m.uid, size: m.bytes.length, headersOnly: m.headersOnly, summary: m.summary }));
        if (stored.length > 0) await insertWebhookEvents(trx, outbox(stored), now);
      }
      return batch.map((m) => ids.get(m.uid)!);
    });
  }

  /**
   * commit on SQLite: the same rows as the Kysely path below (which PostgreSQL takes), through
   * statements prepared once (sqlite-writes.ts says why).
   */
  private async commitSqlite(writes: SqliteWrites, accountId: number, batch: readonly MessageToCommit[], now: number, outbox?: OutboxRows): Promise<number[]> {
    return this.db.transaction().execute(async (trx) => {
      await dropReplacedHeaders(trx, accountId, batch.filter((m) => !m.headersOnly).map((m) => m.uid));
      // One table at a time, not one message at a time: writing each message's four rows
      // together took 110 to 140 us of CPU per message, table by table 60 to 80 (4,096 messages
      // of 4 KB, FTS5 included; SQLite's pages of one table stay at hand).
      const ids: number[] = [];
      const stored: NewlyStored[] = [];
      for (const m of batch) {
        const id = writes.insert(accountId, m.uid, m.bytes.length, m.sha256, m.headersOnly, m.summary, now);
        if (id !== undefined) {
          ids.push(id);
          stored.push({ id, uid: m.uid, size: m.bytes.length, headersOnly: m.headersOnly, summary: m.summary });
          continue;
        }
        // Already stored: this very commit ran before and its outcome was lost. Mark the UID, store nothing twice.
        const copy = writes.copyOf(accountId, m.uid, m.sha256);
        if (copy === undefined) throw new StoreError('STORE_MESSAGE_NOT_FOUND', `the message under UID ${m.uid} was neither inserted nor found`);
        ids.push(copy);
      }
      for (const m of stored) writes.index(m.id, ftsDocumentOf(m.summary));
      const fresh = new Set(stored.map((m) => m.id));
      batch.forEach((m, i) => {
        if (!fresh.has(ids[i]!)) return;
        const chunks = chunked(m.bytes);
        for (let seq = 0; seq < chunks.length; seq++) writes.chunk(ids[i]!, seq, chunks[seq]!);
      });
      batch.forEach((m, i) => writes.stored(accountId, m, ids[i]!));
      if (outbox !== undefined && stored.length > 0) await insertWebhookEvents(trx, outbox(stored), now);
      return ids;
    });
  }

  /**
   * A large message is written chunk by chunk, each chunk its own small transaction, so that
   * neither its bytes nor a long transaction are held while it arrives. The row stays `pending`
   * (invisible, and not a stored UID) until finishLarge commits it with its UID.
   */
  async beginLarge(accountId: number, uid: string, now: number): Promise<number> {
    const { id } = await this.db
      .insertInto('messages')
      .values({ account_id: accountId, uid, size: 0, sha256: `pending:${randomUUID()}`, pending: 1, stored_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  async appendChunk(messageId: number, seq: number, data: Buffer): Promise<void> {
    await this.db.insertInto('message_chunks').values({ message_id: messageId, seq, data }).execute();
  }

  /** Returns the stored message's id: this row's, or the copy's that was already stored. */
  async finishLarge(accountId: number, messageId: number, message: Omit<MessageToCommit, 'bytes'> & { size: number }, now: number, outbox?: OutboxRows): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const existing = await storedCopy(trx, accountId, message);
      if (existing !== undefined) {
        await trx.deleteFrom('message_chunks').where('message_id', '=', messageId).execute();
        await trx.deleteFrom('messages').where('id', '=', messageId).execute();
        await markStored(trx, accountId, [{ ...message, messageId: existing }]);
        return existing;
      }
      if (!message.headersOnly) await dropReplacedHeaders(trx, accountId, [message.uid]);
      const row = messageRow(accountId, { ...message, bytes: Buffer.alloc(0) }, now, 0, this.dialect);
      await trx.updateTable('messages').set({ ...row, size: message.size }).where('id', '=', messageId).execute();
      if (this.dialect === 'sqlite') await indexSqlite(trx, [{ id: messageId, doc: ftsDocumentOf(message.summary) }]);
      await markStored(trx, accountId, [{ ...message, messageId }]);
      if (outbox !== undefined) await insertWebhookEvents(trx, outbox([{ id: messageId, uid: message.uid, size: message.size, headersOnly: message.headersOnly, summary: message.summary }]), now);
      return messageId;
    });
  }

  /** Removes what a run that died while writing a large message left behind. */
  async removePending(accountId: number): Promise<number> {
    const pending = await this.db.selectFrom('messages').select('id').where('account_id', '=', accountId).where('pending', '=', 1).execute();
    if (pending.length === 0) return 0;
    const ids = pending.map((p) => p.id);
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('message_chunks').where('message_id', 'in', ids).execute();
      await trx.deleteFrom('messages').where('id', 'in', ids).execute();
    });
    return ids.length;
  }

  /** A soft-deleted message included: it can still be read until it is purged. */
  async get(id: number): Promise<StoredMessage> {
    const row = await this.visible().select(COLUMNS).where('messages.id', '=', id).executeTakeFirst();
    if (row === undefined) throw new StoreError('STORE_MESSAGE_NOT_FOUND', `no stored message has id ${id}`);
    return row;
  }

  /** Newest first; messages without a date after all dated ones, by id. */
  async list(options: MessageListOptions = {}): Promise<MessagePage> {
    const limit = options.limit ?? 50;
    let query = this.visible().select(COLUMNS);
    for (const condition of listConditions(options)) query = query.where(condition);
    const after = options.after;
    if (after != null) {
      query =
        after.date === null
          ? query.where((eb) => eb.and([eb('messages.date', 'is', null), eb('messages.id', '<', after.id)]))
          : query.where((eb) =>
              eb.or([
                eb('messages.date', '<', after.date),
                eb.and([eb('messages.date', '=', after.date), eb('messages.id', '<', after.id)]),
                eb('messages.date', 'is', null),
              ]),
            );
    }
    // SQLite sorts NULL last in DESC order and PostgreSQL first: the CASE puts the undated last on both.
    const rows = await query
      .orderBy((eb) => eb.case().when('messages.date', 'is', null).then(1).else(0).end())
      .orderBy('messages.date', 'desc')
      .orderBy('messages.id', 'desc')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { messages: page, next: rows.length > limit && last !== undefined ? { date: last.date, id: last.id } : null };
  }

  /**
   * Full-text search (search-query.ts gives the syntax), best first, with the list's filters.
   * The rank is FTS5's bm25 on SQLite and minus ts_rank on PostgreSQL: lower is better on both,
   * so one cursor, (rank, id), pages either.
   *
   * Only the SEARCH_CANDIDATES newest matches (after the filters and the account restriction)
   * are ranked, and paged. Ranking costs microseconds per match, and a word in every message of
   * a 100,000-message store took 0.3 to 0.5 s to rank on either database (bench (l)); with
   * 1,000 it was about a third of the time of 5,000 and a tenth of no cap, in the same run. What
   * a very common word leaves out is the oldest mail; a narrower search (another word, a field,
   * a date) reaches further back.
   */
  async search(query: SearchQuery, options: SearchOptions = {}): Promise<SearchPage> {
    const limit = options.limit ?? 50;
    const candidates = options.candidates ?? SEARCH_CANDIDATES;
    const conditions = [sql<SqlBool>`messages.pending = 0`, ...listConditions(options)];
    const restriction = accountCondition('messages.account_id', this.filter);
    if (restriction !== undefined) conditions.push(restriction);
    const where = sql.join(conditions, sql` and `);
    // SQLite: CROSS JOIN keeps the FTS5 table as the outer loop, read newest first (its rowid is
    // the message id), so the scan stops at the cap. PostgreSQL: postgresHits chooses the plan.
    const hits =
      this.dialect === 'sqlite'
        ? sql<{ id: number; rank: number }>`(select message_search.rowid as id, ${BM25} as rank from message_search cross join messages on messages.id = message_search.rowid
            where message_search match ${toFts5(query)} and ${where} order by message_search.rowid desc limit ${candidates})`
        : await postgresHits(this.db, query, where, candidates);
    let select = this.db.selectFrom('messages').innerJoin(hits.as('hits'), 'hits.id', 'messages.id').select(COLUMNS).select('hits.rank');
    const after = options.after;
    if (after != null) {
      select = select.where((eb) => eb.or([eb('hits.rank', '>', after.rank), eb.and([eb('hits.rank', '=', after.rank), eb('messages.id', '<', after.id)])]));
    }
    const rows = await select.orderBy('hits.rank').orderBy('messages.id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      messages: page.map(({ rank: _rank, ...row }) => row),
      next: rows.length > limit && last !== undefined ? { rank: last.rank, id: last.id } : null,
    };
  }

  /**
   * Sets seen and flagged. Returns the message as it now is; the outbox rows (`message.updated`)
   * are written in the same transaction, and only when something changed.
   */
  async updateState(id: number, change: MessageStateChange, outbox?: UpdateOutboxRows, now = Date.now()): Promise<StoredMessage> {
    return this.db.transaction().execute(async (trx) => {
      const before = await this.visible(trx).select(COLUMNS).where('messages.id', '=', id).executeTakeFirst();
      if (before === undefined) throw new StoreError('STORE_MESSAGE_NOT_FOUND', `no stored message has id ${id}`);
      const set: { seen?: number; flagged?: number } = {};
      if (change.seen !== undefined && Number(change.seen) !== before.seen) set.seen = Number(change.seen);
      if (change.flagged !== undefined && Number(change.flagged) !== before.flagged) set.flagged = Number(change.flagged);
      if (Object.keys(set).length === 0) return before;
      await trx.updateTable('messages').set(set).where('id', '=', id).execute();
      const after = { ...before, ...set };
      if (outbox !== undefined) {
        const account = await trx.selectFrom('accounts').select(['id', 'name', 'webhook_url', 'webhook_secret']).where('id', '=', before.account_id).executeTakeFirstOrThrow();
        const rows = outbox(account, before, after);
        if (rows.length > 0) await insertWebhookEvents(trx, rows, now);
      }
      return after;
    });
  }

  /** Hides the message (a soft delete): left out of lists, purged later (purgeDeleted). Nothing happens on the server. */
  async softDelete(id: number, now: number): Promise<StoredMessage> {
    const row = await this.get(id);
    if (row.deleted_at !== null) return row;
    await this.db.updateTable('messages').set({ deleted_at: now }).where('id', '=', id).where('deleted_at', 'is', null).execute();
    return { ...row, deleted_at: now };
  }

  /**
   * Removes the message, its bytes and its index entry now. Its UID's row stays (`stored`, its
   * message_id set to null by the foreign key): the next sync knows the UID and does not fetch
   * the message again, and a purge never touches the server.
   */
  async purge(id: number): Promise<void> {
    await this.get(id);
    await this.db.deleteFrom('messages').where('id', '=', id).execute();
  }

  /** Purges the messages soft-deleted before `before`, a batch per transaction; returns how many. */
  async purgeDeleted(before: number, batch = 500): Promise<number> {
    let purged = 0;
    for (;;) {
      const rows = await this.db.selectFrom('messages').select('id').where('deleted_at', '<', before).limit(batch).execute();
      if (rows.length === 0) return purged;
      const result = await this.db.deleteFrom('messages').where('id', 'in', rows.map((r) => r.id)).executeTakeFirst();
      purged += Number(result.numDeletedRows);
    }
  }

  /** Soft-deleted messages not counted. */
  async count(accountId?: number): Promise<number> {
    let query = this.visible()
      .where('messages.deleted_at', 'is', null)
      .select((eb) => eb.fn.countAll<number | string>().as('n'));
    if (accountId !== undefined) query = query.where('account_id', '=', accountId);
    // PostgreSQL's count(*) is int8, which database.ts reads as a number; SQLite's is already one.
    return Number((await query.executeTakeFirstOrThrow()).n);
  }

  /** The message's exact bytes, one chunk at a time. */
  async *raw(id: number): AsyncGenerator<Buffer> {
    await this.get(id);
    yield* this.chunks(id);
  }

  /** The chunks of any message row, a pending one included (for the summary of a large message before its commit). */
  async *chunks(id: number): AsyncGenerator<Buffer> {
    for (let seq = 0; ; seq++) {
      const chunk = await this.db.selectFrom('message_chunks').select('data').where('message_id', '=', id).where('seq', '=', seq).executeTakeFirst();
      if (chunk === undefined) return;
      // Both drivers hand back a Buffer; Buffer.from would copy every chunk of every download.
      const data: Uint8Array = chunk.data;
      yield Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    }
  }

  async rawBuffer(id: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.raw(id)) parts.push(chunk);
    return Buffer.concat(parts);
  }
}

/**
 * The filters a list and a search share, as conditions on `messages`. A date filter leaves out
 * the messages without a date: nothing says they are in the range.
 */
function listConditions(options: Omit<MessageListOptions, 'after'>): RawBuilder<SqlBool>[] {
  const out: RawBuilder<SqlBool>[] = [];
  const column = (name: string) => sql.ref(`messages.${name}`);
  if (options.accountId !== undefined) out.push(sql<SqlBool>`${column('account_id')} = ${options.accountId}`);
  if (options.since !== undefined) out.push(sql<SqlBool>`${column('date')} >= ${options.since}`);
  if (options.until !== undefined) out.push(sql<SqlBool>`${column('date')} < ${options.until}`);
  if (options.from !== undefined) {
    // lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
    const pattern = `%${options.from.toLowerCase().replace(/[\\%_]/g, '\\$&')}%`;
    out.push(sql<SqlBool>`lower(${column('from_address')}) like ${pattern} escape '\\'`);
  }
  if (options.seen !== undefined) out.push(sql<SqlBool>`${column('seen')} = ${Number(options.seen)}`);
  if (options.flagged !== undefined) out.push(sql<SqlBool>`${column('flagged')} = ${Number(options.flagged)}`);
  const deleted = options.deleted ?? 'exclude';
  if (deleted === 'exclude') out.push(sql<SqlBool>`${column('deleted_at')} is null`);
  if (deleted === 'only') out.push(sql<SqlBool>`${column('deleted_at')} is not null`);
  return out;
}

function documentOf(s: MessageSummary) {
  return searchDocument({ subject: s.subject, fromName: s.fromName, fromAddress: s.fromAddress, to: s.to, text: s.text });
}

/** SQLite's index entry: FTS5 makes the words of ASCII text itself (search-text.ts ftsDocument). */
function ftsDocumentOf(s: MessageSummary) {
  return ftsDocument({ subject: s.subject, fromName: s.fromName, fromAddress: s.fromAddress, to: s.to, text: s.text });
}

function messageRow(accountId: number, message: MessageToCommit, now: number, pending: number, dialect: Dialect) {
  const s = message.summary;
  const row = {
    account_id: accountId,
    uid: message.uid,
    size: message.bytes.length,
    sha256: message.sha256,
    pending,
    headers_only: message.headersOnly ? 1 : 0,
    date: s.date,
    from_address: s.fromAddress,
    from_name: s.fromName,
    to_addresses: s.toAddresses,
    to_mailboxes: JSON.stringify(s.to),
    subject: s.subject,
    message_id_header: s.messageId,
    has_attachments: s.hasAttachments ? 1 : 0,
    stored_at: now,
  };
  // PostgreSQL's index is a column of the row, computed by the INSERT itself (store/search.ts).
  return dialect === 'postgres' ? ({ ...row, search: tsvectorOf(documentOf(s)) } as typeof row) : row;
}

async function markStored(
  trx: Transaction<Database>,
  accountId: number,
  messages: ReadonlyArray<Pick<MessageToCommit, 'uid' | 'listedSize' | 'firstSeenAt' | 'headersOnly'> & { messageId: number }>,
): Promise<void> {
  await trx
    .insertInto('seen_uids')
    .values(
      messages.map((m) => ({
        account_id: accountId,
        uid: m.uid,
        state: m.headersOnly ? ('headers' as const) : ('stored' as const),
        listed_size: m.listedSize,
        message_id: m.messageId,
        first_seen_at: m.firstSeenAt,
        deleted_at: null,
      })),
    )
    .onConflict((oc) =>
      oc.columns(['account_id', 'uid']).doUpdateSet((eb) => ({
        state: eb.ref('excluded.state'),
        listed_size: eb.ref('excluded.listed_size'),
        message_id: eb.ref('excluded.message_id'),
        deleted_at: null,
      })),
    )
    .execute();
}

/** The id of the message already stored with this UID and content, if any (unique by the messages_unique_content index). */
async function storedCopy(trx: Transaction<Database>, accountId: number, message: Pick<MessageToCommit, 'uid' | 'sha256'>): Promise<number | undefined> {
  const row = await trx
    .selectFrom('messages')
    .select('id')
    .where('account_id', '=', accountId)
    .where('uid', '=', message.uid)
    .where('sha256', '=', message.sha256)
    .executeTakeFirst();
  return row?.id;
}

/** Rows per INSERT: 15 columns x 200 stays far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters. */
const ROWS_PER_STATEMENT = 200;

function slices<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** At least one chunk, so an empty message still has its (empty) bytes. */
function chunked(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < bytes.length || out.length === 0; offset += CHUNK_BYTES) out.push(bytes.subarray(offset, offset + CHUNK_BYTES));
  return out;
}

/**
 * A full message replaces the headers kept earlier for its UID (the size limit was raised): one
 * copy of each message, so the headers-only row goes. One query per batch finds them.
 */
async function dropReplacedHeaders(trx: Transaction<Database>, accountId: number, uids: readonly string[]): Promise<void> {
  if (uids.length === 0) return;
  const replaced = await trx
    .selectFrom('seen_uids')
    .innerJoin('messages', 'messages.id', 'seen_uids.message_id')
    .select('messages.id')
    .where('seen_uids.account_id', '=', accountId)
    .where('seen_uids.uid', 'in', uids)
    .where('messages.headers_only', '=', 1)
    .execute();
  if (replaced.length === 0) return;
  const ids = replaced.map((r) => r.id);
  await trx.deleteFrom('message_chunks').where('message_id', 'in', ids).execute();
  await trx.deleteFrom('messages').where('id', 'in', ids).execute();
}
