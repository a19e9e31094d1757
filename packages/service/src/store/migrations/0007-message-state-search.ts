import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.js';
import { recipientsOf } from '../messages.js';
import { indexStored } from '../search.js';
import { messageText, searchDocument } from '../search-text.js';

/**
 * Message state and search (issue 15): `seen` and `flagged` (POP3 keeps no flags, so they live
 * here), `deleted_at` for a soft delete (hidden, purged some days later), and the full-text
 * index (store/search.ts says what each dialect holds). The index of the messages already
 * stored is built here from their stored bytes, in batches, so a store of any size migrates in
 * bounded memory.
 */
const BACKFILL_BATCH = 500;

export async function up(db: Kysely<any>): Promise<void> {
  const dialect = dialectOf(db);
  await db.schema.alterTable('messages').addColumn('seen', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('messages').addColumn('flagged', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('messages').addColumn('deleted_at', 'bigint').execute();
  // The purge looks for what was deleted long enough ago.
  await db.schema.createIndex('messages_deleted').on('messages').column('deleted_at').where(sql.ref('deleted_at'), 'is not', null).execute();
  if (dialect === 'sqlite') {
    await sql`create virtual table message_search using fts5(subject, sender, recipients, body, content='', contentless_delete=1)`.execute(db);
    await sql`create trigger message_search_delete after delete on messages begin delete from message_search where rowid = old.id; end`.execute(db);
  } else {
    await db.schema.alterTable('messages').addColumn('search', sql`tsvector`).execute();
    await sql`create index messages_search on messages using gin (search)`.execute(db);
  }

  for (let after = 0; ; ) {
    const rows = await db
      .selectFrom('messages')
      .select(['id', 'subject', 'from_name', 'from_address', 'to_mailboxes', 'to_addresses'])
      .where('pending', '=', 0)
      .where('id', '>', after)
      .orderBy('id')
      .limit(BACKFILL_BATCH)
      .execute();
    if (rows.length === 0) break;
    const entries = [];
    for (const row of rows) {
      const chunks = await db.selectFrom('message_chunks').select('data').where('message_id', '=', row.id).orderBy('seq').execute();
      const text = await messageText(Buffer.concat(chunks.map((c) => c.data as Uint8Array)));
      entries.push({
        id: row.id as number,
        doc: searchDocument({ subject: row.subject, fromName: row.from_name, fromAddress: row.from_address, to: recipientsOf(row), text }),
      });
    }
    await indexStored(db, dialect, entries);
    after = rows.at(-1)!.id;
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  if (dialectOf(db) === 'sqlite') {
    await sql`drop trigger message_search_delete`.execute(db);
    await sql`drop table message_search`.execute(db);
  } else {
    await sql`drop index messages_search`.execute(db);
    await db.schema.alterTable('messages').dropColumn('search').execute();
  }
  await db.schema.dropIndex('messages_deleted').execute();
  for (const column of ['seen', 'flagged', 'deleted_at']) await db.schema.alterTable('messages').dropColumn(column).execute();
}
