import type { Kysely } from 'kysely';
import { sql } from 'kysely';

/**
 * Every sync run starts by removing the unfinished large messages a crashed run left (`pending`,
 * store/messages.ts removePending). Without an index that question read every message row of the
 * account: some 10,000 page reads, 10 to 20 ms of a run that finds nothing new on a
 * 10,000-message store (bench (i)). Partial: it holds only the pending rows, almost always none,
 * so it costs the message commits nothing.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('messages_pending').on('messages').column('account_id').where(sql.ref('pending'), '=', 1).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('messages_pending').execute();
}
