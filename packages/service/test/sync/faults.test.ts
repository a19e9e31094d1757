/**
 * The sync's promise under faults: every message of the mailbox ends up stored exactly once, and
 * none is deleted from the server before its bytes are committed.
 *
 * Against the real Dovecot, through support/fault-proxy.ts, which drops the connection before,
 * right after, in the middle of, or right after the whole reply to a chosen command. Each case
 * runs a sync that the proxy cuts, checks that every delivered message is still on the server or
 * committed (and none committed twice), then runs a clean sync and checks that the store holds
 * each message exactly once, byte for byte, and the server is empty. Checking after each run is
 * checking at every moment: the server changes only at a QUIT, which ends a run, and the store
 * only ever gains committed messages. Every case runs on SQLite and on PostgreSQL.
 *
 * What Dovecot will not do on demand is in scripted-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pop3Client, Pop3Error } from 'popwire';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { startFaultProxy, type Fault, type FaultProxy } from '../../../../support/fault-proxy.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { startPostgres, type Postgres } from '../../../../support/postgres.ts';
import { Store } from '../../src/store/store.ts';
import { syncAccount, type SyncPolicy, type SyncReport } from '../../src/sync/index.ts';
import { DAY_MS } from '../../src/sync/policy.ts';
import {
  addAccount,
  assertExactlyOnce,
  assertNothingLost,
  deliveredToDovecot,
  serverContents,
  storedRows,
  type Delivered,
} from './promise-checks.ts';

const COUNT = 20;
const FILES = bulkMessages(COUNT, 4096);
const DELIVERED = deliveredToDovecot(FILES);
const DELETE: SyncPolicy = { retention: 'delete', oversize: 'skip' };

let dovecot: Dovecot;
let proxy: FaultProxy;
let postgres: Postgres;
const scratch: string[] = [];

before(async () => {
  [dovecot, postgres] = await Promise.all([startDovecot(), startPostgres()]);
  proxy = await startFaultProxy({ host: dovecot.host, port: dovecot.port });
});

after(async () => {
  await proxy?.close();
  await Promise.all([dovecot?.stop(), postgres?.stop()]);
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

type Kind = 'sqlite' | 'postgres';

async function openStore(kind: Kind): Promise<Store> {
  if (kind === 'postgres') return Store.open({ kind, url: await postgres.createDatabase() });
  const dir = await mkdtemp(join(tmpdir(), 'popwire-sync-faults-'));
  scratch.push(dir);
  return Store.open({ kind, dir });
}

const password = () => dovecot.users.alice!.password;
const onServer = () => serverContents(dovecot.port, password());

interface Through {
  readonly lockStep?: boolean;
  readonly now?: () => number;
}

/** One run of alice's account, connected through the fault proxy. */
function syncThroughProxy(store: Store, accountId: number, policy: SyncPolicy, through: Through = {}): Promise<SyncReport> {
  return syncAccount({
    store,
    accountId,
    policy,
    now: through.now,
    connect: () =>
      Pop3Client.connect({
        host: proxy.host,
        port: proxy.port,
        tls: 'none',
        user: 'alice',
        password: password(),
        allowPlaintextAuth: true,
        pipelining: through.lockStep !== true,
        timeout: 5_000,
      }),
  });
}

/** A run the proxy cuts as `fault` says; returns once Dovecot has closed that session too. */
async function faultyRun(store: Store, accountId: number, policy: SyncPolicy, fault: Fault, through: Through = {}): Promise<SyncReport> {
  const armed = proxy.failOnce(fault);
  const report = await syncThroughProxy(store, accountId, policy, through);
  await proxy.settled();
  assert.equal(armed.fired, true, 'the proxy dropped the connection at the chosen point');
  assert.equal(report.status, 'failed');
  assert.ok(report.error instanceof Pop3Error, `a POP3 failure, not ${String(report.error)}`);
  return report;
}

async function cleanRun(store: Store, accountId: number, policy: SyncPolicy, through: Through = {}): Promise<SyncReport> {
  const report = await syncThroughProxy(store, accountId, policy, through);
  await proxy.settled();
  assert.equal(report.status, 'ok', `the clean run failed: ${String(report.error)}`);
  return report;
}

