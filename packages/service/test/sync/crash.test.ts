/**
 * Crash safety: a sync with policy delete, run as a child process against the real Dovecot and
 * killed with SIGKILL at random moments, never loses a message and never stores one twice. The
 * child (crash-child.mjs) runs the built service: build first (`npm test` does).
 *
 * The mailbox is refilled in rounds: 300 messages of about 4 KB and three of 1, 1 and 1.5 MiB
 * (the child takes the chunked large-message path from 256 KiB), each round's content its own.
 * In a round, children run one after another on what the last one left, each killed at a moment
 * drawn uniformly over one clean run's duration, until one finishes before its kill or the round
 * has had its share of kills. That duration is measured first, and again whenever a round's first
 * child finishes before its kill (tests elsewhere on the machine change it a lot). Uniform kills
 * rarely hit the few milliseconds between the last commit and QUIT, where the deletions happen,
 * so every fifth kill is aimed instead: 0 to 40 ms after the child says it is deleting. After each kill: every message of the round is
 * on the server or committed, none twice; a lock left by the dead child is taken over by the
 * next run. Each round ends with a clean run (in this process): every message of the round
 * stored exactly once, byte for byte, and the server empty.
 *
 * It runs on SQLite and on PostgreSQL. On PostgreSQL the children connect through a relay that
 * keeps the server's side of a connection open when the child dies (as when a machine vanishes
 * rather than a process: no FIN reaches the server), so a killed child's transaction stays open
 * with its locks, and the next run must work beside it: the store has the server end a session
 * idle in a transaction (a minute by default, 1 s for these children; without it the next run
 * waited on the dead one's row lock for good). The relayed sessions are ended once the next run
 * is over. After each kill the test counts the dead child's sessions still in a transaction
 * (by their application name) and reports how many kills left one.
 *
 * The seed is printed; POPWIRE_CRASH_SEED=... replays the same draws (kill moments still fall
 * where that machine's timing puts them). POPWIRE_CRASH_KILLS sets how many kills to make on
 * each store (default 30 on SQLite, 12 on PostgreSQL).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { sql } from 'kysely';
import pg from 'pg';
import { Pop3Client } from 'popwire';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages, largeFixture } from '../../../../support/fixtures.ts';
import { startPostgres, type Postgres } from '../../../../support/postgres.ts';
import { Store } from '../../src/store/store.ts';
import { syncAccount } from '../../src/sync/index.ts';
import { STUCK_AFTER_MS, SyncChild, assertBuildIsCurrent, seededRandom, type ChildEnd, type KillAt } from './crash-safety.ts';
import {
  addAccount,
  assertExactlyOnce,
  assertNothingLost,
  deliveredToDovecot,
  serverContents,
  serverContentsByUid,
  serverUids,
  storedRows,
  type Delivered,
} from './promise-checks.ts';

const SEED = Number(process.env.POPWIRE_CRASH_SEED ?? 0x5eed_0006);
const KILLS = { sqlite: Number(process.env.POPWIRE_CRASH_KILLS ?? 30), postgres: Number(process.env.POPWIRE_CRASH_KILLS ?? 12) };
/** Kills in one round before a clean run ends it: the later ones land on ever shorter runs. */
const KILLS_PER_ROUND = 6;
const AIMED_EVERY = 5;
const LARGE_AT = new Map([
  [75, largeFixture(1024 * 1024).bytes],
  [150, largeFixture(1024 * 1024 + 4096).bytes],
  [225, largeFixture(1536 * 1024).bytes],
]);

let dovecot: Dovecot;
let postgres: Postgres;
let dir: string;

before(async () => {
  await assertBuildIsCurrent();
  [dovecot, postgres] = await Promise.all([startDovecot(), startPostgres()]);
  dir = await mkdtemp(join(tmpdir(), 'popwire-sync-crash-'));
});

