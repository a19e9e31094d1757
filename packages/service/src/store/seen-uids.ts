import type { Kysely } from 'kysely';
import type { Database, SeenUid } from './schema.js';

/** A seen UID as a sync session reads it (forSession). */
export type SeenEntry = Pick<SeenUid, 'uid' | 'state' | 'listed_size' | 'first_seen_at' | 'deleted_at'>;

/** Batches of UIDs per statement: well under SQLite's 32,766 bound parameters. */
const IN_BATCH = 500;
/** Rows per page of forSession: a few ms of the driver's time each on SQLite. */
const SEEN_PAGE = 2000;

/** The UIDs an account's server has shown us, and what became of each. */
export class SeenUidStore {
  constructor(private readonly db: Kysely<Database>) {}

  async forAccount(accountId: number): Promise<Map<string, SeenUid>> {
    const rows = await this.db.selectFrom('seen_uids').selectAll().where('account_id', '=', accountId).execute();
    return new Map(rows.map((row) => [row.uid, row]));
  }

  /**
   * What a sync session needs of each UID, keyed by UID. Only these five columns: the driver
   * makes an object per row with a property per column, and for 10,000 UIDs the two left out
   * were a quarter of the read (`select *`: 25 to 50 ms of CPU in a fresh process, bench (i)).
   */
  async forSession(accountId: number): Promise<Map<string, SeenEntry>> {
    const seen = new Map<string, SeenEntry>();
    // In pages along the primary key (account_id, uid), the event loop let run between them:
    // SQLite's driver answers synchronously, and a sync reads these while its POP3 login waits
    // on the server (sync/run.ts), so each page lets a reply in and the next command out.
    let after: string | undefined;
    for (;;) {
      let query = this.db.selectFrom('seen_uids').select(['uid', 'state', 'listed_size', 'first_seen_at', 'deleted_at']).where('account_id', '=', accountId);
      if (after !== undefined) query = query.where('uid', '>', after);
      const rows = await query.orderBy('uid').limit(SEEN_PAGE).execute();
      for (const row of rows) seen.set(row.uid, row);
      if (rows.length < SEEN_PAGE) return seen;
      after = rows[rows.length - 1]!.uid;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
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

  /**
   * skip-existing: every listed UID recorded as seen (`ignored`) without retrieving it, so that
   * only mail that arrives later is stored and handed over. Adds the rows to `seen` too, and
   * returns how many. Rows of a few hundred per statement: a first run may list 100,000.
   */
  async markIgnored(accountId: number, listed: ReadonlyArray<{ uid: string; size: number }>, seen: Map<string, SeenEntry>, now: number): Promise<number> {
    const rows = listed
      .filter((m) => !seen.has(m.uid))
      .map((m) => ({ account_id: accountId, uid: m.uid, state: 'ignored' as const, listed_size: m.size, message_id: null, first_seen_at: now, deleted_at: null }));
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += IN_BATCH) {
        await trx
          .insertInto('seen_uids')
          .values(rows.slice(i, i + IN_BATCH))
          .onConflict((oc) => oc.columns(['account_id', 'uid']).doNothing())
          .execute();
      }
    });
    for (const row of rows) seen.set(row.uid, row);
    return rows.length;
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