interface DropCase {
  readonly fault: Fault;
  readonly lockStep?: boolean;
  /** Messages committed by the cut run: [at least, at most]. */
  readonly committed: readonly [number, number];
  /** Messages still on the server after it; all of them unless the QUIT got through. */
  readonly left?: number;
}

function ordinal(k: number): string {
  return k === 1 ? 'first' : k === COUNT ? 'last' : `${k}th`;
}

function sentence(c: DropCase): string {
  const { fault } = c;
  const which = `the ${ordinal(fault.occurrence)} ${fault.command}`;
  const where =
    fault.at === 'before' ? `before ${which} reaches the server`
    : fault.at === 'sent' ? `right after ${which} reaches the server`
    : fault.at === 'reply' ? `${fault.bytes} octets into the reply to ${which}`
    : `right after the whole reply to ${which}`;
  return `a connection dropped ${where}${c.lockStep === true ? ' (no pipelining)' : ''}`;
}

const retrCases = [1, 10, COUNT].flatMap((k): DropCase[] => [
  // Pipelined, every RETR goes out in one write: a drop before the k-th leaves the client with
  // at most the k-1 replies already on their way.
  { fault: { command: 'RETR', occurrence: k, at: 'before' }, committed: [0, k - 1] },
  { fault: { command: 'RETR', occurrence: k, at: 'sent' }, committed: [0, k - 1] },
  { fault: { command: 'RETR', occurrence: k, at: 'reply', bytes: 1000 }, committed: [k - 1, k - 1] },
  { fault: { command: 'RETR', occurrence: k, at: 'replied' }, committed: [k, k] },
]);

