/**
 * Sync with destinations, against a real Dovecot and a real store (SQLite and PostgreSQL): the
 * store commits first, then each stored message is handed to every destination and the answer
 * recorded per message and destination; a message is DELEd only once it is stored AND every
 * destination accepted it. The destinations here are scripted in-process (each answer chosen per
 * UID), since what is tested is the sync's bookkeeping; the real LMTP/SMTP/IMAP/MDA destinations
 * have their own tests against real servers, and sync-crash.test.ts runs the whole CLI into
 * Dovecot's LMTP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pop3Client } from 'popwire';
import { expectedRetrBytes, startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { accountFields, STORE_KINDS, testStores, type StoreKind } from '../../../../support/stores.ts';
import { DestinationRefused, DestinationUnavailable, type Destination, type MessageMeta } from '../../src/destinations/destination.ts';
import type { DestinationInput } from '../../src/store/deliveries.ts';
import type { Store } from '../../src/store/store.ts';
import type { HandoverTarget } from '../../src/sync/handover.ts';
import { syncAccount, type SyncPolicy } from '../../src/sync/index.ts';

const stores = testStores();
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ authFailureDelayMs: 0 });
});
after(() => dovecot?.stop());

const DELETE: SyncPolicy = { retention: 'delete', oversize: 'skip' };
const LEAVE: SyncPolicy = { retention: 'leave', oversize: 'skip' };

type Answer = 'accept' | 'defer' | 'refuse' | 'down';

/** A destination whose answer for each message is chosen by the test; what it accepted, it keeps. */
class ScriptedDestination implements Destination {
  readonly kind = 'lmtp' as const;
  readonly accepted: Array<{ bytes: Buffer; meta: MessageMeta }> = [];
  answer: (subject: string) => Answer = () => 'accept';
  opens = 0;
  closes = 0;
  constructor(private readonly name: string) {}
  describe(): string {
    return this.name;
  }
  async open(): Promise<void> {
    this.opens++;
  }
  async deliver(message: Buffer, meta: MessageMeta): Promise<void> {
    const subject = /^Subject: (.*)$/m.exec(message.toString('latin1'))?.[1]?.trim() ?? '';
    switch (this.answer(subject)) {
      case 'accept':
        this.accepted.push({ bytes: message, meta });
        return;
      case 'defer':
        throw new DestinationRefused(this.name, '452 4.2.2 Mailbox full', true);
      case 'refuse':
        throw new DestinationRefused(this.name, '550 5.1.1 No such user', false);
      case 'down':
        throw new DestinationUnavailable(this.name, 'connection refused');
    }
  }
  async close(): Promise<void> {
    this.closes++;
  }
  subjects(): string[] {
    return this.accepted.map((a) => /^Subject: (.*)$/m.exec(a.bytes.toString('latin1'))![1]!.trim()).sort();
  }
}

const subjectOf = (n: number, count: number) => `Bulk message ${n} of ${count}`;

async function setUp(kind: StoreKind, count: number) {
  const messages = bulkMessages(count, 1500);
  await dovecot.setMailbox('alice', messages);
  const store = await stores.open(kind);
  const account = await store.accounts.upsert(accountFields('alice', { port: dovecot.port }), Date.now());
  const connect = () =>
    Pop3Client.connect({ host: dovecot.host, port: dovecot.port, tls: 'none', user: 'alice', password: dovecot.users.alice!.password, allowPlaintextAuth: true });
  const a = new ScriptedDestination('LMTP a');
  const b = new ScriptedDestination('MDA b');
  const targetsFor = async (...destinations: ScriptedDestination[]): Promise<HandoverTarget[]> => {
    const inputs: DestinationInput[] = destinations.map((d) => ({ key: d.describe(), kind: 'lmtp', spec: '{}', credentials: null }));
    const rows = await store.deliveries.ensure(account.id, 'cli', inputs, Date.now());
    return rows.map((row, i) => ({ row, destination: destinations[i]!, recipient: 'alice@example.test' }));
  };
  const sync = async (policy: SyncPolicy, destinations: ScriptedDestination[], extra: { skipExisting?: boolean; recordEvery?: number } = {}) =>
    syncAccount({
      store,
      accountId: account.id,
      connect,
      policy,
      destinations: { targets: await targetsFor(...destinations), options: { recordEvery: extra.recordEvery } },
      skipExisting: extra.skipExisting,
    });
  return { store, account, messages, sync, a, b, targetsFor };
}

