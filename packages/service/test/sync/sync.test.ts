/**
 * Sync against a real Dovecot, into SQLite and into PostgreSQL: the first run stores every
 * message byte for byte, later runs store only what is new, the delete and keep-days policies
 * remove only what is stored, and a run with nothing new sends UIDL and QUIT and nothing else.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Pop3Client, Pop3ConnectionError, type TraceEvent } from 'popwire';
import { expectedRetrBytes, startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { accountFields, STORE_KINDS, testStores, type StoreKind } from '../../../../support/stores.ts';
import type { Store } from '../../src/store/store.ts';
import { syncAccount, type SyncPolicy, type SyncRequest } from '../../src/sync/index.ts';
import { DAY_MS } from '../../src/sync/policy.ts';
import { SyncError } from '../../src/sync/errors.ts';
import { AccountLock } from '../../src/sync/lock.ts';

const stores = testStores();
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ authFailureDelayMs: 0 });
});
after(() => dovecot?.stop());

const LEAVE: SyncPolicy = { retention: 'leave', oversize: 'skip' };
const mime = (name: string) => readFileSync(new URL(`../../../client/test/fixtures/mime/${name}`, import.meta.url));

/** A store with one account for alice, and a sync function bound to them. */
async function setUp(kind: StoreKind, messages: Buffer[]) {
  await dovecot.setMailbox('alice', messages);
  const store = await stores.open(kind);
  const account = await store.accounts.upsert(accountFields('alice', { port: dovecot.port }), Date.now());
  const sent: string[] = [];
  const connect = (password = dovecot.users.alice!.password) => () =>
    Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.port,
      tls: 'none',
      user: 'alice',
      password,
      allowPlaintextAuth: true,
      trace: (event: TraceEvent) => {
        if (event.direction === 'client') sent.push(event.line.split(' ')[0]!.toUpperCase());
      },
    });
  const sync = (policy: SyncPolicy = LEAVE, extra: Partial<SyncRequest> = {}) => syncAccount({ store, accountId: account.id, connect: connect(), policy, ...extra });
  return { store, account, sync, sent, connect };
}

async function storedBytes(store: Store): Promise<Buffer[]> {
  const page = await store.messages.list({ limit: 10_000 });
  return Promise.all(page.messages.map((m) => store.messages.rawBuffer(m.id)));
}

/** Each expected message once, and nothing else. */
function assertSameMessages(actual: Buffer[], expected: Buffer[]) {
  const key = (b: Buffer) => b.toString('base64');
  assert.deepEqual(actual.map(key).sort(), expected.map(key).sort());
}

async function serverCount(): Promise<number> {
  await using client = await Pop3Client.connect({ host: dovecot.host, port: dovecot.port, tls: 'none', user: 'alice', password: dovecot.users.alice!.password, allowPlaintextAuth: true });
  return (await client.stat()).count;
}

