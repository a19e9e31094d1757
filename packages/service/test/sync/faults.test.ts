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
 * Every command boundary, in clear text and over STLS (the proxy in the middle with its own
 * certificate): the greeting, CAPA, STLS and its handshake, each AUTH step, UIDL and LIST, RETR
 * (the first, a middle and the last message, mid-body too), TOP, DELE (first, middle, last) and
 * QUIT (before, and after its +OK). The sync sends no STAT. Those run on SQLite only.
 *
 * At every DELE the proxy sees, before it forwards it, the test checks through a second
 * connection to the store that the message is committed: a DELE must never outrun its commit.
 * The drop right after the last DELE's reply is made deterministic: the sync is held before its
 * QUIT until the client has registered the drop, so the check that refuses to record deletions
 * on a closed connection is what the case tests.
 *
 * What Dovecot will not do on demand is in scripted-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import { Pop3Client, Pop3Error } from 'popwire';
import { expectedRetrBytes, startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { testCertificate, type TestCertificate } from '../../../../support/certs.ts';
import { startFaultProxy, type ArmedFault, type Fault, type FaultProxy } from '../../../../support/fault-proxy.ts';
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
  serverUids,
  sha256,
  storedRows,
  type Delivered,
} from './promise-checks.ts';

type StoreLocation = Parameters<typeof Store.open>[0];

const COUNT = 20;
const FILES = bulkMessages(COUNT, 4096);
const DELIVERED = deliveredToDovecot(FILES);
const DELETE: SyncPolicy = { retention: 'delete', oversize: 'skip' };

let dovecot: Dovecot;
let proxy: FaultProxy;
let postgres: Postgres;
let certificate: TestCertificate;
const scratch: string[] = [];
/** Second connections to each store of the current test: what they see is committed. */
const observers = new Map<Store, Store>();

before(async () => {
  [dovecot, postgres, certificate] = await Promise.all([startDovecot(), startPostgres(), testCertificate()]);
  proxy = await startFaultProxy({ host: dovecot.host, port: dovecot.port }, { tls: certificate });
});

afterEach(async () => {
  proxy.onClientLine = undefined;
  await Promise.all([...observers.values()].map((o) => o.close()));
  observers.clear();
});

