import type Sqlite from 'better-sqlite3';
import type { MessageSummary } from './messages.js';
import type { SearchDocument } from './search-text.js';

/**
 * The statements a sync's commit runs once per message on SQLite, prepared once per database
 * and run by better-sqlite3 directly, inside the transaction Kysely opened.
 *
 * Why not Kysely: a profile of the first sync of 10,000 messages of 4 KB showed Kysely parsing
 * each row's values, visiting the tree and joining the SQL of the batch's 200-row INSERTs. With
 * the same rows through these statements, table by table, the commit of 4,096 such messages
 * took 77 to 78 us of CPU per message against 98 to 107 (the best of several runs each, FTS5
 * included), and its first, cold batch 91 to 140 against 134 to 167.
 *
 * Safe inside a Kysely transaction: better-sqlite3 is synchronous and Kysely's SQLite driver
 * holds its one connection for the transaction, so these run on that connection, between its
 * BEGIN and COMMIT, and nothing else runs meanwhile.
 */
export class SqliteWrites {
  private readonly insertMessage: Sqlite.Statement;
  private readonly storedCopy: Sqlite.Statement;
  private readonly insertChunk: Sqlite.Statement;
  private readonly markStored: Sqlite.Statement;
  private readonly indexMessage: Sqlite.Statement;

  private constructor(database: Sqlite.Database) {
    this.insertMessage = database.prepare(
      `insert into messages (account_id, uid, size, sha256, pending, headers_only, date, from_address, from_name, to_addresses, to_mailboxes, subject, message_id_header, has_attachments, stored_at)
       values (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       on conflict (account_id, uid, sha256) do nothing returning id`,
    );
    this.storedCopy = database.prepare('select id from messages where account_id = ? and uid = ? and sha256 = ?');
    this.insertChunk = database.prepare('insert into message_chunks (message_id, seq, data) values (?, ?, ?)');
    this.markStored = database.prepare(
      `insert into seen_uids (account_id, uid, state, listed_size, message_id, first_seen_at, deleted_at) values (?, ?, ?, ?, ?, ?, null)
       on conflict (account_id, uid) do update set state = excluded.state, listed_size = excluded.listed_size, message_id = excluded.message_id, deleted_at = null`,
    );
    this.indexMessage = database.prepare('insert into message_search (rowid, subject, sender, recipients, body) values (?, ?, ?, ?, ?)');
  }

  private static readonly made = new WeakMap<Sqlite.Database, SqliteWrites>();

  /** The statements of this database, prepared at its first commit. */
  static of(database: Sqlite.Database): SqliteWrites {
    let writes = SqliteWrites.made.get(database);
    if (writes === undefined) {
      writes = new SqliteWrites(database);
      SqliteWrites.made.set(database, writes);
    }
    return writes;
  }

  /** The new row's id, or undefined when this account already holds this UID with this content. */
  insert(accountId: number, uid: string, size: number, sha256: string, headersOnly: boolean, s: MessageSummary, now: number): number | undefined {
    const row = this.insertMessage.get(
      accountId,
      uid,
      size,
      sha256,
      headersOnly ? 1 : 0,
      s.date,
      s.fromAddress,
      s.fromName,
      s.toAddresses,
      JSON.stringify(s.to),
      s.subject,
      s.messageId,
      s.hasAttachments ? 1 : 0,
      now,
    ) as { id: number } | undefined;
    return row?.id;
  }

  copyOf(accountId: number, uid: string, sha256: string): number | undefined {
    return (this.storedCopy.get(accountId, uid, sha256) as { id: number } | undefined)?.id;
  }

  chunk(messageId: number, seq: number, data: Buffer): void {
    this.insertChunk.run(messageId, seq, data);
  }

  stored(accountId: number, m: { uid: string; listedSize: number; firstSeenAt: number; headersOnly: boolean }, messageId: number): void {
    this.markStored.run(accountId, m.uid, m.headersOnly ? 'headers' : 'stored', m.listedSize, messageId, m.firstSeenAt);
  }

  index(messageId: number, doc: SearchDocument): void {
    this.indexMessage.run(messageId, doc.subject, doc.sender, doc.recipients, doc.body);
  }
}