for (const kind of STORE_KINDS) {
  describe(`sync into ${kind}`, () => {
    it('stores every message byte for byte on the first run, with what the list view needs', async () => {
      const mailbox = [...bulkMessages(30, 2000), mime('attachments.eml'), mime('encoded-words.eml'), mime('no-date.eml')];
      const { store, sync } = await setUp(kind, mailbox);
      const report = await sync();
      assert.equal(report.status, 'ok', String(report.error));
      assert.equal(report.newMessages, mailbox.length);
      assert.equal(report.alreadyHad, 0);
      assertSameMessages(await storedBytes(store), mailbox.map(expectedRetrBytes));
      const page = await store.messages.list({ limit: 100 });
      const withAttachment = page.messages.find((m) => m.has_attachments === 1);
      assert.ok(withAttachment, 'the message with attachments is flagged');
      const bulk = page.messages.find((m) => m.subject === 'Bulk message 1 of 30');
      assert.equal(bulk?.has_attachments, 0);
      assert.ok(bulk?.from_address !== null && bulk?.date !== null && bulk?.message_id_header === '<bulk-1-of-30@popwire.test>');
      // The digest a repeated commit is recognized by (and `popwire messages` shows) is its bytes' SHA-256.
      for (const m of page.messages) assert.equal(m.sha256, createHash('sha256').update(await store.messages.rawBuffer(m.id)).digest('hex'));
      const [run] = await store.runs.forAccount(report.accountId);
      assert.equal(run?.status, 'ok');
      assert.equal(run?.new_messages, mailbox.length);
      await store.close();
    });

    it('stores only the new messages on the next run, and sends only UIDL and QUIT when nothing is new', async () => {
      const mailbox = bulkMessages(20, 1000);
      const { store, sync, sent } = await setUp(kind, mailbox);
      await sync();
      const fresh = bulkMessages(3, 1500);
      for (const message of fresh) await dovecot.deliver('alice', message);
      const second = await sync();
      assert.deepEqual([second.newMessages, second.alreadyHad], [3, 20]);
      assertSameMessages(await storedBytes(store), [...mailbox, ...fresh].map(expectedRetrBytes));

      sent.length = 0;
      const idle = await sync();
      assert.deepEqual([idle.newMessages, idle.alreadyHad, idle.deleted], [0, 23, 0]);
      const afterLogin = sent.slice(sent.findIndex((c) => c === 'PASS' || c === 'AUTH') + 1).filter((c) => c !== 'CAPA' && c !== '***');
      assert.deepEqual(afterLogin, ['UIDL', 'QUIT']);
      await store.close();
    });

    it("leaves the store as it was after a run with nothing new, apart from that run's row and the account's notes, and releases the account", async () => {
      const { store, account, sync } = await setUp(kind, bulkMessages(12, 800));
      await sync();
      const snapshot = async () => ({
        seen: await store.db.selectFrom('seen_uids').selectAll().where('account_id', '=', account.id).orderBy('uid').execute(),
        messages: await store.db.selectFrom('messages').select(['id', 'uid', 'sha256', 'pending']).orderBy('id').execute(),
        chunks: await store.db.selectFrom('message_chunks').select(({ fn }) => fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
        runs: await store.db.selectFrom('sync_runs').selectAll().orderBy('id').execute(),
        account: await store.db.selectFrom('accounts').selectAll().where('id', '=', account.id).executeTakeFirstOrThrow(),
      });
      const before = await snapshot();
      const idle = await sync();
      assert.deepEqual([idle.status, idle.newMessages, idle.alreadyHad], ['ok', 0, 12]);
      const after = await snapshot();
      assert.deepEqual(after.seen, before.seen);
      assert.deepEqual(after.messages, before.messages);
      assert.deepEqual(after.chunks, before.chunks);
      assert.deepEqual(after.runs.slice(0, -1), before.runs);
      const run = after.runs.at(-1)!;
      assert.deepEqual([run.id, run.status, run.new_messages, run.already_had, run.finished_at !== null], [idle.runId, 'ok', 0, 12, true]);
      const { updated_at: _then, ...held } = before.account;
      const { updated_at: _now, ...holds } = after.account;
      assert.deepEqual(holds, held, 'the account row is as it was (no lock left, the same identity and notes)');
      assert.deepEqual([holds.lock_owner, holds.lock_expires], [null, null]);
      await store.close();
    });

    it('refuses an account another sync holds before it opens a connection to the server', async () => {
      const { store, account, connect } = await setUp(kind, bulkMessages(3, 500));
      const holder = await AccountLock.acquire(store.db, account.id);
      let connects = 0;
      const counted = () => {
        connects++;
        return connect()();
      };
      await assert.rejects(
        syncAccount({ store, accountId: account.id, connect: counted, policy: LEAVE }),
        (e: unknown) => e instanceof SyncError && e.code === 'SYNC_LOCKED',
      );
      assert.equal(connects, 0, 'no connection, so no login and no POP3 command');
      await holder.release();
      await store.close();
    });

    it('records a failed run and releases the account when the connection fails while the seen UIDs are read', async () => {
      const { store, account, sync } = await setUp(kind, bulkMessages(5, 500));
      await sync();
      const failed = await syncAccount({
        store,
        accountId: account.id,
        policy: LEAVE,
        connect: () => Promise.reject(new Pop3ConnectionError('refused on purpose', { code: 'POP3_CONNECTION_CLOSED' })),
      });
      assert.equal(failed.status, 'failed');
      const [run] = await store.runs.forAccount(account.id, 1);
      assert.deepEqual([run?.id, run?.status, run?.finished_at !== null], [failed.runId, 'failed', true]);
      const row = await store.db.selectFrom('accounts').select(['lock_owner', 'lock_expires']).where('id', '=', account.id).executeTakeFirstOrThrow();
      assert.deepEqual([row.lock_owner, row.lock_expires], [null, null]);
      const again = await sync();
      assert.deepEqual([again.status, again.newMessages, again.alreadyHad], ['ok', 0, 5]);
      await store.close();
    });

    it('deletes from the server only what it stored, and nothing is left after the delete policy', async () => {
      const mailbox = bulkMessages(25, 1200);
      const { store, sync } = await setUp(kind, mailbox);
      const report = await sync({ retention: 'delete', oversize: 'skip' });
      assert.deepEqual([report.newMessages, report.deleted], [25, 25]);
      assert.equal(await serverCount(), 0);
      assertSameMessages(await storedBytes(store), mailbox.map(expectedRetrBytes));
      const seen = await store.seen.forAccount(report.accountId);
      assert.ok([...seen.values()].every((r) => r.deleted_at !== null), 'every UID is recorded as deleted');
      const next = await sync({ retention: 'delete', oversize: 'skip' });
      assert.deepEqual([next.newMessages, next.deleted], [0, 0]);
      await store.close();
    });

    it('keeps messages on the server for N days from first seen, then deletes them', async () => {
      const { store, sync } = await setUp(kind, bulkMessages(5, 800));
      const keep: SyncPolicy = { retention: 'keep', keepDays: 30, oversize: 'skip' };
      const start = Date.now();
      const first = await sync(keep, { now: () => start });
      assert.deepEqual([first.newMessages, first.deleted], [5, 0]);
      await dovecot.deliver('alice', bulkMessages(1, 900)[0]!);
      const day10 = await sync(keep, { now: () => start + 10 * DAY_MS });
      assert.deepEqual([day10.newMessages, day10.deleted], [1, 0]);
      const day31 = await sync(keep, { now: () => start + 31 * DAY_MS });
      assert.deepEqual([day31.newMessages, day31.deleted], [0, 5], 'the five first seen on day 0 go; the one first seen on day 10 stays');
      assert.equal(await serverCount(), 1);
      assert.equal(await store.messages.count(), 6);
      await store.close();
    });

    it('skips messages over the size limit, or keeps their headers, and never deletes them', async () => {
      const small = bulkMessages(3, 500);
      const big = bulkMessages(2, 20_000);
      const { store, sync } = await setUp(kind, [...small, ...big]);
      const skip = await sync({ retention: 'delete', maxSize: 10_000, oversize: 'skip' });
      assert.deepEqual([skip.newMessages, skip.skipped.length, skip.deleted], [3, 2, 3]);
      const headers = await sync({ retention: 'delete', maxSize: 10_000, oversize: 'headers' });
      assert.deepEqual([headers.newMessages, headers.headersOnly, headers.deleted], [2, 2, 0]);
      assert.equal(await serverCount(), 2, 'the two large messages stay on the server');
      const kept = (await store.messages.list()).messages.filter((m) => m.headers_only === 1);
      assert.equal(kept.length, 2);
      const head = await store.messages.rawBuffer(kept[0]!.id);
      assert.ok(head.includes('Subject: Bulk message') && head.length < 2000, 'only the header block is kept');
      const whole = await sync({ retention: 'delete', oversize: 'skip' });
      assert.deepEqual([whole.newMessages, whole.deleted], [2, 2], 'without the limit the whole messages replace the headers');
      assertSameMessages(await storedBytes(store), [...small, ...big].map(expectedRetrBytes));
      await store.close();
    });

    it('records a rejected password as a failed run that needs attention, and stores nothing', async () => {
      const { store, account, connect } = await setUp(kind, bulkMessages(2, 500));
      const report = await syncAccount({ store, accountId: account.id, connect: connect('wrong'), policy: LEAVE });
      assert.equal(report.status, 'failed');
      assert.equal((report.error as { kind?: string }).kind, 'authentication');
      assert.equal(await store.messages.count(), 0);
      const [run] = await store.runs.forAccount(account.id);
      assert.equal(run?.status, 'failed');
      assert.match((await store.accounts.get(account.id)).status_note ?? '', /needs attention/);
      await store.close();
    });
  });
}
