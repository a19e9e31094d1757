/**
 * `npm run bench`: popwire (library and `popwire fetch`) against the fastest possible client and against other POP3 clients,
 * on one private Dovecot, in one run. Every number is reported as a ratio to the raw baseline
 * measured in the same run (see clients/raw.ts), because absolute speeds say more about the
 * machine than about the client.
 *
 * Scenarios (issue 4): (a) 10,000 messages of about 4 KB, on loopback and through a proxy that
 * adds 10 ms each way; (b) 20 messages of 5 MB; (c) one message of 100 MB, where peak memory
 * is the point. Each client runs in its own process, `RUNS` times; the median is reported.
 * Scenario (d) (issue 6): the sync engine into SQLite on the mailbox of (a), against the same
 * baseline, and a second run with nothing new against a raw UIDL+LIST+QUIT session.
 *
 * Scenario (f) (issue 13): `popwire fetch --mbox` and `--maildir`, with and without `--delete`, on
 * the mailbox of (a), against mpop delivering to the same kind of destination, both over STLS.
 *
 * Scenario (g) (issue 13): popa3d, which advertises no PIPELINING (no CAPA at all), serving 2,000
 * messages: popwire after its pipelining probe against the raw limit and lock-step; see bench/no-pipelining.ts.
 *
 * Scenario (j) (issue 13): start-up of the `popwire` command, bundle against tsc's output; see bench/startup.ts.
 *
 * Scenarios (h) and (i) (issue 13): the library's retrieveMany() against the true raw ceiling
 * (bench/library.ts), and sync's speed, CPU per message and nothing-new run (bench/sync-cpu.ts).
 *
 * Environment: BENCH_RUNS (default 3), BENCH_SCALE (default 1; 0.1 for a quick look),
 * BENCH_SCENARIOS (default `a,b,c,d,e,f,g,h,i,j`; `f` alone: `BENCH_SCENARIOS=f npm run bench`; which scenarios run; (e) is bench/service.ts, popwire serve with 200 accounts), BENCH_STORE_DIR (where (d) makes
 * its SQLite stores; default the system's temp folder, as the other clients' output).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pop3Client } from '../packages/client/src/index.ts';
import { startDovecot, type Dovecot } from '../support/dovecot.ts';
import { bulkMessages, largeFixture } from '../support/fixtures.ts';
import type { FetchJob, Job, Result } from './clients/common.ts';
import type { SyncJob, SyncResult } from './clients/popwire-sync.ts';
import { startDelayProxy } from './delay-proxy.ts';
import { noPipeliningScenario } from './no-pipelining.ts';
import { libraryScenario, printLibraryRow } from './library.ts';
import { printSyncCpuRow, syncCpuScenario } from './sync-cpu.ts';
import { searchScenario } from './search.ts';
import { lmtpScenario } from './lmtp.ts';
import { benchService, printServiceResult } from './service.ts';
import { startupScenario } from './startup.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const SCENARIOS = new Set((process.env.BENCH_SCENARIOS ?? 'a,b,c,d,e,f,g,h,i,j').split(',').map((id) => id.trim().toLowerCase()));
const STORE_BASE = process.env.BENCH_STORE_DIR ?? tmpdir();
const MiB = 2 ** 20;

interface Client {
  name: string;
  script: string;
  /** Cap on messages for clients too slow to run the whole scenario in reasonable time. */
  maxMessages?: number;
}

const BASELINE: Client = { name: 'raw pipelined socket (baseline)', script: 'raw' };
const BASELINE_TLS: Client = { name: 'raw pipelined socket over STLS (baseline)', script: 'raw-tls' };
const POPWIRE: Client = { name: 'popwire library (retrieveMany)', script: 'popwire' };
const FETCH: Client = { name: 'popwire fetch --mbox (STLS)', script: 'popwire-fetch' };
const NODE_POP3: Client = { name: 'node-pop3 0.11 (lock-step)', script: 'node-pop3' };
const MPOP: Client = { name: 'mpop 1.4 (C, pipelining)', script: 'mpop' };
const LISTING: Client = { name: 'raw UIDL+LIST+QUIT session (baseline)', script: 'raw-listing' };
const SYNC: Client = { name: 'popwire sync, first run (syncAccount into a fresh SQLite store)', script: 'popwire-sync' };

