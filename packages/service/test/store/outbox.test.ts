/**
 * No event is lost (issue 12): a message's `message.new` outbox row is written in the
 * transaction that commits the message (small messages in batches, large ones at the end of
 * their chunked write), and a run's `sync.failed` in the one that records its end. Shown by
 * making the outbox's part of each transaction fail: the message, or the run's end, is rolled
 * back with it. A commit run again after its outcome was lost writes no second row, so a
 * receiver sees repeats under one Popwire-Delivery only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { accountFields, STORE_KINDS, testStores } from '../../../../support/stores.ts';
import type { MessageToCommit, NewlyStored } from '../../src/store/messages.ts';
import type { NewWebhookEvent } from '../../src/store/webhook-events.ts';
import { EMPTY_SUMMARY } from '../../src/sync/summary.ts';

const stores = testStores();

function message(uid: string, text: string): MessageToCommit {
  const bytes = Buffer.from(text);
  return { uid, listedSize: bytes.length, firstSeenAt: 1, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), headersOnly: false, summary: EMPTY_SUMMARY };
}

const rowsFor = (accountId: number) => (messages: readonly NewlyStored[]): NewWebhookEvent[] =>
  messages.map((m) => ({ accountId, url: 'https://receiver.test/hook', type: 'message.new', body: JSON.stringify({ id: m.id, uid: m.uid }) }));

const failing = (): NewWebhookEvent[] => {
  throw new Error('the outbox write failed');
};

for (const kind of STORE_KINDS) {
  describe(`the outbox on ${kind}`, () => {
    it('writes a message.new row per new message in the commit, and none again when the same commit runs twice', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const batch = [message('u1', 'one\r\n'), message('u2', 'two\r\n')];
      const ids = await store.messages.commit(account.id, batch, 10, rowsFor(account.id));
      // The same batch again: its first outcome was lost, say. Nothing is stored twice, and no second event.
      await store.messages.commit(account.id, batch, 11, rowsFor(account.id));
      const events = await store.db.selectFrom('webhook_events').selectAll().orderBy('id').execute();
      assert.deepEqual(
        events.map((e) => JSON.parse(e.body)),
        ids.map((id, i) => ({ id, uid: batch[i]!.uid })),
      );
    });

    it('rolls a batch back when its outbox rows cannot be written', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      await assert.rejects(store.messages.commit(account.id, [message('u1', 'one\r\n')], 10, failing), /outbox write failed/);
      assert.equal(await store.messages.count(account.id), 0);
      assert.equal((await store.db.selectFrom('seen_uids').selectAll().execute()).length, 0);
    });

    it('commits a large message and its row together, or neither', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const large = message('big', 'x'.repeat(5000));
      const write = async (outbox: typeof failing | ReturnType<typeof rowsFor>) => {
        const id = await store.messages.beginLarge(account.id, large.uid, 10);
        await store.messages.appendChunk(id, 0, large.bytes);
        return store.messages.finishLarge(account.id, id, { ...large, size: large.bytes.length }, 11, outbox);
      };
      await assert.rejects(write(failing), /outbox write failed/);
      assert.equal(await store.messages.count(account.id), 0, 'the message stays pending, not stored');
      const id = await write(rowsFor(account.id));
      const events = await store.db.selectFrom('webhook_events').selectAll().execute();
      assert.deepEqual(
        events.map((e) => JSON.parse(e.body)),
        [{ id, uid: 'big' }],
      );
      assert.equal((await store.messages.get(id)).size, 5000);
    });

    it('records a run\'s end and its sync.failed together, or neither', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const runId = await store.runs.start(account.id, 10);
      const end = { status: 'failed' as const, sessions: 1, newMessages: 0, alreadyHad: 0, deleted: 0, skipped: 0, bytes: 0, errorCode: 'POP3_TIMEOUT', errorMessage: 'no answer' };
      // A row the database refuses (no URL): the run's end goes with it.
      const refused = [{ accountId: account.id, url: null as unknown as string, type: 'sync.failed', body: '{}' }];
      await assert.rejects(store.runs.finish(runId, end, 20, refused));
      assert.equal((await store.runs.forAccount(account.id))[0]?.status, 'running');
      await store.runs.finish(runId, end, 21, [{ accountId: account.id, url: 'https://receiver.test/hook', type: 'sync.failed', body: '{"run":1}' }]);
      assert.equal((await store.runs.forAccount(account.id))[0]?.status, 'failed');
      assert.deepEqual(
        (await store.db.selectFrom('webhook_events').select('type').execute()).map((e) => e.type),
        ['sync.failed'],
      );
    });
  });
}