const DROP_CASES: DropCase[] = [
  { fault: { command: 'UIDL', occurrence: 1, at: 'reply', bytes: 30 }, committed: [0, 0] },
  { fault: { command: 'LIST', occurrence: 1, at: 'before' }, committed: [0, 0] },
  ...retrCases,
  { fault: { command: 'RETR', occurrence: 10, at: 'reply', bytes: 5 }, committed: [9, 9] },
  // Without pipelining, RETR k goes out only once the reply to RETR k-1 has ended.
  { fault: { command: 'RETR', occurrence: 10, at: 'before' }, lockStep: true, committed: [9, 9] },
  { fault: { command: 'RETR', occurrence: 10, at: 'sent' }, lockStep: true, committed: [9, 9] },
  ...[1, COUNT].flatMap((k): DropCase[] => [
    { fault: { command: 'DELE', occurrence: k, at: 'before' }, committed: [COUNT, COUNT] },
    { fault: { command: 'DELE', occurrence: k, at: 'sent' }, committed: [COUNT, COUNT] },
    { fault: { command: 'DELE', occurrence: k, at: 'replied' }, committed: [COUNT, COUNT] },
  ]),
  { fault: { command: 'DELE', occurrence: 10, at: 'before' }, lockStep: true, committed: [COUNT, COUNT] },
  { fault: { command: 'QUIT', occurrence: 1, at: 'before' }, committed: [COUNT, COUNT] },
  // The server carries the QUIT out; the client never hears so.
  { fault: { command: 'QUIT', occurrence: 1, at: 'sent' }, committed: [COUNT, COUNT], left: 0 },
];

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`a dropped connection to Dovecot, stored in ${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, () => {
    for (const c of DROP_CASES) {
      it(`${sentence(c)} loses nothing, and the next run stores every message exactly once and empties the server`, async () => {
        await dovecot.setMailbox('alice', FILES);
        const store = await openStore(kind);
        try {
          const accountId = await addAccount(store, proxy.port);
          await faultyRun(store, accountId, DELETE, c.fault, { lockStep: c.lockStep });
          const server = await onServer();
          const afterDrop = await storedRows(store, accountId);
          assertNothingLost(DELIVERED, server, afterDrop, 'after the dropped run');
          assert.equal(server.length, c.left ?? COUNT, 'messages left on the server by the dropped run');
          const committed = afterDrop.filter((r) => !r.pending).length;
          const [least, most] = c.committed;
          assert.ok(committed >= least && committed <= most, `committed by the dropped run: ${committed}, expected ${least}..${most}`);

          const clean = await cleanRun(store, accountId, DELETE, { lockStep: c.lockStep });
          assert.equal(clean.newMessages, COUNT - committed);
          assert.equal(clean.deleted, server.length);
          assertExactlyOnce(DELIVERED, await storedRows(store, accountId), 'after the clean run');
          assert.deepEqual(await onServer(), [], 'the server is empty');
        } finally {
          await store.close();
        }
      });
    }

    it('a connection dropped before QUIT leaves every message on the server (Dovecot rolls the DELEs back) and the store complete', async () => {
      await dovecot.setMailbox('alice', FILES);
      const store = await openStore(kind);
      try {
        const accountId = await addAccount(store, proxy.port);
        await faultyRun(store, accountId, DELETE, { command: 'QUIT', occurrence: 1, at: 'before' });
        assert.deepEqual((await onServer()).sort(), DELIVERED.map((d) => d.sha256).sort(), 'every message, unchanged, on the server');
        assertExactlyOnce(DELIVERED, await storedRows(store, accountId), 'after the dropped run');
        const seen = await store.seen.forAccount(accountId);
        assert.deepEqual([...seen.values()].filter((row) => row.deleted_at !== null), [], 'no UID recorded as deleted');
      } finally {
        await store.close();
      }
    });

    it('with policy leave, a run cut mid-body and a clean one store every message once and delete none; a third finds nothing new', async () => {
      await dovecot.setMailbox('alice', FILES);
      const store = await openStore(kind);
      const leave: SyncPolicy = { retention: 'leave', oversize: 'skip' };
      try {
        const accountId = await addAccount(store, proxy.port);
        await faultyRun(store, accountId, leave, { command: 'RETR', occurrence: 10, at: 'reply', bytes: 1000 });
        assertNothingLost(DELIVERED, await onServer(), await storedRows(store, accountId), 'after the dropped run');
        const clean = await cleanRun(store, accountId, leave);
        assert.equal(clean.newMessages, COUNT - 9);
        assert.equal(clean.deleted, 0);
        assertExactlyOnce(DELIVERED, await storedRows(store, accountId), 'after the clean run');
        assert.deepEqual((await onServer()).sort(), DELIVERED.map((d) => d.sha256).sort(), 'every message still on the server');
        const third = await cleanRun(store, accountId, leave);
        assert.deepEqual([third.newMessages, third.alreadyHad, third.deleted], [0, COUNT, 0]);
      } finally {
        await store.close();
      }
    });

    it('with policy keep for 3 days, drops in the first run and before a later QUIT delete nothing early and nothing unstored', async () => {
      await dovecot.setMailbox('alice', FILES);
      const store = await openStore(kind);
      const keep: SyncPolicy = { retention: 'keep', keepDays: 3, oversize: 'skip' };
      const day0 = Date.now();
      const at = (t: number) => ({ now: () => t });
      try {
        const accountId = await addAccount(store, proxy.port);
        await faultyRun(store, accountId, keep, { command: 'RETR', occurrence: 10, at: 'replied' }, at(day0));
        const first = await cleanRun(store, accountId, keep, at(day0));
        assert.deepEqual([first.newMessages, first.deleted], [COUNT - 10, 0], 'nothing is 3 days old yet');

        const later = bulkMessages(COUNT + 5, 4096).slice(COUNT);
        for (const file of later) await dovecot.deliver('alice', file);
        const all: Delivered[] = [...DELIVERED, ...deliveredToDovecot(later, (i) => `later message ${i + 1}`)];
        const day4 = day0 + 4 * DAY_MS;
        await faultyRun(store, accountId, keep, { command: 'QUIT', occurrence: 1, at: 'before' }, at(day4));
        assertNothingLost(all, await onServer(), await storedRows(store, accountId), 'after the run dropped before QUIT');
        assert.equal((await onServer()).length, COUNT + 5, 'the DELEs of the dropped run were rolled back');

        const second = await cleanRun(store, accountId, keep, at(day4));
        assert.deepEqual([second.newMessages, second.deleted], [0, COUNT], 'the first 20 are 4 days old: deleted; the 5 new ones kept');
        assertExactlyOnce(all, await storedRows(store, accountId), 'after the clean run');
        assert.deepEqual((await onServer()).sort(), all.slice(COUNT).map((d) => d.sha256).sort(), 'only the 5 recent messages are left');
      } finally {
        await store.close();
      }
    });
  });
}