after(async () => {
  await Promise.all([dovecot?.stop(), postgres?.stop()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const password = () => dovecot.users.alice!.password;

/** Round `round`'s mailbox: every message marked with the round, so no two rounds share content. */
function mailbox(round: number): Buffer[] {
  const mark = Buffer.from(`X-Crash-Round: ${round}\r\n`);
  const files = bulkMessages(300, 4096).map((m) => Buffer.concat([mark, m]));
  for (const [at, large] of LARGE_AT) files.splice(at, 0, Buffer.concat([mark, large]));
  return files;
}

interface Kill {
  readonly round: number;
  readonly delay: number;
  readonly end: ChildEnd;
  readonly stored: number;
  readonly pending: boolean;
  readonly lockHeld: boolean;
}

/** The store the children and this process share, and how to see what a dead child left open in it. */
interface Shared {
  readonly store: Store;
  /** What a child is given: a folder or a URL. */
  readonly where: string;
  /** Sessions of the dead child `pid` still inside a transaction on the server (PostgreSQL only). */
  readonly openTransactions: (pid: number) => Promise<number>;
  /** Ends, when called, the server sessions left by children dead so far. */
  readonly orphans: () => () => void;
  close(): Promise<void>;
}

async function shared(kind: 'sqlite' | 'postgres'): Promise<Shared> {
  if (kind === 'sqlite') {
    const store = await Store.open({ kind, dir });
    return { store, where: dir, openTransactions: async () => 0, orphans: () => () => {}, close: () => store.close() };
  }
  const url = await postgres.createDatabase();
  const store = await Store.open({ kind, url });
  const { rows } = await sql<{ idle_in_transaction_session_timeout: string }>`show idle_in_transaction_session_timeout`.execute(store.db);
  assert.equal(rows[0]?.idle_in_transaction_session_timeout, '1min', "the store's sessions end a transaction left idle by a vanished client");
  const holder = await holdOpen(postgres.port);
  const admin = new pg.Client({ connectionString: postgres.url });
  admin.on('error', () => {});
  await admin.connect();
  return {
    store,
    where: url.replace(`:${postgres.port}/`, `:${holder.port}/`),
    orphans: holder.orphans,
    openTransactions: async (pid) => {
      const { rows } = await admin.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND xact_start IS NOT NULL',
        [`popwire-crash-${pid}`],
      );
      return Number(rows[0]!.n);
    },
    close: async () => {
      holder.close();
      await admin.end().catch(() => {});
      await store.close();
    },
  };
}

/**
 * A TCP relay to PostgreSQL that keeps the server's side of a connection open when the client's
 * side dies, as a network does when the client's machine vanishes: the backend does not learn
 * of it, and a transaction it had open stays open, with its locks.
 */
async function holdOpen(port: number): Promise<{ port: number; orphans(): () => void; close(): void }> {
  const sockets = new Set<Socket>();
  /** Server sides whose client is gone. */
  const orphaned = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
    }
    client.pipe(upstream, { end: false });
    upstream.pipe(client);
    client.on('close', () => orphaned.add(upstream));
    upstream.on('close', () => {
      orphaned.delete(upstream);
      sockets.delete(upstream);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    // Those orphaned so far, to end once a later run has shown it works beside them (and before
    // they add up to max_connections).
    orphans: () => {
      const now = [...orphaned];
      return () => now.forEach((s) => s.destroy());
    },
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(kind === 'sqlite' ? 'SQLite' : 'PostgreSQL', () => {
    let on: Shared;
    before(async () => {
      on = await shared(kind);
    });
    after(() => on?.close());
    it('a sync killed with SIGKILL at random moments never loses a message, and a clean run then stores each exactly once and empties the server', (t) => crashes(t, on, KILLS[kind]));
  });
}

async function crashes(t: TestContext, on: Shared, KILLS: number): Promise<void> {
  const { store } = on;
  const random = seededRandom(SEED);
  t.diagnostic(`seed ${SEED} (replay: POPWIRE_CRASH_SEED=${SEED}), ${KILLS} kills`);
  let next = SyncChild.start(on.where, dovecot.port, password());
  /** Kills after which the dead child still had a transaction open on the server. */
  let leftOpen = 0;
  const dead = new Set<number>();
  const runChild = async (accountId: number, at: KillAt): Promise<ChildEnd> => {
    const child = next;
    next = SyncChild.start(on.where, dovecot.port, password());
    const release = on.orphans();
    const end = await child.run(accountId, at);
    assert.equal(end.stuck, false, `a run was still going after ${STUCK_AFTER_MS} ms (in phase ${end.phase}): waiting on a lock a dead run left?`);
    release();
    dead.add(end.pid);
    if (end.killed && (await on.openTransactions(end.pid)) > 0) leftOpen++;
    if (!end.killed) assert.equal(end.code, 0, `a run that was not killed failed: ${end.done ?? ''} ${end.stderr}`);
    return end;
  };

  try {
    // Round 0 is not killed: it measures a clean run, the span the kill moments are drawn from.
    const calibration = await startRound(store, 0);
    const clean = await runChild(calibration.accountId, { ms: 120_000 });
    await endRound(store, calibration, 'after the unkilled run');
    let span = clean.ms;
    t.diagnostic(`a clean run of ${calibration.delivered.length} messages took ${Math.round(span)} ms`);

    const kills: Kill[] = [];
    let finishedFirst = 0;
    /** Runs that got past the lock a killed run had left held ('connecting' comes after the lock is taken). */
    let tookOver = 0;
    for (let round = 1; kills.length < KILLS; round++) {
      const current = await startRound(store, round);
      for (let inRound = 0; inRound < KILLS_PER_ROUND && kills.length < KILLS; ) {
        const aimed = (kills.length + 1) % AIMED_EVERY === 0;
        const delay = aimed ? random() * 40 : random() * span;
        const end = await runChild(current.accountId, { ms: delay, phase: aimed ? 'deleting' : undefined });
        if (inRound > 0 && kills.at(-1)!.lockHeld && (!end.killed || end.phase !== 'starting')) tookOver++;
        if (!end.killed) {
          finishedFirst++;
          if (inRound === 0) span = end.ms;
          break;
        }
        inRound++;
        // Committed rows are read back byte for byte at the round's end; here their sha256 stands for them.
        const rows = await storedRows(store, current.accountId, { bytes: false });
        const onServer = (await serverUids(dovecot.port, password())).map((uid) => current.uids.get(uid) ?? `unknown UID ${uid}`);
        assertNothingLost(current.delivered, onServer, rows, `after kill ${kills.length + 1} (round ${round}, ${Math.round(delay)} ms, ${end.phase})`);
        const account = await store.accounts.get(current.accountId);
        const lockHeld = account.lock_owner !== null;
        // Held by this child, or by an earlier one when this one died before it took the lock over.
        const holder = /^(.*):(\d+):[0-9a-f]+$/.exec(account.lock_owner ?? '');
        if (lockHeld) assert.ok(holder?.[1] === hostname() && dead.has(Number(holder[2])), `a lock left behind is a dead child's: ${account.lock_owner}`);
        const kill = { round, delay, end, stored: rows.filter((r) => !r.pending).length, pending: rows.some((r) => r.pending), lockHeld };
        kills.push(kill);
        t.diagnostic(`kill ${kills.length}: round ${round} at ${Math.round(delay)} ms${aimed ? ' into deleting' : ''}, ${end.phase}, ${kill.stored} stored${kill.pending ? ', a large message half written' : ''}${lockHeld ? ', lock left held' : ''}`);
      }
      // The clean run, in this process, takes over any lock the last dead child left.
      await endRound(store, current, `after round ${round}`);
    }

    const phases = new Map<string, number>();
    for (const k of kills) phases.set(k.end.phase, (phases.get(k.end.phase) ?? 0) + 1);
    if (store.dialect === 'postgres') t.diagnostic(`${leftOpen} of ${kills.length} killed children still had a transaction open on PostgreSQL when the test looked; the next run worked each time`);
    t.diagnostic(`${kills.length} kills: ${[...phases].map(([p, n]) => `${n} ${p}`).join(', ')}; ${kills.filter((k) => k.pending).length} mid large message; ${kills.filter((k) => k.lockHeld).length} left the lock held; ${finishedFirst} runs finished before their kill; ${tookOver} later children took a dead one's lock over`);
    assert.ok(tookOver > 0, 'some kills left the account lock held by a dead process, and the next child took it over');
    assert.ok(kills.some((k) => k.pending), 'some kills landed while a large message was being written in chunks');
    assert.ok(kills.some((k) => k.stored > 0 && k.stored < 303), 'some kills landed between commits');
    assert.ok(kills.some((k) => k.end.phase === 'deleting' || k.end.phase === 'quitting'), 'some kills landed after the last commit, among the DELEs or at QUIT');
  } finally {
    await next.stop();
  }
}

interface Round {
  readonly accountId: number;
  readonly delivered: Delivered[];
  /** What the server holds under each UID, read once when the round starts. */
  readonly uids: Map<string, string>;
}

/** Fills the (empty) mailbox with the round's messages, for a fresh account of the store. */
async function startRound(store: Store, round: number): Promise<Round> {
  const files = mailbox(round);
  await dovecot.setMailbox('alice', files);
  const accountId = await addAccount(store, dovecot.port, `round-${round}`);
  const delivered = deliveredToDovecot(files, (i) => `round ${round} message ${i + 1}`);
  const uids = await serverContentsByUid(dovecot.port, password());
  assert.deepEqual([...uids.values()].sort(), delivered.map((d) => d.sha256).sort(), "the server holds the round's messages");
  return { accountId, delivered, uids };
}

/** A clean run; then each message of the round must be stored exactly once and the server empty. */
async function endRound(store: Store, round: Round, when: string): Promise<void> {
  const report = await syncAccount({
    store,
    accountId: round.accountId,
    policy: { retention: 'delete', oversize: 'skip' },
    writer: { largeBytes: 256 * 1024 },
    connect: () => Pop3Client.connect({ host: '127.0.0.1', port: dovecot.port, tls: 'none', user: 'alice', password: password(), allowPlaintextAuth: true }),
  });
  assert.equal(report.status, 'ok', `the clean run ${when} failed: ${String(report.error)}`);
  assertExactlyOnce(round.delivered, await storedRows(store, round.accountId), when);
  assert.deepEqual(await serverContents(dovecot.port, password()), [], `${when}: the server is empty`);
  assert.equal((await store.accounts.get(round.accountId)).lock_owner, null, `${when}: the lock is released`);
}
