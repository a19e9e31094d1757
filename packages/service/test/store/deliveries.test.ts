/**
 * Delivery state per message and destination, on SQLite and PostgreSQL (migration 0006): the
 * outbox of what each destination has not accepted, answers and their attempts, destinations
 * found again by key, and a destination covering only the messages stored after it was added.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { accountFields, STORE_KINDS, testStores } from '../../../../support/stores.ts';
import type { MessageToCommit } from '../../src/store/messages.ts';
import { EMPTY_SUMMARY } from '../../src/sync/summary.ts';

const stores = testStores();

function message(uid: string, extra: Partial<MessageToCommit> = {}): MessageToCommit {
  const bytes = Buffer.from(`Subject: ${uid}\r\n\r\nbody\r\n`);
  return { uid, listedSize: bytes.length, firstSeenAt: 1, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), headersOnly: false, summary: EMPTY_SUMMARY, ...extra };
}

const lmtp = { key: 'lmtp:127.0.0.1:24', kind: 'lmtp', spec: '{"address":"127.0.0.1:24"}', credentials: null };
const mda = { key: 'mda:/usr/bin/procmail', kind: 'mda', spec: '{"command":"/usr/bin/procmail"}', credentials: null };

for (const kind of STORE_KINDS) {
  describe(`delivery state on ${kind}`, () => {
    it('lists every stored message as due until each destination accepted it, and records answers with their attempts', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const [a, b] = await store.deliveries.ensure(account.id, 'cli', [lmtp, mda], 2);
      const ids = await store.messages.commit(account.id, [message('u1'), message('u2'), message('u3', { headersOnly: true })], 3);
      const due = await store.deliveries.due(account.id, [a!, b!]);
      // The headers-only copy is not the message: never handed over.
      const size = message('u1').bytes.length;
      assert.deepEqual(due, [
        { messageId: ids[0], uid: 'u1', size, destinationIds: [a!.id, b!.id] },
        { messageId: ids[1], uid: 'u2', size, destinationIds: [a!.id, b!.id] },
      ]);
      const bytes = await store.deliveries.bytes([ids[1]!, ids[0]!]);
      assert.ok(bytes.get(ids[0]!)!.equals(message('u1').bytes));
      assert.ok(bytes.get(ids[1]!)!.equals(message('u2').bytes));

      await store.deliveries.record(
        [
          { messageId: ids[0]!, destinationId: a!.id, state: 'delivered', reply: '250 2.0.0 ok' },
          { messageId: ids[0]!, destinationId: b!.id, state: 'temporary', reply: 'exit 75' },
          { messageId: ids[1]!, destinationId: a!.id, state: 'permanent', reply: '550 5.1.1 no such user' },
          { messageId: ids[1]!, destinationId: b!.id, state: 'delivered', reply: null },
        ],
        4,
      );
      assert.deepEqual(await store.deliveries.due(account.id, [a!, b!]), [
        { messageId: ids[0], uid: 'u1', size, destinationIds: [b!.id] },
        { messageId: ids[1], uid: 'u2', size, destinationIds: [a!.id] },
      ]);
      await store.deliveries.record([{ messageId: ids[0]!, destinationId: b!.id, state: 'delivered', reply: null }], 5);
      const views = await store.deliveries.forMessage(account.id, ids[0]!);
      assert.deepEqual(
        views.map((v) => [v.key, v.state, v.attempts, v.reply, v.updatedAt]),
        [
          [lmtp.key, 'delivered', 1, '250 2.0.0 ok', 4],
          [mda.key, 'delivered', 2, null, 5],
        ],
      );
      assert.deepEqual(await store.deliveries.due(account.id, [b!]), []);
    });

    it('finds a destination again by its key, and a destination added later covers only the messages stored after it', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const [old] = await store.messages.commit(account.id, [message('before')], 2);
      const [first] = await store.deliveries.ensure(account.id, 'cli', [lmtp], 3);
      const [again] = await store.deliveries.ensure(account.id, 'cli', [lmtp], 4);
      assert.equal(again!.id, first!.id);
      const [later] = await store.messages.commit(account.id, [message('after')], 5);
      assert.deepEqual(await store.deliveries.due(account.id, [first!]), [{ messageId: later, uid: 'after', size: message('after').bytes.length, destinationIds: [first!.id] }]);
      assert.deepEqual(await store.deliveries.forMessage(account.id, old!), []);
      assert.deepEqual((await store.deliveries.forMessage(account.id, later!)).map((v) => v.state), ['pending']);
    });

    it("replaces the API's list whole: a kept key keeps its state and sealed credentials, a dropped one goes with its state, the CLI's stay", async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const [cli] = await store.deliveries.ensure(account.id, 'cli', [lmtp], 2);
      const [kept, dropped] = await store.deliveries.replace(account.id, [{ ...lmtp, credentials: 'v1.sealed' }, mda], 3);
      const [id] = await store.messages.commit(account.id, [message('u1')], 4);
      await store.deliveries.record([{ messageId: id!, destinationId: kept!.id, state: 'delivered', reply: null }], 5);
      await store.deliveries.record([{ messageId: id!, destinationId: dropped!.id, state: 'delivered', reply: null }], 5);

      const rows = await store.deliveries.replace(account.id, [{ ...lmtp, spec: '{"address":"127.0.0.1:24","to":"b@x"}', credentials: undefined }], 6);
      assert.equal(rows[0]!.id, kept!.id);
      assert.equal(rows[0]!.credentials, 'v1.sealed');
      assert.equal(rows[0]!.spec, '{"address":"127.0.0.1:24","to":"b@x"}');
      assert.deepEqual((await store.deliveries.forAccount(account.id)).map((r) => [r.origin, r.key]).sort(), [['api', lmtp.key], ['cli', lmtp.key]]);
      assert.deepEqual(
        (await store.deliveries.forMessage(account.id, id!)).map((v) => [v.destinationId, v.state]),
        [
          [kept!.id, 'delivered'],
          [cli!.id, 'pending'],
        ],
      );
      assert.deepEqual(await store.deliveries.replace(account.id, [], 7), []);
      assert.deepEqual((await store.deliveries.forAccount(account.id, 'api')).length, 0);
    });

    it('forgets delivery state with the account', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const [d] = await store.deliveries.ensure(account.id, 'cli', [lmtp], 2);
      const [id] = await store.messages.commit(account.id, [message('u1')], 3);
      await store.deliveries.record([{ messageId: id!, destinationId: d!.id, state: 'delivered', reply: null }], 4);
      await store.accounts.remove(account.id);
      assert.deepEqual(await store.deliveries.forAccount(account.id), []);
      const left = await store.db.selectFrom('message_deliveries').selectAll().execute();
      assert.deepEqual(left, []);
    });
  });
}