function hasMpop(): boolean {
  try {
    execFileSync('mpop', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function runClient(client: Client, job: Job): Promise<Result> {
  const count = Math.min(job.count, client.maxMessages ?? Infinity);
  const script = fileURLToPath(new URL(`./clients/${client.script}.ts`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify({ ...job, count })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`${client.name} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) as string) as Result;
}

async function median(client: Client, job: Job, runs: number): Promise<Result> {
  const results: Result[] = [];
  for (let i = 0; i < runs; i++) results.push(await runClient(client, job));
  return middle(results);
}

/** The run with the median time (the upper one of an even count). */
function middle<T extends Result>(results: T[]): T {
  const sorted = [...results].sort((a, b) => a.seconds - b.seconds);
  return sorted[Math.floor(sorted.length / 2)] as T;
}

interface Row {
  client: string;
  result: Result;
}

function printTable(title: string, rows: Row[]): void {
  const base = rows[0]?.result as Result;
  const baseRate = base.messages / base.seconds;
  const baseMBps = base.bytes / MiB / base.seconds;
  console.log(`\n### ${title}\n`);
  console.log('| client | messages | msg/s | ratio | MB/s | ratio | peak RSS MiB | RSS growth MiB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const { client, result } of rows) {
    const rate = result.messages / result.seconds;
    const mbps = result.bytes / MiB / result.seconds;
    const rss = result.peakRssMiB > 0 ? result.peakRssMiB.toFixed(0) : 'n/a';
    const growth = result.peakRssMiB > 0 ? (result.peakRssMiB - result.startRssMiB).toFixed(0) : 'n/a';
    console.log(
      `| ${client} | ${result.messages} | ${rate.toFixed(0)} | ${(rate / baseRate).toFixed(2)} | ${mbps.toFixed(1)} | ${(mbps / baseMBps).toFixed(2)} | ${rss} | ${growth} |`,
    );
  }
}

/** Opens the mailbox once so Dovecot builds its index before anything is timed. */
async function warm(dovecot: Dovecot, user: string): Promise<void> {
  const client = await Pop3Client.connect({
    host: dovecot.host,
    port: dovecot.port,
    tls: 'none',
    allowPlaintextAuth: true,
    user,
    password: dovecot.users[user]!.password,
    timeout: 300_000,
  });
  await client.uidl();
  await client.quit();
}

async function scenario(title: string, dovecot: Dovecot, user: string, count: number, clients: Client[], port = dovecot.port, runs = RUNS): Promise<void> {
  const job: Job = { host: dovecot.host, port, user, password: dovecot.users[user]!.password, count };
  const rows: Row[] = [];
  for (const client of clients) {
    const label = client.maxMessages !== undefined && client.maxMessages < count ? `${client.name} (first ${client.maxMessages})` : client.name;
    rows.push({ client: label, result: await median(client, job, runs) });
  }
  printTable(title, rows);
}

/**
 * (d): per round, in this order against the same mailbox: the raw retrieval baseline, the raw
 * listing session, a first sync into a fresh store, and a second sync (nothing new) on that
 * store. Interleaved rounds, so that Dovecot's drift over the run touches each alike.
 */
async function syncScenario(dovecot: Dovecot, user: string, count: number): Promise<void> {
  const job: Job = { host: dovecot.host, port: dovecot.port, user, password: dovecot.users[user]!.password, count };
  const raw: Result[] = [];
  const listing: Array<Result & { loginSeconds: number }> = [];
  const first: SyncResult[] = [];
  const again: SyncResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    raw.push(await runClient(BASELINE, job));
    listing.push((await runClient(LISTING, job)) as Result & { loginSeconds: number });
    const storeDir = await mkdtemp(join(STORE_BASE, 'popwire-bench-sync-'));
    try {
      const firstRun: Job & SyncJob = { ...job, storeDir, mode: 'first' };
      const secondRun: Job & SyncJob = { ...firstRun, mode: 'again' };
      first.push((await runClient(SYNC, firstRun)) as SyncResult);
      again.push((await runClient(SYNC, secondRun)) as SyncResult);
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  }
  const sync = middle(first);
  const baseline = middle(raw);
  printTable(`(d) sync of ${count} messages of about 4 KB into SQLite (store under ${STORE_BASE}), loopback`, [
    { client: BASELINE.name, result: baseline },
    { client: SYNC.name, result: sync },
  ]);
  const phase = (from: keyof SyncResult['phases'], to: keyof SyncResult['phases']) => ((sync.phases[to] ?? 0) - (sync.phases[from] ?? 0)).toFixed(2);
  console.log(
    `\nThe sync's whole run is timed (the baseline's login is not: a few ms). Its median run: connect and login ${phase('connecting', 'listing')} s,` +
      ` UIDL+LIST and the diff ${phase('listing', 'retrieving')} s, retrieval and commits ${phase('retrieving', 'deleting')} s, QUIT and bookkeeping` +
      ` ${(sync.seconds - (sync.phases.deleting ?? 0)).toFixed(2)} s (store created in ${sync.openSeconds.toFixed(2)} s, not counted).` +
      ` Beyond the baseline: ${(sync.seconds - baseline.seconds).toFixed(2)} s, ${((1e6 * (sync.seconds - baseline.seconds)) / count).toFixed(0)} us per message.` +
      ` CPU time of the sync process: ${sync.cpuSeconds.toFixed(2)} s, ${((1e6 * sync.cpuSeconds) / count).toFixed(0)} us per message.`,
  );

  const base = middle(listing);
  const noop = middle(again);
  console.log(`\n### (d) second sync of the same ${count} messages, nothing new\n`);
  console.log('| run | seconds | time ÷ baseline | peak RSS MiB |');
  console.log('|---|---:|---:|---:|');
  console.log(`| ${LISTING.name}: connect to close, login ${base.loginSeconds.toFixed(3)} s | ${base.seconds.toFixed(2)} | 1.00 | ${base.peakRssMiB.toFixed(0)} |`);
  console.log(
    `| popwire sync, nothing new (syncAccount; store opened in ${noop.openSeconds.toFixed(2)} s before, not counted) | ${noop.seconds.toFixed(2)} | ${(noop.seconds / base.seconds).toFixed(2)} | ${noop.peakRssMiB.toFixed(0)} |`,
  );
  const all = (rs: Result[]) => rs.map((r) => r.seconds.toFixed(2)).join(', ');
  const cpu = (rs: SyncResult[]) => rs.map((r) => r.cpuSeconds.toFixed(2)).join(', ');
  console.log(`\nEvery round, seconds: raw retrieval ${all(raw)}; sync ${all(first)}; raw listing ${all(listing)}; sync with nothing new ${all(again)}.`);
  console.log(`CPU seconds of the sync process, every round: first sync ${cpu(first)}; nothing new ${cpu(again)}.`);
}

/**
 * (f): for each destination (mbox, Maildir) and mode (keep, --delete), mpop and `popwire fetch`
 * into the same kind of destination, both over STLS with Dovecot's certificate as the CA; the raw
 * baseline (clear text, as in (a)) once per round. Rounds interleave, so that Dovecot's drift
 * touches each alike. Before a --delete run the mailbox is filled again and opened once (not timed).
 */
async function fetchScenario(dovecot: Dovecot, user: string, messages: Buffer[]): Promise<void> {
  const count = messages.length;
  const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-ca-'));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
  const job: Job = { host: dovecot.host, port: dovecot.port, user, password: dovecot.users[user]!.password, count };
  const cases: FetchJob[] = [
    { destination: 'mbox', delete: false, caFile },
    { destination: 'mbox', delete: true, caFile },
    { destination: 'maildir', delete: false, caFile },
    { destination: 'maildir', delete: true, caFile },
  ];
  const raw: Result[] = [];
  const results = new Map<string, Result[]>();
  const key = (client: string, fetch: FetchJob) => `${client} ${fetch.destination}${fetch.delete ? ' --delete' : ''}`;
  try {
    let dirty = true;
    for (let i = 0; i < RUNS; i++) {
      for (const fetch of cases) {
        for (const client of [MPOP, FETCH]) {
          if (dirty) {
            await dovecot.setMailbox(user, messages);
            await warm(dovecot, user);
          }
          if (fetch === cases[0] && client === MPOP) raw.push(await runClient(BASELINE, job));
          const result = await runClient(client, { ...job, fetch });
          results.set(key(client.script, fetch), [...(results.get(key(client.script, fetch)) ?? []), result]);
          dirty = fetch.delete;
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const base = middle(raw);
  const all = (rs: Result[]) => rs.map((r) => r.seconds.toFixed(2)).join(', ');
  console.log(`\n### (f) popwire fetch against mpop, ${count} messages of about 4 KB, loopback, STLS (raw baseline in clear text)\n`);
  console.log(`Raw pipelined baseline: ${base.seconds.toFixed(2)} s (every round: ${all(raw)}).\n`);
  console.log('| destination | mpop s | popwire fetch s | popwire ÷ mpop (speed) | popwire ÷ raw limit (speed) | popwire peak RSS MiB | every round, mpop; popwire |');
  console.log('|---|---:|---:|---:|---:|---:|---|');
  for (const fetch of cases) {
    const mpop = results.get(key(MPOP.script, fetch)) ?? [];
    const popwire = results.get(key(FETCH.script, fetch)) ?? [];
    const m = middle(mpop);
    const p = middle(popwire);
    const label = `--${fetch.destination}${fetch.delete ? ' --delete' : ''}`;
    console.log(
      `| ${label} | ${m.seconds.toFixed(2)} | ${p.seconds.toFixed(2)} | ${(m.seconds / p.seconds).toFixed(2)} | ${(base.seconds / p.seconds).toFixed(2)} | ${p.peakRssMiB.toFixed(0)} | ${all(mpop)}; ${all(popwire)} |`,
    );
  }
  await fetchThroughProxy(dovecot, user, messages.slice(0, 2000), cases);
}

/**
 * (f) through the proxy that adds 10 ms each way: `popwire fetch` (STLS) against the raw limit
 * (clear text) on at most 2,000 messages, which the issue asks to run at no less than 0.5 times
 * the raw limit's speed. Like is compared with like twice: whole sessions (the raw client's
 * connect to close, USER, PASS, every RETR, QUIT, in clear text and over STLS (raw-tls.ts);
 * popwire's main(), its command's code loaded before: connect, STLS, TLS, CAPA, login, LIST,
 * RETRs, DELEs, QUIT, the fsyncs), and the
 * retrieval alone (the first RETR written to the last body read, from a traced `--mbox` run in
 * each round, not the timed one). The phases of that traced run are printed too.
 */
async function fetchThroughProxy(dovecot: Dovecot, user: string, messages: Buffer[], loopbackCases: FetchJob[]): Promise<void> {
  // The loopback part removed its CA file: a fresh one.
  const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-ca-'));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
  const cases = loopbackCases.map((fetch) => ({ ...fetch, caFile }));
  const proxy = await startDelayProxy({ host: dovecot.host, port: dovecot.port }, 10);
  const job: Job = { host: dovecot.host, port: proxy.port, user, password: dovecot.users[user]!.password, count: messages.length };
  const raw: Result[] = [];
  const rawTls: Result[] = [];
  const traced: Result[] = [];
  const results = new Map<FetchJob, Result[]>();
  try {
    let dirty = true;
    for (let i = 0; i < RUNS; i++) {
      for (const fetch of cases) {
        if (dirty) {
          await dovecot.setMailbox(user, messages);
          await warm(dovecot, user);
        }
        if (fetch === cases[0]) {
          raw.push(await runClient(BASELINE, job));
          rawTls.push(await runClient(BASELINE_TLS, { ...job, fetch }));
          traced.push(await runClient(FETCH, { ...job, fetch, phases: true }));
        }
        results.set(fetch, [...(results.get(fetch) ?? []), await runClient(FETCH, { ...job, fetch })]);
        dirty = fetch.delete;
      }
    }
  } finally {
    await proxy.close();
    await rm(dir, { recursive: true, force: true });
  }
  const base = middle(raw);
  const session = (r: Result) => r.sessionSeconds ?? Number.NaN;
  const medianOf = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  const baseSession = medianOf(raw.map(session));
  const tlsSession = medianOf(rawTls.map(session));
  const all = (rs: Result[]) => rs.map((r) => r.seconds.toFixed(2)).join(', ');
  console.log(`\n### (f) popwire fetch through a proxy adding 10 ms each way, ${messages.length} messages of about 4 KB, STLS (raw baseline in clear text)\n`);
  console.log(
    `Raw pipelined baseline: whole session (connect to close: greeting, USER, PASS, every RETR at once, QUIT) ${baseSession.toFixed(2)} s` +
      ` (every round: ${raw.map((r) => session(r).toFixed(2)).join(', ')}); its retrieval alone ${base.seconds.toFixed(2)} s (${all(raw)}).` +
      ` The same over STLS (raw-tls.ts: STLS, the handshake, USER, PASS, RETRs, QUIT), whole session ${tlsSession.toFixed(2)} s` +
      ` (${rawTls.map((r) => session(r).toFixed(2)).join(', ')}), retrieval ${middle(rawTls).seconds.toFixed(2)} s (${all(rawTls)}).\n`,
  );
  console.log(
    '| destination | popwire fetch s (main(), whole session) | CPU s | ÷ raw STLS whole session (speed) | ÷ raw clear-text whole session | ÷ raw clear-text retrieval alone | every round |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---|');
  for (const fetch of cases) {
    const rounds = results.get(fetch) ?? [];
    const p = middle(rounds);
    console.log(
      `| --${fetch.destination}${fetch.delete ? ' --delete' : ''} | ${p.seconds.toFixed(2)} | ${(p.cpuSeconds ?? Number.NaN).toFixed(2)} | ${(tlsSession / p.seconds).toFixed(2)} |` +
        ` ${(baseSession / p.seconds).toFixed(2)} | ${(base.seconds / p.seconds).toFixed(2)} | ${all(rounds)} |`,
    );
  }
  const phased = traced.filter((r) => r.fetchPhases !== undefined);
  if (phased.length === 0) return;
  const t = middle(phased).fetchPhases!;
  const span = (from: number, to: number) => (to - from).toFixed(3);
  console.log(`\nThe phases of the median traced \`--mbox\` run (seconds; --trace on, so a little slower than the timed runs), round trip 20 ms:\n`);
  console.log('| start to greeting | STLS | TLS handshake | CAPA over TLS | login (and CAPA) | listing | first RETR to last body | last body to QUIT written | QUIT answered | to main() returning |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  console.log(
    `| ${t.greeting.toFixed(3)} | ${span(t.greeting, t.tlsStarted)} | ${span(t.tlsStarted, t.tlsDone)} | ${span(t.tlsDone, t.loginSent)} | ${span(t.loginSent, t.listingSent)} | ${span(t.listingSent, t.firstRetr)} |` +
      ` ${span(t.firstRetr, t.lastBody)} | ${span(t.lastBody, t.quitSent)} | ${span(t.quitSent, t.quitAnswered)} | ${span(t.quitAnswered, t.end)} |`,
  );
  const retrieval = phased.map((r) => r.fetchPhases!.lastBody - r.fetchPhases!.firstRetr).sort((a, b) => a - b);
  const medianRetrieval = retrieval[Math.floor(retrieval.length / 2)] as number;
  console.log(
    `\nRetrieval alone, first RETR written to the last body read: popwire ${medianRetrieval.toFixed(3)} s (every traced round: ${retrieval.map((s) => s.toFixed(3)).join(', ')}),` +
      ` the raw client ${base.seconds.toFixed(3)} s: ${(base.seconds / medianRetrieval).toFixed(2)} of its speed.`,
  );
}

const dovecot = await startDovecot();
try {
  const others = hasMpop() ? [NODE_POP3, MPOP] : [NODE_POP3];
  const small = Math.round(10_000 * SCALE);
  const medium = Math.max(2, Math.round(20 * SCALE));
  const hugeBytes = Math.round(100 * MiB * SCALE);
  console.log(`popwire benchmark: Node ${process.version}, ${RUNS} runs each, median shown; Dovecot on loopback, plain POP3.`);

  // (a) and (d) share this mailbox: none of (a)'s clients deletes anything.
  if (SCENARIOS.has('a') || SCENARIOS.has('d') || SCENARIOS.has('h') || SCENARIOS.has('i') || SCENARIOS.has('j')) {
    await dovecot.setMailbox('alice', bulkMessages(small, 4096));
    await warm(dovecot, 'alice');
  }
  if (SCENARIOS.has('a')) {
    await scenario(`(a) ${small} messages of about 4 KB, loopback`, dovecot, 'alice', small, [BASELINE, POPWIRE, FETCH, ...others]);

    const proxy = await startDelayProxy({ host: dovecot.host, port: dovecot.port }, 10);
    try {
      const slowCap = Math.max(20, Math.round(small / 50));
      await scenario(
        `(a) ${small} messages of about 4 KB, through a proxy adding 10 ms each way`,
        dovecot,
        'alice',
        small,
        [BASELINE, POPWIRE, FETCH, { ...NODE_POP3, maxMessages: slowCap }, ...(hasMpop() ? [MPOP] : [])],
        proxy.port,
      );
    } finally {
      await proxy.close();
    }
  }

  if (SCENARIOS.has('b')) {
    await dovecot.setMailbox('bob', bulkMessages(medium, 5 * MiB));
    await warm(dovecot, 'bob');
    await scenario(`(b) ${medium} messages of 5 MB, loopback`, dovecot, 'bob', medium, [BASELINE, POPWIRE, FETCH, ...others]);
  }

  if (SCENARIOS.has('c')) {
    await dovecot.setMailbox('carol', [largeFixture(hugeBytes).bytes]);
    await warm(dovecot, 'carol');
    await scenario(`(c) one message of ${(hugeBytes / MiB).toFixed(0)} MB, loopback`, dovecot, 'carol', 1, [BASELINE, POPWIRE, FETCH, ...others]);
  }

  if (SCENARIOS.has('d')) await syncScenario(dovecot, 'alice', small);
  // (h) and (i), issue 13: the library and the sync against the true raw ceiling, ratios within each round.
  const alice: Job = { host: dovecot.host, port: dovecot.port, user: 'alice', password: dovecot.users.alice!.password, count: small };
  if (SCENARIOS.has('h')) printLibraryRow(small, await libraryScenario(alice, Math.max(RUNS, 5)));
  if (SCENARIOS.has('i')) printSyncCpuRow(await syncCpuScenario(alice, Math.max(RUNS, 5), STORE_BASE));

  // (j) bench/startup.ts: node -e 0, popwire --version, capa, and sync with nothing new on the mailbox of (a).
  if (SCENARIOS.has('j')) await startupScenario({ dovecot, user: 'alice', count: small, runs: Math.max(RUNS, 7) });

  // Last on this Dovecot: its --delete runs empty the mailbox (and fill it again before the next).
  if (SCENARIOS.has('f')) {
    if (hasMpop()) await fetchScenario(dovecot, 'alice', bulkMessages(small, 4096));
    else console.log('\n(f) skipped: mpop is not installed (apt-get install mpop)');
  }
} finally {
  await dovecot.stop();
}

// (e) starts its own Dovecot with 200 users. One round: about seven minutes at full size.
if (SCENARIOS.has('e')) printServiceResult(await benchService({ accounts: Math.max(2, Math.round(200 * SCALE)), messages: 50, runs: 1 }));

// (g) bench/no-pipelining.ts: popa3d, which advertises nothing, against the raw limit; skipped without root or popa3d.
if (SCENARIOS.has('g')) await noPipeliningScenario({ count: Math.round(2000 * SCALE), runs: RUNS });

// (k) bench/lmtp.ts: 10,000 x 4 KB from Dovecot POP3 into Dovecot LMTP: popwire fetch/sync --lmtp, fetchmail, the raw LMTP limit.
if (SCENARIOS.has('k')) await lmtpScenario({ count: Math.round(10_000 * SCALE), runs: RUNS });

// (l) bench/search.ts: search over 100,000 stored messages on SQLite and PostgreSQL. Not run by default: loading takes minutes.
if (SCENARIOS.has('l')) await searchScenario();