after(async () => {
  await proxy?.close();
  await Promise.all([dovecot?.stop(), postgres?.stop()]);
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

type Kind = 'sqlite' | 'postgres';

async function openStore(kind: Kind): Promise<Store> {
  let location: StoreLocation;
  if (kind === 'postgres') location = { kind, url: await postgres.createDatabase() };
  else {
    const dir = await mkdtemp(join(tmpdir(), 'popwire-sync-faults-'));
    scratch.push(dir);
    location = { kind, dir };
  }
  const store = await Store.open(location);
  observers.set(store, await Store.open(location));
  return store;
}

const password = () => dovecot.users.alice!.password;
const onServer = () => serverContents(dovecot.port, password());

interface Through {
  readonly lockStep?: boolean;
  readonly now?: () => number;
  /** STLS through the proxy, which answers with its own certificate. */
  readonly tls?: boolean;
  /** Once the fault has fired, hold each DELE's caller until the client has registered the drop. */
  readonly quitAfterDrop?: ArmedFault;
}

/**
 * One run of alice's account, connected through the fault proxy. Each DELE that reaches the
 * proxy waits there while a second connection to the store checks that its message is
 * committed; the run fails if one was not.
 */
async function syncThroughProxy(store: Store, accountId: number, policy: SyncPolicy, through: Through = {}): Promise<SyncReport> {
  const observer = observers.get(store)!;
  // Message n of this run's session is the n-th UID a fresh session lists: nothing changes the
  // mailbox between here and the run's QUIT.
  const uids = await serverUids(dovecot.port, password());
  const outrun: string[] = [];
  let deles = 0;
  proxy.onClientLine = async ({ command, line }) => {
    if (command !== 'DELE') return;
    deles++;
    const n = Number(line.split(' ')[1]);
    const uid = uids[n - 1];
    const committed = uid === undefined ? [] : await observer.db.selectFrom('messages').select('id')
      .where('account_id', '=', accountId).where('uid', '=', uid).where('pending', '=', 0).execute();
    if (committed.length === 0) outrun.push(`${line} (${uid ?? 'no such message'})`);
  };
  const report = await syncAccount({
    store,
    accountId,
    policy,
    now: through.now,
    connect: async () => {
      const client = await Pop3Client.connect({
        host: proxy.host,
        port: proxy.port,
        tls: through.tls === true ? 'starttls' : 'none',
        ca: certificate.cert,
        user: 'alice',
        password: password(),
        allowPlaintextAuth: true,
        pipelining: through.lockStep !== true,
        timeout: 5_000,
      });
      if (through.quitAfterDrop !== undefined) holdDeletesUntilDropped(client, through.quitAfterDrop);
      return client;
    },
  });
  proxy.onClientLine = undefined;
  assert.deepEqual(outrun, [], 'DELEs that reached the server before their message was committed');
  if (report.status === 'ok') assert.ok(deles >= report.deleted, `the proxy saw ${deles} DELEs for ${report.deleted} deletions`);
  return report;
}

/**
 * Makes the sync reach QUIT only once the client knows its connection dropped: each DELE's
 * promise, once `armed` has fired, resolves only after the client's state is `closed`. Without
 * it, the client sends QUIT before it reads the end of file that follows the last DELE's reply,
 * and the sync's own check for a closed connection is never what catches the drop.
 */
function holdDeletesUntilDropped(client: Pop3Client, armed: ArmedFault): void {
  const dele = client.delete.bind(client);
  client.delete = async (n: number) => {
    await dele(n);
    if (!armed.fired) return;
    for (let waited = 0; client.state !== 'closed'; waited += 5) {
      if (waited > 5_000) throw new Error('the client never registered the dropped connection');
      await delay(5);
    }
  };
}

type Outcome = 'failed' | 'ok';

/** A run the proxy cuts as `fault` says; returns once Dovecot has closed that session too. */
async function faultyRun(store: Store, accountId: number, policy: SyncPolicy, fault: Fault, through: Through & { outcome?: Outcome; quitAfterDrop?: never } = {}, holdQuit = false): Promise<SyncReport> {
  const armed = proxy.failOnce(fault);
  const report = await syncThroughProxy(store, accountId, policy, { ...through, quitAfterDrop: holdQuit ? armed : undefined });
  await proxy.settled();
  assert.equal(armed.fired, true, 'the proxy dropped the connection at the chosen point');
  if (through.outcome === 'ok') {
    assert.equal(report.status, 'ok', `the run whose QUIT was answered failed: ${String(report.error)}`);
    return report;
  }
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
  readonly tls?: boolean;
  /** The sync is held before QUIT until the client has registered the drop. */
  readonly holdQuit?: boolean;
  /** `ok` when the cut comes after the QUIT's +OK: the run itself succeeded. Default `failed`. */
  readonly outcome?: Outcome;
  /** Messages committed by the cut run: [at least, at most]. */
  readonly committed: readonly [number, number];
  /** Messages still on the server after it; all of them unless the QUIT got through. */
  readonly left?: number;
}

function ordinal(k: number, command: Fault['command']): string {
  if (command === 'RETR' || command === 'DELE' || command === 'TOP') return k === 1 ? 'first' : k === COUNT ? 'last' : `${k}th`;
  return ['first', 'second', 'third'][k - 1] ?? `${k}th`;
}

function sentence(c: DropCase): string {
  const { fault } = c;
  const which =
    fault.command === 'greeting' ? 'the greeting'
    : fault.command === 'SASL' ? `the ${ordinal(fault.occurrence, 'SASL')} SASL response of the AUTH exchange`
    : `the ${ordinal(fault.occurrence, fault.command)} ${fault.command}`;
  const where =
    fault.at === 'before' ? (fault.command === 'greeting' ? 'before the greeting' : `before ${which} reaches the server`)
    : fault.at === 'sent' ? `right after ${which} reaches the server`
    : fault.at === 'reply' ? `${fault.bytes} octets into ${fault.command === 'greeting' ? 'the greeting' : `the reply to ${which}`}`
    : fault.at === 'handshake' ? `in the TLS handshake that follows ${which}`
    : `right after the whole ${fault.command === 'greeting' ? 'greeting' : `reply to ${which}`}`;
  const how = [c.tls === true ? 'over STLS' : '', c.lockStep === true ? 'no pipelining' : '', c.holdQuit === true ? 'the sync reaching QUIT only after the drop registered' : ''].filter(Boolean);
  return `a connection dropped ${where}${how.length > 0 ? ` (${how.join('; ')})` : ''}`;
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
  // Without the hold, the client sends QUIT before it reads the end of file, and QUIT fails.
  { fault: { command: 'DELE', occurrence: COUNT, at: 'replied' }, holdQuit: true, committed: [COUNT, COUNT] },
  { fault: { command: 'QUIT', occurrence: 1, at: 'before' }, committed: [COUNT, COUNT] },
  // The server carries the QUIT out; the client never hears so.
  { fault: { command: 'QUIT', occurrence: 1, at: 'sent' }, committed: [COUNT, COUNT], left: 0 },
];

async function dropAndRecover(kind: Kind, c: DropCase): Promise<void> {
  await dovecot.setMailbox('alice', FILES);
  const store = await openStore(kind);
  try {
    const accountId = await addAccount(store, proxy.port);
    await faultyRun(store, accountId, DELETE, c.fault, { lockStep: c.lockStep, tls: c.tls, outcome: c.outcome }, c.holdQuit);
    const server = await onServer();
    const afterDrop = await storedRows(store, accountId);
    assertNothingLost(DELIVERED, server, afterDrop, 'after the dropped run');
    assert.equal(server.length, c.left ?? COUNT, 'messages left on the server by the dropped run');
    const committed = afterDrop.filter((r) => !r.pending).length;
    const [least, most] = c.committed;
    assert.ok(committed >= least && committed <= most, `committed by the dropped run: ${committed}, expected ${least}..${most}`);
    if (c.left === undefined) {
      const seen = await store.seen.forAccount(accountId);
      assert.deepEqual([...seen.values()].filter((row) => row.deleted_at !== null).map((row) => row.uid), [], 'no UID recorded as deleted while the server kept them all');
    }

    const clean = await cleanRun(store, accountId, DELETE, { lockStep: c.lockStep, tls: c.tls });
    assert.equal(clean.newMessages, COUNT - committed);
    assert.equal(clean.deleted, server.length);
    assertExactlyOnce(DELIVERED, await storedRows(store, accountId), 'after the clean run');
    assert.deepEqual(await onServer(), [], 'the server is empty');
  } finally {
    await store.close();
  }
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`a dropped connection to Dovecot, stored in ${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, () => {
    for (const c of DROP_CASES) {
      it(`${sentence(c)} loses nothing, and the next run stores every message exactly once and empties the server`, () => dropAndRecover(kind, c));
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

/** Cuts at a command before retrieval begins: nothing is committed, nothing deleted. */
function beforeRetrieval(command: Fault['command'], occurrence: number, points: readonly Fault['at'][], tls: boolean): DropCase[] {
  return points.map((at): DropCase => ({
    fault: (at === 'reply' ? { command, occurrence, at, bytes: command === 'greeting' ? 4 : 10 } : { command, occurrence, at }) as Fault,
    tls,
    committed: [0, 0],
  }));
}

/**
 * Every command boundary of a sync's session. Over STLS the client asks CAPA three times (before
 * STLS, after it, after login), in clear text twice. Dovecot and the client settle on
 * SCRAM-SHA-256: AUTH with the client's first message, then two SASL responses.
 */
function boundaries(tls: boolean): DropCase[] {
  const all: Fault['at'][] = ['before', 'sent', 'reply', 'replied'];
  const capas = tls ? 3 : 2;
  return [
    ...beforeRetrieval('greeting', 1, ['before', 'reply', 'replied'], tls),
    ...beforeRetrieval('CAPA', 1, all, tls),
    ...(tls ? [...beforeRetrieval('STLS', 1, ['before', 'sent', 'replied', 'handshake'], tls), ...beforeRetrieval('CAPA', 2, ['before', 'replied'], tls)] : []),
    ...beforeRetrieval('AUTH', 1, ['before', 'sent', 'replied'], tls),
    ...beforeRetrieval('SASL', 1, ['before', 'sent', 'replied'], tls),
    ...beforeRetrieval('SASL', 2, ['before', 'sent', 'replied'], tls),
    ...beforeRetrieval('CAPA', capas, ['before', 'replied'], tls),
    ...beforeRetrieval('UIDL', 1, all, tls),
    ...beforeRetrieval('LIST', 1, all, tls),
    ...[1, 10, COUNT].flatMap((k): DropCase[] => [
      { fault: { command: 'RETR', occurrence: k, at: 'before' }, tls, committed: [0, k - 1] },
      { fault: { command: 'RETR', occurrence: k, at: 'reply', bytes: 1000 }, tls, committed: [k - 1, k - 1] },
      { fault: { command: 'RETR', occurrence: k, at: 'replied' }, tls, committed: [k, k] },
    ]),
    ...[1, 10, COUNT].flatMap((k): DropCase[] => (['before', 'sent', 'replied'] as const).map((at) => ({ fault: { command: 'DELE', occurrence: k, at }, tls, committed: [COUNT, COUNT] }))),
    { fault: { command: 'QUIT', occurrence: 1, at: 'before' }, tls, committed: [COUNT, COUNT] },
    { fault: { command: 'QUIT', occurrence: 1, at: 'sent' }, tls, committed: [COUNT, COUNT], left: 0 },
    // The +OK to QUIT is the server's word that the deletions happened: the run succeeded.
    { fault: { command: 'QUIT', occurrence: 1, at: 'replied' }, tls, committed: [COUNT, COUNT], left: 0, outcome: 'ok' },
  ];
}

const covered = new Set(DROP_CASES.map((c) => JSON.stringify(c.fault)));

describe('a connection dropped at every command boundary, stored in SQLite', () => {
  for (const tls of [false, true]) {
    // In clear text, the cases above already cut at some of these: they are not run twice.
    for (const c of boundaries(tls).filter((b) => tls || !covered.has(JSON.stringify(b.fault)))) {
      it(`${sentence(c)} loses nothing, and the next run stores every message exactly once and empties the server`, () => dropAndRecover('sqlite', c));
    }
  }
});

describe('a connection dropped at TOP, stored in SQLite', () => {
  // Two messages over maxSize: with oversize `headers`, the sync keeps their header block (TOP n 0),
  // after every RETR and before any DELE; it never deletes them from the server.
  const big = bulkMessages(COUNT + 2, 9000).slice(COUNT);
  const headerBlock = (file: Buffer) => {
    const bytes = expectedRetrBytes(file);
    return bytes.subarray(0, bytes.indexOf('\r\n\r\n') + 4);
  };
  const HEADERS: SyncPolicy = { retention: 'delete', maxSize: 6000, oversize: 'headers' };
  const faults: Fault[] = [
    { command: 'TOP', occurrence: 1, at: 'before' },
    { command: 'TOP', occurrence: 1, at: 'sent' },
    { command: 'TOP', occurrence: 1, at: 'reply', bytes: 20 },
    { command: 'TOP', occurrence: 1, at: 'replied' },
    { command: 'TOP', occurrence: 2, at: 'replied' },
  ];
  for (const tls of [false, true]) {
    for (const fault of faults) {
      it(`${sentence({ fault, tls, committed: [COUNT, COUNT] })} deletes nothing, and the next run keeps each oversize message's headers once beside every other message`, async () => {
        await dovecot.setMailbox('alice', [...FILES, ...big]);
        const store = await openStore('sqlite');
        try {
          const accountId = await addAccount(store, proxy.port);
          const bigUids = new Set((await serverUids(dovecot.port, password())).slice(COUNT));
          const split = async () => {
            const rows = await storedRows(store, accountId);
            return { whole: rows.filter((r) => !bigUids.has(r.uid)), headers: rows.filter((r) => bigUids.has(r.uid) && !r.pending) };
          };
          await faultyRun(store, accountId, HEADERS, fault, { tls });
          const afterDrop = await split();
          assert.equal((await onServer()).length, COUNT + 2, 'nothing deleted by the dropped run');
          assertExactlyOnce(DELIVERED, afterDrop.whole, 'the whole messages, retrieved before any TOP');
          assert.equal(afterDrop.headers.length, fault.at === 'replied' ? fault.occurrence : 0, 'header blocks committed by the dropped run');

          await cleanRun(store, accountId, HEADERS, { tls });
          const afterClean = await split();
          assertExactlyOnce(DELIVERED, afterClean.whole, 'after the clean run');
          assert.deepEqual(afterClean.headers.map((r) => r.actual).sort(), big.map((b) => sha256(headerBlock(b))).sort(), 'each header block once');
          assert.deepEqual((await onServer()).sort(), big.map((b) => sha256(expectedRetrBytes(b))).sort(), 'only the oversize messages are left');
        } finally {
          await store.close();
        }
      });
    }
  }
});