async function serverSubjects(): Promise<string[]> {
  await using client = await Pop3Client.connect({ host: dovecot.host, port: dovecot.port, tls: 'none', user: 'alice', password: dovecot.users.alice!.password, allowPlaintextAuth: true });
  const subjects: string[] = [];
  for (const { n } of await client.list()) subjects.push(/^Subject: (.*)$/m.exec((await client.retrieve(n)).toString('latin1'))![1]!.trim());
  return subjects.sort();
}

async function states(store: Store, accountId: number): Promise<string[]> {
  const rows = await store.db
    .selectFrom('message_deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .innerJoin('account_destinations as a', 'a.id', 'd.destination_id')
    .select(['m.subject', 'a.key', 'd.state', 'd.attempts'])
    .where('m.account_id', '=', accountId)
    .execute();
  return rows.map((r) => `${r.subject} ${r.key} ${r.state} ${r.attempts}`).sort();
}

for (const kind of STORE_KINDS) {
  describe(`sync with destinations, into ${kind}`, () => {
    it('hands every stored message to each destination with its X-Popwire-UID, records each answer, and deletes only then', async () => {
      const { store, account, messages, sync, a, b } = await setUp(kind, 12);
      const report = await sync(DELETE, [a, b], { recordEvery: 5 });
      assert.equal(report.status, 'ok', String(report.error));
      assert.equal(report.newMessages, 12);
      assert.deepEqual(report.delivery, { handedOver: 12, delivered: 24, temporary: 0, permanent: 0, undelivered: 0, refusals: [] });
      assert.equal(report.deleted, 12);
      assert.deepEqual(await serverSubjects(), []);
      for (const destination of [a, b]) {
        assert.equal(destination.accepted.length, 12);
        assert.equal(destination.opens, 1);
        assert.equal(destination.closes, 1);
        for (const { bytes, meta } of destination.accepted) {
          assert.match(bytes.toString('latin1'), /^X-Popwire-UID: [\x21-\x7e]+\r\n/);
          assert.equal(meta.envelope.recipient, 'alice@example.test');
          assert.equal(meta.size, bytes.length);
        }
      }
      // Byte for byte: the message as retrieved, after its X-Popwire-UID line.
      const expected = messages.map((m) => expectedRetrBytes(m).toString('base64')).sort();
      assert.deepEqual(a.accepted.map(({ bytes }) => bytes.subarray(bytes.indexOf('\n') + 1).toString('base64')).sort(), expected);
      assert.equal((await states(store, account.id)).filter((s) => s.endsWith(' delivered 1')).length, 24);

      // Nothing new, nothing due: a second run hands nothing over again.
      const again = await sync(DELETE, [a, b]);
      assert.equal(again.delivery.handedOver, 0);
      assert.equal(a.accepted.length, 12);
    });

    it('keeps on the server a message one destination deferred or refused, and hands it over again next run (4xx kept and retried)', async () => {
      const { store, account, sync, a, b } = await setUp(kind, 6);
      b.answer = (subject) => (subject === subjectOf(2, 6) ? 'defer' : subject === subjectOf(5, 6) ? 'refuse' : 'accept');
      const first = await sync(DELETE, [a, b]);
      assert.equal(first.status, 'ok', String(first.error));
      assert.equal(first.delivery.temporary, 1);
      assert.equal(first.delivery.permanent, 1);
      assert.equal(first.delivery.undelivered, 2);
      assert.equal(first.deleted, 4);
      assert.deepEqual(await serverSubjects(), [subjectOf(2, 6), subjectOf(5, 6)]);
      assert.deepEqual(
        first.delivery.refusals.map((r) => [r.destination, r.reply, r.temporary]).sort(),
        [
          ['MDA b', '452 4.2.2 Mailbox full', true],
          ['MDA b', '550 5.1.1 No such user', false],
        ],
      );
      assert.ok(first.notes.some((n) => /deferred by a destination/.test(n)));

      // Next run: b accepts. Only b gets them (a accepted them already), and only now are they deleted.
      b.answer = () => 'accept';
      const second = await sync(DELETE, [a, b]);
      assert.equal(second.newMessages, 0);
      assert.equal(second.delivery.handedOver, 2);
      assert.equal(second.deleted, 2);
      assert.deepEqual(await serverSubjects(), []);
      assert.equal(a.accepted.length, 6);
      assert.deepEqual(b.subjects(), [1, 2, 3, 4, 5, 6].map((n) => subjectOf(n, 6)).sort());
      const recorded = await states(store, account.id);
      assert.ok(recorded.includes(`${subjectOf(2, 6)} MDA b delivered 2`), recorded.join('\n'));
      assert.ok(recorded.includes(`${subjectOf(5, 6)} MDA b delivered 2`));
      assert.ok(recorded.includes(`${subjectOf(2, 6)} LMTP a delivered 1`));
    });

    it('fails the run on a destination that is down: every message stays stored and on the server, and the next run delivers them', async () => {
      const { store, account, sync, a, b } = await setUp(kind, 5);
      b.answer = (subject) => (subject === subjectOf(3, 5) ? 'down' : 'accept');
      const first = await sync(DELETE, [a, b]);
      assert.equal(first.status, 'failed');
      assert.ok(first.error instanceof DestinationUnavailable);
      assert.equal(await store.messages.count(account.id), 5, 'stored before any was handed over');
      assert.equal(first.deleted, 0);
      assert.equal((await serverSubjects()).length, 5);
      // The answers before the failure were recorded: messages 1, 2 (both) and 3 (a only).
      assert.equal((await states(store, account.id)).length, 5);

      b.answer = () => 'accept';
      const second = await sync(DELETE, [a, b]);
      assert.equal(second.status, 'ok', String(second.error));
      assert.equal(second.newMessages, 0, 'the store keeps exactly-once: nothing stored twice');
      assert.equal(second.deleted, 5);
      assert.equal(a.accepted.length, 5);
      assert.deepEqual(b.subjects(), [1, 2, 3, 4, 5].map((n) => subjectOf(n, 5)).sort());
      assert.equal(await store.messages.count(account.id), 5);
    });

    it('with skip-existing at the first sync records the UIDs on the server as seen, retrieves none, and delivers only later mail', async () => {
      const { store, account, sync, a } = await setUp(kind, 4);
      const first = await sync(DELETE, [a], { skipExisting: true });
      assert.equal(first.status, 'ok', String(first.error));
      assert.equal(first.ignoredExisting, 4);
      assert.equal(first.newMessages, 0);
      assert.equal(first.deleted, 0, 'what was skipped is never deleted');
      assert.equal(a.accepted.length, 0);
      const later = bulkMessages(6, 1500).slice(4);
      for (const m of later) await dovecot.deliver('alice', m);
      // skip-existing again: the account has synced before, so only the new mail counts, and it is delivered.
      const second = await sync(DELETE, [a], { skipExisting: true });
      assert.equal(second.ignoredExisting, 0);
      assert.equal(second.newMessages, 2);
      assert.deepEqual(a.subjects(), [subjectOf(5, 6), subjectOf(6, 6)]);
      assert.deepEqual(await serverSubjects(), [1, 2, 3, 4].map((n) => subjectOf(n, 4)).sort());
      assert.equal(await store.messages.count(account.id), 2);
    });

    it("follows the account's skip_existing when the run does not say", async () => {
      const { store, account, sync, a } = await setUp(kind, 3);
      await store.accounts.update(account.id, { skip_existing: 1 }, Date.now());
      const report = await sync(LEAVE, [a]);
      assert.equal(report.ignoredExisting, 3);
      assert.equal(report.newMessages, 0);
    });

    it('leaves a destination added later out of the messages stored before it, which are deleted without waiting for it', async () => {
      const { sync, a, b } = await setUp(kind, 3);
      await sync(LEAVE, [a]);
      const report = await sync(DELETE, [a, b]);
      assert.equal(report.delivery.handedOver, 0);
      assert.equal(report.deleted, 3);
      assert.equal(b.accepted.length, 0);
    });
  });
}
