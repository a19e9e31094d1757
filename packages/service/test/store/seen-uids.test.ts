/**
 * The seen UIDs a sync session reads (SeenUidStore.forSession), on SQLite and PostgreSQL: read
 * in pages along the primary key so that a sync's login goes on between them, and every row
 * comes back once, whatever the count against the page size.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accountFields, STORE_KINDS, testStores } from '../../../../support/stores.ts';

const stores = testStores();

for (const kind of STORE_KINDS) {
  describe(`seen UIDs in ${kind}`, () => {
    it("returns every one of an account's seen UIDs, and only that account's, across several pages", async () => {
      const store = await stores.open(kind);
      const mine = await store.accounts.upsert(accountFields('mine'), Date.now());
      const other = await store.accounts.upsert(accountFields('other'), Date.now());
      // 4,001: two whole pages of 2,000 and one row on a third; UIDs whose order as text is not their number's.
      const listed = Array.from({ length: 4001 }, (_, i) => ({ uid: `uid-${i}`, size: 100 + i }));
      await store.seen.markIgnored(mine.id, listed, new Map(), 1000);
      await store.seen.markIgnored(other.id, [{ uid: 'uid-0', size: 1 }, { uid: 'elsewhere', size: 2 }], new Map(), 1000);
      const seen = await store.seen.forSession(mine.id);
      assert.equal(seen.size, listed.length);
      for (const m of listed) assert.deepEqual(seen.get(m.uid), { uid: m.uid, state: 'ignored', listed_size: m.size, first_seen_at: 1000, deleted_at: null });
      assert.equal((await store.seen.forSession(other.id)).size, 2);
      await store.close();
    });

    it('returns an empty map for an account with no seen UID', async () => {
      const store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('empty'), Date.now());
      assert.equal((await store.seen.forSession(account.id)).size, 0);
      await store.close();
    });
  });
}
