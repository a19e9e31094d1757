/**
 * Migration 0007 on a store that already holds messages (issue 15): they get seen, flagged and
 * deleted_at at their defaults, and the search index is built from their stored bytes, the
 * body text included, on SQLite and PostgreSQL. The store is taken back to 0006 (the
 * migration's `down`), messages are written as 0006 wrote them, and 0007 runs again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Migrator } from 'kysely';
import { describe, it } from 'node:test';
import { accountFields, STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { migrate } from '../../src/store/database.ts';
import { migrationProvider } from '../../src/store/migrations/index.ts';
import { parseSearch } from '../../src/store/search-query.ts';

const stores = testStores();

const OLD_MAILS = [
  'From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: Old invoice\r\n\r\nThe aardvark paid.\r\n',
  'From: carol@other.test\r\nSubject: Photos\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="x"\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n<p>a <i>wombat</i> picture</p>\r\n--x--\r\n',
];

for (const kind of STORE_KINDS) {
  describe(`migration 0007 on ${kind}`, () => {
    it('builds the search index of the messages stored before it, from their bytes', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const down = await new Migrator({ db: store.db, provider: migrationProvider }).migrateTo('0006-destinations');
      assert.equal(down.error, undefined);
      for (const [i, text] of OLD_MAILS.entries()) {
        const bytes = Buffer.from(text);
        const subject = /Subject: (.*)\r\n/.exec(text)![1]!;
        const from = /From: .*?([a-z]+@[a-z.]+)/.exec(text)![1]!;
        const { id } = await store.db
          .insertInto('messages')
          .values({ account_id: account.id, uid: `u${i}`, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), subject, from_address: from, stored_at: 5 })
          .returning('id')
          .executeTakeFirstOrThrow();
        // Two chunks, as a large message is kept: the backfill reads them in order.
        await store.db.insertInto('message_chunks').values([{ message_id: id, seq: 0, data: bytes.subarray(0, 20) }, { message_id: id, seq: 1, data: bytes.subarray(20) }]).execute();
      }
      await migrate(store.db);
      const find = async (q: string) => (await store.messages.search(parseSearch(q))).messages.map((m) => m.uid);
      assert.deepEqual(await find('aardvark'), ['u0'], 'the text body, from the stored bytes');
      assert.deepEqual(await find('wombat'), ['u1'], "an HTML-only message's text");
      assert.deepEqual(await find('from:alice invoice'), ['u0']);
      const rows = (await store.messages.list({ accountId: account.id })).messages;
      assert.deepEqual(rows.map((m) => [m.seen, m.flagged, m.deleted_at]), [[0, 0, null], [0, 0, null]]);
    });
  });
}
