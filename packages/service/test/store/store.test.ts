/**
 * The store on SQLite and on PostgreSQL: one schema and migration set, byte-exact messages,
 * commits that cannot store a message twice, the list order, and the per-account sync lock.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { accountFields, STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { CHUNK_BYTES, type MessageToCommit } from '../../src/store/messages.ts';
import { Store } from '../../src/store/store.ts';
import { parseStoreLocation, describeLocation } from '../../src/store/database.ts';
import { StoreError } from '../../src/store/errors.ts';
import { AccountLock } from '../../src/sync/lock.ts';
import { SyncError } from '../../src/sync/errors.ts';
import { EMPTY_SUMMARY } from '../../src/sync/summary.ts';

const stores = testStores();

function message(uid: string, bytes: Buffer, extra: Partial<MessageToCommit> = {}): MessageToCommit {
  return {
    uid,
    listedSize: bytes.length,
    firstSeenAt: 1,
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    headersOnly: false,
    summary: EMPTY_SUMMARY,
    ...extra,
  };
}

for (const kind of STORE_KINDS) {
  describe(`the store on ${kind}`, () => {
    it('opens an existing store again without migrating twice', async () => {
      const location = await stores.location(kind);
      const first = await Store.open(location);
      await first.accounts.upsert(accountFields('a'), 1);
      await first.close();
      await using again = await Store.open(location);
      assert.equal((await again.accounts.list()).length, 1);
    });

    it('with create: false, finds no store where none was made, makes nothing there, and opens one that exists', async () => {
      const location = await stores.location(kind);
      await assert.rejects(Store.open(location, { create: false }), (e: unknown) => e instanceof StoreError && e.code === 'STORE_NOT_FOUND' && /^no store (at|in) /.test(e.message));
      // Still nothing there: the refused open made no file, folder or table.
      await assert.rejects(Store.open(location, { create: false }), (e: unknown) => e instanceof StoreError && e.code === 'STORE_NOT_FOUND');
      await (await Store.open(location)).close();
      await using opened = await Store.open(location, { create: false });
      assert.deepEqual(await opened.accounts.list(), []);
    });

    it('gives back every committed message byte for byte, 8-bit and NUL bytes and empty ones included', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const bodies = [Buffer.from('Subject: x\r\n\r\n\x00\xff\xe9.\r\n', 'latin1'), Buffer.alloc(0), Buffer.alloc(CHUNK_BYTES * 2 + 17, 0x41)];
      const ids = await store.messages.commit(account.id, bodies.map((b, i) => message(`u${i}`, b)), 5);
      for (const [i, id] of ids.entries()) assert.ok((await store.messages.rawBuffer(id)).equals(bodies[i]!), `message ${i}`);
      const seen = await store.seen.forAccount(account.id);
      assert.deepEqual([...seen.values()].map((r) => [r.uid, r.state]).sort(), [['u0', 'stored'], ['u1', 'stored'], ['u2', 'stored']]);
    });

    it('stores nothing twice when the same commit runs again (a commit whose outcome was lost)', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const batch = [message('u1', Buffer.from('one')), message('u2', Buffer.from('two'))];
      const first = await store.messages.commit(account.id, batch, 5);
      const second = await store.messages.commit(account.id, batch, 6);
      assert.deepEqual(second, first);
      assert.equal(await store.messages.count(account.id), 2);
    });

    it('stores a second message under a reused UID with other content', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const [old] = await store.messages.commit(account.id, [message('u1', Buffer.from('old'))], 5);
      const [fresh] = await store.messages.commit(account.id, [message('u1', Buffer.from('new content'))], 6);
      assert.notEqual(old, fresh);
      assert.equal(await store.messages.count(account.id), 2);
      assert.equal((await store.seen.forAccount(account.id)).get('u1')?.message_id, fresh);
    });

    it('replaces the headers kept of a message with the whole message', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      await store.messages.commit(account.id, [message('u1', Buffer.from('Subject: x\r\n\r\n'), { headersOnly: true })], 5);
      const [whole] = await store.messages.commit(account.id, [message('u1', Buffer.from('Subject: x\r\n\r\nbody\r\n'))], 6);
      const page = await store.messages.list({ accountId: account.id });
      assert.deepEqual(page.messages.map((m) => [m.id, m.headers_only]), [[whole, 0]]);
    });

    it('writes a large message chunk by chunk, invisible until finished, and removes an unfinished one', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const id = await store.messages.beginLarge(account.id, 'big', 5);
      await store.messages.appendChunk(id, 0, Buffer.from('part one, '));
      assert.equal(await store.messages.count(account.id), 0, 'a pending message is not listed');
      await store.messages.appendChunk(id, 1, Buffer.from('part two'));
      const bytes = Buffer.from('part one, part two');
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      await store.messages.finishLarge(account.id, id, { uid: 'big', listedSize: 18, firstSeenAt: 1, sha256, headersOnly: false, summary: EMPTY_SUMMARY, size: 18 }, 6);
      assert.ok((await store.messages.rawBuffer(id)).equals(bytes));

      const orphan = await store.messages.beginLarge(account.id, 'dead', 7);
      await store.messages.appendChunk(orphan, 0, Buffer.from('a run died here'));
      assert.equal(await store.messages.removePending(account.id), 1);
      assert.equal(await store.messages.count(account.id), 1);
      await assert.rejects(store.messages.rawBuffer(orphan), (e: unknown) => e instanceof StoreError && e.code === 'STORE_MESSAGE_NOT_FOUND');
    });

    it('lists newest first across pages, undated messages last', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const dated = (uid: string, date: number | null) => message(uid, Buffer.from(uid), { summary: { ...EMPTY_SUMMARY, date } });
      await store.messages.commit(account.id, [dated('d2', 2000), dated('none1', null), dated('d3', 3000), dated('d1', 1000), dated('none2', null), dated('d2b', 2000)], 5);
      const order: string[] = [];
      let page = await store.messages.list({ accountId: account.id, limit: 2 });
      for (;;) {
        order.push(...page.messages.map((m) => m.uid));
        if (page.next === null) break;
        page = await store.messages.list({ accountId: account.id, limit: 2, after: page.next });
      }
      assert.deepEqual(order, ['d3', 'd2b', 'd2', 'd1', 'none2', 'none1']);
    });

    it('closes as interrupted the run a dead holder left running when the account is synced next, and no other account\'s', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const other = await store.accounts.upsert(accountFields('b'), 1);
      const dead = await store.runs.start(account.id, 10);
      const elsewhere = await store.runs.start(other.id, 10);
      const next = await store.runs.start(account.id, 20);
      const byId = new Map((await store.db.selectFrom('sync_runs').selectAll().execute()).map((r) => [r.id, r]));
      assert.equal(byId.get(dead)?.status, 'interrupted');
      assert.equal(byId.get(dead)?.error_code, 'SYNC_INTERRUPTED');
      assert.equal(Number(byId.get(dead)?.finished_at), 20);
      assert.equal(byId.get(elsewhere)?.status, 'running');
      assert.equal(byId.get(next)?.status, 'running');
    });

    it('lets one sync hold an account at a time, and lets the next take over a holder that died', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const held = await AccountLock.acquire(store.db, account.id);
      await assert.rejects(AccountLock.acquire(store.db, account.id), (e: unknown) => e instanceof SyncError && e.code === 'SYNC_LOCKED');
      await held.release();
      const next = await AccountLock.acquire(store.db, account.id);
      // A holder on this machine whose process is gone (a sync killed with SIGKILL).
      await store.accounts.update(account.id, { lock_owner: `${(await import('node:os')).hostname()}:2147483646:dead`, lock_expires: Date.now() + 60_000 }, 1);
      const taken = await AccountLock.acquire(store.db, account.id);
      await taken.release();
      await next.release();
    });
  });
}

describe('store locations', () => {
  it('reads a postgres URL as PostgreSQL and anything else as a folder for SQLite', () => {
    assert.equal(parseStoreLocation('postgres://u:p@h/db').kind, 'postgres');
    assert.equal(parseStoreLocation('postgresql://h/db').kind, 'postgres');
    assert.equal(parseStoreLocation('./popwire-data').kind, 'sqlite');
  });

  it('never shows the password of a PostgreSQL URL', () => {
    assert.equal(describeLocation(parseStoreLocation('postgres://u:secret@h/db')).includes('secret'), false);
  });

  it('refuses an empty location', () => {
    assert.throws(() => parseStoreLocation(' '), (e: unknown) => e instanceof StoreError && e.code === 'STORE_INVALID_LOCATION');
  });
});
