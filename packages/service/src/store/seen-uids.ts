import type { Kysely } from 'kysely';
import type { Database, SeenUid } from './schema.js';

/** Batches of UIDs per statement: well under SQLite's 32,766 bound parameters. */
const IN_BATCH = 500;

/** The UIDs an account's server has shown us, and what became of each. */
export class SeenUidStore {
  constructor(private readonly db: Kysely<Database>) {}

  async forAccount(accountId: number): Promise<Map<string, SeenUid>> {
    const rows = await this.db.selectFrom('seen_uids').selectAll().where('account_id', '=', accountId).execute();
    return new Map(rows.map((row) => [row.uid, row]));
  }

  /** Messages over the size limit: remembered as seen, so that a later run reports them as known, not new. */
  async markSkipped(accountId: number, entries: ReadonlyArray<{ uid: string; listedSize: number }>, now: number): Promise<void> {
    if (entries.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const entry of entries) {
        await trx
          .insertInto('seen_uids')
          .values({ account_id: accountId, uid: entry.uid, state: 'skipped', listed_size: entry.listedSize, message_id: null, first_seen_at: now, deleted_at: null })
          .onConflict((oc) => oc.columns(['account_id', 'uid']).doUpdateSet({ state: 'skipped', listed_size: entry.listedSize, message_id: null }))
          .execute();
      }
    });
  }

  /** Called after the server acknowledged the QUIT that followed these UIDs' DELE commands. */
  async markDeleted(accountId: number, uids: readonly string[], at: number): Promise<void> {
    for (let i = 0; i < uids.length; i += IN_BATCH) {
      await this.db
        .updateTable('seen_uids')
        .set({ deleted_at: at })
        .where('account_id', '=', accountId)
        .where('uid', 'in', uids.slice(i, i + IN_BATCH))
        .execute();
    }
  }
}
