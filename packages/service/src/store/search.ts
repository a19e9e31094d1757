import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from './dialect.js';
import type { SearchDocument } from './search-text.js';

/**
 * The search index's writes, one per dialect (migration 0007 makes both):
 *
 * - SQLite: `message_search`, an FTS5 table without content of its own (`content=''`, so the
 *   text is not stored twice) whose rowid is the message's id. `contentless_delete=1` lets a
 *   row be deleted, which a trigger on `messages` does, so a purge, a replaced headers-only
 *   copy or a deleted account leaves nothing behind.
 * - PostgreSQL: `messages.search`, a tsvector with a GIN index, written in the message's own
 *   INSERT. Fields are weighted: subject A, sender B, recipients C, body D; a `from:` term
 *   matches only the B lexemes.
 */
export const FTS_TABLE = 'message_search';

/** Rows per INSERT into the FTS table: 5 values each, far below SQLite's bound-parameter limit. */
const ROWS_PER_STATEMENT = 200;

/** PostgreSQL: the tsvector of a document, as an expression for an INSERT or UPDATE. */
export function tsvectorOf(doc: SearchDocument): RawBuilder<unknown> {
  return sql`setweight(to_tsvector('simple', ${doc.subject}), 'A') || setweight(to_tsvector('simple', ${doc.sender}), 'B') || setweight(to_tsvector('simple', ${doc.recipients}), 'C') || setweight(to_tsvector('simple', ${doc.body}), 'D')`;
}

/** SQLite: adds the index rows of messages just stored. (PostgreSQL's is written with the row: tsvectorOf.) */
export async function indexSqlite(db: Kysely<any>, entries: ReadonlyArray<{ id: number; doc: SearchDocument }>): Promise<void> {
  for (let i = 0; i < entries.length; i += ROWS_PER_STATEMENT) {
    const rows = entries.slice(i, i + ROWS_PER_STATEMENT);
    const values = sql.join(rows.map((e) => sql`(${e.id}, ${e.doc.subject}, ${e.doc.sender}, ${e.doc.recipients}, ${e.doc.body})`));
    await sql`insert into message_search (rowid, subject, sender, recipients, body) values ${values}`.execute(db);
  }
}

/** Fills the index of messages already stored (migration 0007's backfill), either dialect. */
export async function indexStored(db: Kysely<any>, dialect: Dialect, entries: ReadonlyArray<{ id: number; doc: SearchDocument }>): Promise<void> {
  if (dialect === 'sqlite') return indexSqlite(db, entries);
  for (const e of entries) await sql`update messages set search = ${tsvectorOf(e.doc)} where id = ${e.id}`.execute(db);
}
