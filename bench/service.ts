/**
 * Scenario (e) (issue 7): `popwire serve` syncing many accounts at once, against the same
 * accounts synced one after another by `popwire sync`, one process per account.
 *
 * One private Dovecot with `accounts` users, each holding `messages` messages of about
 * `messageBytes`. Both sides run the built bin (packages/service/bin/popwire.js) as a user would,
 * log in with STLS (Dovecot's certificate trusted through `tls.caFile` / `--ca`: the CLI has no
 * clear-text mode against a server that offers STLS, so both sides use it), keep the default
 * policy (leave everything on the server) and write into a fresh SQLite store, one per side and
 * run, under `storeBase`:
 *
 * - serve: `popwire token create`, then `popwire serve --config FILE` (port 0: the URL comes from
 *   its stderr). Every account is created over the API with `syncInterval: null`, so nothing runs
 *   before it is asked. Timed: from just before the first `POST /v1/accounts/{id}/sync` (one per
 *   account, one after another, as a script would) to the `finishedAt` of the last job; completion
 *   is seen by polling `GET /metrics` (popwire_syncs_total). Then every job must be `done`, every
 *   account's last run must have stored `messages` new ones, and its message list must hold them.
 *   Peak RSS is the process's VmHWM, read before SIGTERM.
 * - sequential: `popwire sync pop3://USER@127.0.0.1:PORT --store DIR --ca CA --json` for each
 *   account in turn, the password in POPWIRE_PASSWORD, all into the same store (as serve keeps
 *   every account in one store, and as a cron loop over the accounts would). Timed: the whole
 *   loop, process starts included.
 *
 * After each side, `popwire messages --json` on its store must list every message of every
 * account, each with the sha256 of the bytes Dovecot sends. Before each side every mailbox is
 * filled again (setMailbox) and opened once, so that Dovecot's indexes are built outside the
 * timed part and every side sees the same, equally warm mailboxes. Rounds interleave the sides
 * (serve at the default concurrency, sequential, serve at each extra concurrency), so that drift
 * in the machine's speed touches each alike; the median round of each side is reported.
 *
 * Standalone: `node --import tsx bench/service.ts` (build first: npx tsc -b packages/client
 * packages/service). Environment: BENCH_SCALE (accounts = 200 x scale, at least 2), BENCH_RUNS
 * (default 1), BENCH_STORE_DIR (where the stores go; default /var/tmp), BENCH_SERVICE_CONCURRENCY
 * (the extra rows; default `8,16`), BENCH_SERVICE_PROFILE (a folder: the serve processes run with
 * --cpu-prof and write their profiles there), BENCH_SERVICE_PROBE_MS (default 100: how often
 * `GET /v1/accounts` is sent while serve syncs, its latency reported; 0: not sent),
 * BENCH_SERVICE_WORKERS (serve's `sync.workers` in every row but the last: the syncs in that many
 * worker threads; unset: the default), BENCH_SERVICE_WORKERS_ROW (default 2: a last serve row at the
 * default concurrency with that many sync workers, before and after in one run; 0: no such row), BENCH_SERVICE_SEQUENTIAL (0: skip the sequential side, about three minutes a round, while
 * iterating on serve; its row then shows NaN).
 *
 * Also reported for each serve row: the same `GET /v1/accounts` timed alone (20 requests one
 * after another before the first POST: the handler's own cost on 200 accounts), and serve's
 * event-loop delay during the timed part, read from its /metrics
 * (popwire_nodejs_eventloop_lag_*: prom-client's monitorEventLoopDelay, reset at each scrape),
 * so that a slow probe can be told apart as a slow handler or a busy loop.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Pop3Client } from '../packages/client/src/index.ts';
import { loadConfig } from '../packages/service/dist/config.js';
import { expectedRetrBytes, startDovecot, type Dovecot } from '../support/dovecot.ts';
import { bulkMessages } from '../support/fixtures.ts';

export interface ServiceBenchOptions {
  /** Mailboxes (Dovecot users, popwire accounts). */
  accounts: number;
  /** Messages in each mailbox. */
  messages: number;
  /** Rounds; the median round of each side is reported. */
  runs: number;
  /** Approximate size of each message. Default 4096. */
  messageBytes?: number;
  /** sync.concurrency of the extra serve rows (the first row is the default, not set in the config). Default [8, 16]. */
  concurrencies?: number[];
  /** Where the SQLite stores are made. Default $BENCH_STORE_DIR, else /var/tmp. */
  storeBase?: string;
  /** If set, each serve process runs with --cpu-prof and writes its profile into this folder. */
  profileDir?: string;
}

/** What both sides measure, for the median round. */
interface SideResult {
  /** The timed part. */
  seconds: number;
  /** CPU seconds of the popwire process(es) (user + system, all threads). */
  cpuSeconds: number;
  /** CPU seconds of Dovecot (master, its services and every pop3 process) over the timed part. */
  dovecotCpuSeconds: number;
  /** The sync runs' own durations, summed (serve: popwire_sync_duration_seconds_sum; sequential: each report's `seconds`). */
  syncSecondsSum: number;
  /** Every round's `seconds`, in order. */
  rounds: number[];
}

export interface ServeResult extends SideResult {
  /** sync.concurrency in effect. */
  concurrency: number;
  /** Whether it was left to the default (not set in the config). */
  isDefault: boolean;
  /** sync.workers set for this row (undefined: the default, syncs in the main thread). */
  workers: number | undefined;
  /** Of `seconds`: the time the POSTs took (the syncs run meanwhile). */
  queueSeconds: number;
  /** CPU seconds of the serve process's main thread (the event loop, and SQLite, which runs on it). */
  mainThreadCpuSeconds: number;
  /** VmHWM of the serve process before it was stopped. */
  peakRssMiB: number;
  /** Most syncs seen running at once (popwire_syncs_running, sampled while polling). */
  maxRunning: number;
  /** `GET /v1/accounts` sent every 100 ms during the timed part: its latency (ms). */
  listLatency: LatencySummary;
  /** The same request, 20 times one after another before the syncs: the handler alone (ms). */
  idleListLatency: LatencySummary;
  /** The probe's requests as serve's log times them (Fastify's responseTime: from reading the request to the end of the reply). */
  listServerTime: LatencySummary;
  /** How late the bench process itself sent the probe's requests (ms): its own delay, included in listLatency. */
  probeSendLateness: LatencySummary;
  /** serve's event-loop delay over the timed part, from its /metrics scrapes (ms). */
  loopDelay: LoopDelay;
}

export interface LoopDelay {
  /** Scrapes seen (each covers the time since the one before). */
  scrapes: number;
  /** Median over the scrapes of each one's p99. */
  p99Median: number;
  /** Highest p99 of any scrape. */
  p99Max: number;
  /** Longest delay seen. */
  max: number;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export interface SequentialResult extends SideResult {
  /** Median wall time of one `popwire sync` process, start to exit. */
  medianProcessSeconds: number;
  /** Median of the sync run's own time inside it (the report's `seconds`). */
  medianSyncSeconds: number;
}

export interface ServiceBenchResult {
  node: string;
  /** The machine's 1-minute load average before the first round: anything else running skews every number. */
  loadBefore: number;
  accounts: number;
  messages: number;
  messageBytes: number;
  /** Octets of one mailbox as RETR delivers them. */
  mailboxBytes: number;
  runs: number;
  storeBase: string;
  /** Not timed: Dovecot start with every user, one fill of every mailbox plus its warm-up, creating the accounts over the API (median). */
  setup: { dovecotStartSeconds: number; fillSeconds: number; createAccountsSeconds: number };
  sequential: SequentialResult;
  /** The default concurrency first, then the extra rows. */
  serve: ServeResult[];
}

/** A `popwire serve` child: stdout (its log) and stderr piped. */
type Server = ChildProcessByStdio<null, Readable, Readable>;

const BIN = fileURLToPath(new URL('../packages/service/bin/popwire.js', import.meta.url));
const MiB = 2 ** 20;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
/** How long one side may take before the bench gives up on it. */
const SIDE_TIMEOUT_MS = 30 * 60_000;

export async function benchService(options: ServiceBenchOptions): Promise<ServiceBenchResult> {
  const messageBytes = options.messageBytes ?? 4096;
  const storeBase = options.storeBase ?? process.env.BENCH_STORE_DIR ?? '/var/tmp';
  const concurrencies = options.concurrencies ?? [8, 16];
  const defaultConcurrency = loadConfig({ env: {} }).sync.concurrency;
  const users = Array.from({ length: options.accounts }, (_, i) => ({ user: `svc${String(i + 1).padStart(4, '0')}`, password: `svc-secret-${i + 1}` }));
  const mail = bulkMessages(options.messages, messageBytes);
  const expected = expectedOf(mail);

  const loadBefore = loadavg()[0]!;
  const dovecotStarted = performance.now();
  const dovecot = await startDovecot({ users });
  const dovecotStartSeconds = (performance.now() - dovecotStarted) / 1000;
  const work = await mkdtemp(join(storeBase, 'popwire-bench-service-'));
  try {
    const caFile = join(work, 'dovecot-ca.pem');
    await writeFile(caFile, dovecot.ca);
    const env: BenchEnv = { dovecot, users, caFile, work, expected, messages: options.messages, profileDir: options.profileDir };
    const fills: number[] = [];
    const fill = async () => fills.push(await fillMailboxes(dovecot, users.map((u) => u.user), mail));

    const serveSides: Array<{ concurrency: number; isDefault: boolean; workers: number | undefined }> = [
      { concurrency: defaultConcurrency, isDefault: true, workers: SYNC_WORKERS },
      ...concurrencies.map((concurrency) => ({ concurrency, isDefault: false, workers: SYNC_WORKERS })),
      // The syncs in worker threads, at the default concurrency: before and after in the same run.
      ...(WORKERS_ROW > 0 ? [{ concurrency: defaultConcurrency, isDefault: false, workers: WORKERS_ROW }] : []),
    ];
    const serveRounds: ServeRound[][] = serveSides.map(() => []);
    const sequentialRounds: SequentialRound[] = [];
    for (let round = 1; round <= options.runs; round++) {
      for (const [i, side] of serveSides.entries()) {
        await fill();
        const served = await serveRound(env, side.isDefault ? undefined : side.concurrency, side.workers);
        serveRounds[i]!.push(served);
        // As it comes, before the long sequential side: a run cut short still tells this much.
        const { seconds, listLatency: l, idleListLatency: idle, loopDelay: d } = served.result;
        console.error(
          `(e) serve at concurrency ${side.concurrency}${side.workers === undefined ? '' : `, ${side.workers} sync workers`}, round ${round}: ${seconds.toFixed(1)} s, ${((options.accounts * options.messages) / seconds).toFixed(0)} msg/s;` +
            ` GET /v1/accounts p50 ${l.p50.toFixed(0)} ms, p99 ${l.p99.toFixed(0)} ms, max ${l.max.toFixed(0)} ms (${l.samples} samples);` +
            ` serve's own responseTime p50 ${served.result.listServerTime.p50.toFixed(0)} ms, p99 ${served.result.listServerTime.p99.toFixed(0)} ms;` +
            ` bench's own send lateness p99 ${served.result.probeSendLateness.p99.toFixed(0)} ms;` +
            ` alone p50 ${idle.p50.toFixed(1)} ms, max ${idle.max.toFixed(1)} ms; event-loop delay p99 ${d.p99Median.toFixed(0)} ms (median of ${d.scrapes} scrapes, highest ${d.p99Max.toFixed(0)}), max ${d.max.toFixed(0)} ms;` +
            ` main thread CPU ${served.result.mainThreadCpuSeconds.toFixed(1)} s of ${served.result.cpuSeconds.toFixed(1)} s`,
        );
        if (i === 0 && SEQUENTIAL) {
          await fill();
          sequentialRounds.push(await sequentialRound(env));
        }
      }
    }

    const serve = serveSides.map((side, i): ServeResult => {
      const rounds = serveRounds[i]!;
      const m = middle(rounds);
      return { ...m.result, concurrency: side.concurrency, isDefault: side.isDefault, workers: side.workers, rounds: rounds.map((r) => r.result.seconds) };
    });
    const sequential = sequentialRounds.length > 0 ? middle(sequentialRounds).result : skippedSequential();
    return {
      node: process.version,
      loadBefore,
      accounts: options.accounts,
      messages: options.messages,
      messageBytes,
      mailboxBytes: expected.bytes,
      runs: options.runs,
      storeBase,
      setup: {
        dovecotStartSeconds,
        fillSeconds: median(fills),
        createAccountsSeconds: median(serveRounds.flat().map((r) => r.createAccountsSeconds)),
      },
      sequential: { ...sequential, rounds: sequentialRounds.map((r) => r.result.seconds) },
      serve,
    };
  } finally {
    await Promise.allSettled([dovecot.stop(), rm(work, { recursive: true, force: true, maxRetries: 5 })]);
  }
}

export function printServiceResult(result: ServiceBenchResult): void {
  const total = result.accounts * result.messages;
  const seq = result.sequential;
  const rate = (seconds: number) => (total / seconds).toFixed(0);
  const latency = ({ p50, p99, max, samples }: LatencySummary) => `${p50.toFixed(0)} / ${p99.toFixed(0)} / ${max.toFixed(0)} (${samples} samples)`;
  const cpu = (side: SideResult & { mainThreadCpuSeconds?: number }) =>
    `${side.cpuSeconds.toFixed(1)}${side.mainThreadCpuSeconds === undefined ? '' : ` (main thread ${side.mainThreadCpuSeconds.toFixed(1)})`}`;
  console.log(
    `\n### (e) ${result.accounts} accounts x ${result.messages} messages of about ${(result.messageBytes / 1024).toFixed(0)} KB, ` +
      `synced into SQLite (stores under ${result.storeBase}), STLS on loopback; median of ${result.runs} round(s); load average before: ${result.loadBefore.toFixed(1)}\n`,
  );
  console.log('| how | concurrency | seconds | msg/s | ratio (sequential s / this s) | popwire CPU s | Dovecot CPU s | peak RSS MiB | GET /v1/accounts p50 / p99 / max ms | alone p50 ms | event-loop delay p99 / max ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  console.log(`| \`popwire sync\`, one process per account, one after another | 1 | ${seq.seconds.toFixed(1)} | ${rate(seq.seconds)} | 1.00 | ${cpu(seq)} | ${seq.dovecotCpuSeconds.toFixed(1)} | n/a | n/a | n/a | n/a |`);
  for (const row of result.serve) {
    const how =
      (row.isDefault ? '`popwire serve`, default concurrency' : `\`popwire serve\`, sync.concurrency ${row.concurrency}`) +
      (row.workers === undefined ? '' : `, sync.workers ${row.workers}`);
    console.log(
      `| ${how} | ${row.concurrency} | ${row.seconds.toFixed(1)} | ${rate(row.seconds)} | ${(seq.seconds / row.seconds).toFixed(2)} | ${cpu(row)} | ${row.dovecotCpuSeconds.toFixed(1)} | ${row.peakRssMiB.toFixed(0)} | ${latency(row.listLatency)} | ${row.idleListLatency.p50.toFixed(1)} | ${row.loopDelay.p99Median.toFixed(0)} / ${row.loopDelay.max.toFixed(0)} |`,
    );
  }
  const all = (rounds: number[]) => rounds.map((s) => s.toFixed(1)).join(', ');
  const first = result.serve[0]!;
  console.log(
    `\nEach \`popwire sync\` process took ${seq.medianProcessSeconds.toFixed(2)} s (median), of which the sync run itself ${seq.medianSyncSeconds.toFixed(2)} s;` +
      ` the rest is starting Node, loading the command and opening the store. The serve processes' sync runs took ${(first.syncSecondsSum / result.accounts).toFixed(2)} s each on average` +
      ` at the default concurrency (${first.maxRunning} seen running at once); queueing all ${result.accounts} syncs over the API took ${first.queueSeconds.toFixed(2)} s of its time.` +
      ` Not timed: Dovecot start with ${result.accounts} users ${result.setup.dovecotStartSeconds.toFixed(1)} s, filling and warming every mailbox ${result.setup.fillSeconds.toFixed(1)} s,` +
      ` creating the accounts over the API ${result.setup.createAccountsSeconds.toFixed(1)} s.`,
  );
  console.log(`\nEvery round, seconds: sequential ${all(seq.rounds)}; ${result.serve.map((r) => `serve at ${r.concurrency} ${all(r.rounds)}`).join('; ')}.`);
}

interface BenchEnv {
  dovecot: Dovecot;
  users: Array<{ user: string; password: string }>;
  caFile: string;
  /** Where each side's store folder is made. */
  work: string;
  expected: Expected;
  messages: number;
  profileDir: string | undefined;
}

interface ServeRound {
  result: Omit<ServeResult, 'concurrency' | 'isDefault' | 'workers' | 'rounds'>;
  createAccountsSeconds: number;
}

interface SequentialRound {
  result: Omit<SequentialResult, 'rounds'>;
}

/** One `popwire serve` from an empty store to every account synced, then SIGTERM. */
async function serveRound(env: BenchEnv, concurrency: number | undefined, workers: number | undefined): Promise<ServeRound> {
  const { dovecot, users } = env;
  const dir = await mkdtemp(join(env.work, 'serve-'));
  const store = join(dir, 'data');
  const configFile = join(dir, 'popwire.json');
  await writeFile(
    configFile,
    JSON.stringify({
      store,
      http: { port: 0 },
      tls: { caFile: env.caFile },
      network: { allow: ['127.0.0.1'] },
      sync: { ...(concurrency === undefined ? {} : { concurrency }), ...(workers === undefined ? {} : { workers }) },
    }),
  );
  const token = (await runPopwire(['token', 'create', '--name', 'bench', '--store', store])).stdout.trim();
  const execArgv = env.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(env.profileDir), '--cpu-prof-name', `serve-${concurrency ?? 'default'}-${Date.now()}.cpuprofile`];
  const server = spawn(process.execPath, [...execArgv, BIN, 'serve', '--config', configFile], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const log = logWatcher(server);
  try {
    const base = await listening(server, log);
    const api = apiClient(base, token);

    const creating = performance.now();
    const ids: number[] = [];
    for (const { user, password } of users) {
      const created = await api.json<{ id: number }>('POST', '/v1/accounts', {
        name: user,
        host: dovecot.host,
        port: dovecot.port,
        tls: 'starttls',
        username: user,
        credentials: { type: 'password', password },
        syncInterval: null,
      }, 201);
      ids.push(created.id);
    }
    const createAccountsSeconds = (performance.now() - creating) / 1000;

    const cpu0 = processCpu(server.pid!);
    const dovecotCpu0 = dovecotCpu(dovecot);
    const startedAt = Date.now();
    const started = performance.now();
    const idleListLatency = await sequentialLatency(() => api.json('GET', '/v1/accounts'), 20);
    // A scrape resets serve's event-loop histogram: what the later ones read is the timed part's.
    await api.text('/metrics');
    const loopSamples: Array<{ p99: number; max: number }> = [];
    const probe = latencyProbe(() => api.json('GET', '/v1/accounts'), LATENCY_PROBE_MS);
    log.listResponseTimes.length = 0;
    const jobs: number[] = [];
    for (const id of ids) jobs.push((await api.json<{ id: number }>('POST', `/v1/accounts/${id}/sync`, undefined, 202)).id);
    const queueSeconds = (performance.now() - started) / 1000;

    let maxRunning = 0;
    let metrics: Metrics;
    for (;;) {
      metrics = parseMetrics(await api.text('/metrics'));
      loopSamples.push(metrics.loop);
      maxRunning = Math.max(maxRunning, metrics.running);
      const failed = metrics.syncs - (metrics.byStatus.ok ?? 0);
      if (failed > 0) {
        const errors = new Set<string>();
        for (const jobId of jobs) {
          const view = await api.json<{ status: string; error: string | null }>('GET', `/v1/jobs/${jobId}`);
          if (view.status === 'failed') errors.add(String(view.error));
        }
        throw new Error(`popwire serve: ${failed} sync(s) did not end ok: ${JSON.stringify(metrics.byStatus)}: ${[...errors].join('; ')}\n${log.errors.slice(0, 3).join('\n')}`);
      }
      if (metrics.syncs >= ids.length) break;
      if (performance.now() - started > SIDE_TIMEOUT_MS) throw new Error(`popwire serve: only ${metrics.syncs} of ${ids.length} syncs ended within ${SIDE_TIMEOUT_MS / 60_000} min`);
      // Seldom enough that the polling costs serve little; the time comes from the jobs' finishedAt.
      await sleep(250);
    }
    const polledSeconds = (performance.now() - started) / 1000;
    const { sendLateness: probeSendLateness, ...listLatency } = await probe.stop();
    const listServerTime = summarize(log.listResponseTimes);
    const cpu1 = processCpu(server.pid!);
    const dovecotCpu1 = dovecotCpu(dovecot);
    const peakRssMiB = peakRssKiB(server.pid!) / 1024;

    // Every job done; the clock stops at the last one's end.
    let finishedAt = 0;
    for (const [i, jobId] of jobs.entries()) {
      const job = await eventually(`job ${jobId} to be recorded`, async () => {
        const view = await api.json<{ status: string; error: string | null; finishedAt: string | null; runId: number | null }>('GET', `/v1/jobs/${jobId}`);
        return view.status === 'queued' || view.status === 'running' ? undefined : view;
      });
      if (job.status !== 'done' || job.error !== null || job.finishedAt === null) throw new Error(`popwire serve: the sync job of ${users[i]!.user} ended ${job.status}: ${job.error}`);
      // ISO 8601 with milliseconds, as every time the API gives.
      finishedAt = Math.max(finishedAt, Date.parse(job.finishedAt));
      const { runs } = await api.json<{ runs: Array<{ id: number; status: string; newMessages: number; bytes: number }> }>('GET', `/v1/accounts/${ids[i]}/runs?limit=1`);
      const run = runs[0];
      if (run?.id !== job.runId || run.status !== 'ok' || run.newMessages !== env.messages || run.bytes !== env.expected.bytes) {
        throw new Error(`popwire serve: the run of ${users[i]!.user} was ${JSON.stringify(run)}; expected ${env.messages} new messages, ${env.expected.bytes} octets`);
      }
      const listed = await api.json<{ messages: Array<{ size: number }>; next: string | null }>('GET', `/v1/accounts/${ids[i]}/messages?limit=200`);
      if (listed.messages.length !== env.messages || listed.next !== null) throw new Error(`popwire serve: ${users[i]!.user} lists ${listed.messages.length} messages; expected ${env.messages}`);
    }
    const seconds = (finishedAt - startedAt) / 1000;
    if (!(seconds > 0 && seconds <= polledSeconds + 1)) throw new Error(`popwire serve: the last job finished ${seconds} s after the first POST, but polling saw the end after ${polledSeconds} s`);
    if (log.errors.length > 0) throw new Error(`popwire serve logged errors:\n${log.errors.slice(0, 5).join('\n')}`);

    server.kill('SIGTERM');
    const [code] = (await once(server, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`popwire serve exited with ${code}: ${log.stderr}`);
    await verifyStore(store, env);
    return {
      createAccountsSeconds,
      result: {
        seconds,
        queueSeconds,
        cpuSeconds: cpu1.total - cpu0.total,
        mainThreadCpuSeconds: cpu1.main - cpu0.main,
        dovecotCpuSeconds: dovecotCpu1 - dovecotCpu0,
        syncSecondsSum: metrics.durationSum,
        peakRssMiB,
        maxRunning,
        listLatency,
        idleListLatency,
        listServerTime,
        probeSendLateness,
        loopDelay: summarizeLoop(loopSamples),
      },
    };
  } finally {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await once(server, 'exit');
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  }
}

/** `popwire sync` for every account in turn, into one store. */
async function sequentialRound(env: BenchEnv): Promise<SequentialRound> {
  const { dovecot, users } = env;
  const dir = await mkdtemp(join(env.work, 'sequential-'));
  const store = join(dir, 'data');
  try {
    const processSeconds: number[] = [];
    const syncSeconds: number[] = [];
    const cpu0 = childrenCpu();
    const dovecotCpu0 = dovecotCpu(dovecot);
    const started = performance.now();
    for (const { user, password } of users) {
      const begun = performance.now();
      const run = await runPopwire(['sync', `pop3://${user}@${dovecot.host}:${dovecot.port}`, '--store', store, '--ca', env.caFile, '--json'], { POPWIRE_PASSWORD: password });
      processSeconds.push((performance.now() - begun) / 1000);
      const report = JSON.parse(run.stdout) as { status: string; newMessages: number; bytes: number; seconds: number; error: unknown };
      if (report.status !== 'ok' || report.newMessages !== env.messages || report.bytes !== env.expected.bytes) {
        throw new Error(`popwire sync of ${user}: ${run.stdout.trim()}`);
      }
      syncSeconds.push(report.seconds);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu1 = childrenCpu();
    const dovecotCpu1 = dovecotCpu(dovecot);
    await verifyStore(store, env);
    return {
      result: {
        seconds,
        cpuSeconds: cpu1 - cpu0,
        dovecotCpuSeconds: dovecotCpu1 - dovecotCpu0,
        syncSecondsSum: syncSeconds.reduce((a, b) => a + b, 0),
        medianProcessSeconds: median(processSeconds),
        medianSyncSeconds: median(syncSeconds),
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  }
}

interface Expected {
  /** sha256 of each message as RETR delivers it, sorted. */
  digests: string[];
  bytes: number;
}

function expectedOf(mail: Buffer[]): Expected {
  const delivered = mail.map(expectedRetrBytes);
  return {
    digests: delivered.map((bytes) => createHash('sha256').update(bytes).digest('hex')).sort(),
    bytes: delivered.reduce((n, b) => n + b.length, 0),
  };
}

/** `popwire messages --json` on the store: every account holds every message, byte for byte (by sha256). */
async function verifyStore(store: string, env: BenchEnv): Promise<void> {
  const total = env.users.length * env.messages;
  const listed = JSON.parse((await runPopwire(['messages', '--store', store, '--limit', String(total + 1), '--json'])).stdout) as Array<{ account: string; sha256: string; size: number }>;
  if (listed.length !== total) throw new Error(`the store ${store} holds ${listed.length} messages; expected ${total}`);
  const byAccount = new Map<string, string[]>();
  for (const m of listed) byAccount.set(m.account, [...(byAccount.get(m.account) ?? []), m.sha256]);
  const want = env.expected.digests.join(',');
  for (const { user } of env.users) {
    const key = `${user}@${env.dovecot.host}:${env.dovecot.port}`;
    const got = (byAccount.get(key) ?? []).sort().join(',');
    if (got !== want) throw new Error(`the store ${store}: the messages of ${key} are not those of its mailbox (${byAccount.get(key)?.length ?? 0} stored)`);
  }
}

/** Fills every mailbox anew, then opens each once so that Dovecot builds its index outside the timed part. */
async function fillMailboxes(dovecot: Dovecot, users: string[], mail: Buffer[]): Promise<number> {
  const started = performance.now();
  await inParallel(users, 4, (user) => dovecot.setMailbox(user, mail));
  await inParallel(users, 4, async (user) => {
    const client = await Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.port,
      tls: 'none',
      allowPlaintextAuth: true,
      user,
      password: dovecot.users[user]!.password,
      timeout: 60_000,
    });
    const listed = await client.uidl();
    await client.quit();
    if (listed.length !== mail.length) throw new Error(`Dovecot lists ${listed.length} messages for ${user}; expected ${mail.length}`);
  });
  return (performance.now() - started) / 1000;
}

async function inParallel<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/** The environment for popwire's processes: ours without any POPWIRE_* setting, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POPWIRE_')));
  return { ...env, ...extra };
}

async function runPopwire(args: string[], extraEnv: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  const out = { stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() };
  if (code !== 0) throw new Error(`popwire ${args.join(' ')} exited with ${code}: ${out.stderr}${out.stdout}`);
  return out;
}

interface LogWatch {
  stderr: string;
  /** Log lines at level error or fatal. */
  errors: string[];
  /** Fastify's own responseTime (ms: onRequest to the reply's end) of each `GET /v1/accounts`, from serve's log. */
  listResponseTimes: number[];
}

/** Reads serve's log (pino JSON lines on stdout) as it comes, keeping the error lines; and its stderr. */
function logWatcher(server: Server): LogWatch {
  const watch: LogWatch = { stderr: '', errors: [], listResponseTimes: [] };
  const listRequests = new Set<string>();
  let partial = '';
  server.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (/"level":(50|60)\b/.test(line)) watch.errors.push(line);
      const reqId = /"reqId":"([^"]+)"/.exec(line)?.[1];
      if (reqId === undefined) continue;
      if (line.includes('"url":"/v1/accounts"') && line.includes('"method":"GET"')) listRequests.add(reqId);
      const took = /"responseTime":([\d.]+)/.exec(line)?.[1];
      if (took !== undefined && listRequests.delete(reqId)) watch.listResponseTimes.push(Number(took));
    }
  });
  server.stderr.on('data', (chunk: Buffer) => (watch.stderr += chunk.toString()));
  return watch;
}

async function listening(server: Server, log: LogWatch): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const match = /listening on (http:\/\/\S+)/.exec(log.stderr);
    if (match) return match[1]!;
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`popwire serve did not start: ${log.stderr}`);
    await Promise.race([once(server.stderr, 'data'), once(server, 'exit'), sleep(1000)]);
  }
}

function apiClient(base: string, token: string) {
  const request = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return {
    async json<T>(method: string, path: string, body?: unknown, status = 200): Promise<T> {
      const response = await request(method, path, body);
      const text = await response.text();
      if (response.status !== status) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return JSON.parse(text) as T;
    },
    async text(path: string): Promise<string> {
      const response = await request('GET', path);
      const text = await response.text();
      if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${text}`);
      return text;
    },
  };
}

interface Metrics {
  /** popwire_syncs_total over every status. */
  syncs: number;
  byStatus: Record<string, number>;
  running: number;
  durationSum: number;
  /** Event-loop delay since the scrape before (ms). */
  loop: { p99: number; max: number };
}

function parseMetrics(text: string): Metrics {
  const byStatus: Record<string, number> = {};
  for (const match of text.matchAll(/^popwire_syncs_total\{status="(\w+)"\} (\d+)$/gm)) byStatus[match[1]!] = Number(match[2]);
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    syncs: Object.values(byStatus).reduce((a, b) => a + b, 0),
    byStatus,
    running: value('popwire_syncs_running'),
    durationSum: value('popwire_sync_duration_seconds_sum'),
    loop: { p99: value('popwire_nodejs_eventloop_lag_p99_seconds') * 1000, max: value('popwire_nodejs_eventloop_lag_max_seconds') * 1000 },
  };
}

async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Fields of /proc/PID/stat after the command name: index 0 is field 3 (state). */
function statFields(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

const ticks = (fields: string[], ...indexes: number[]) => indexes.reduce((n, i) => n + Number(fields[i]), 0) / CLOCK_TICKS;

/** CPU seconds of a process (all threads) and of its main thread. */
function processCpu(pid: number): { total: number; main: number } {
  return { total: ticks(statFields(`/proc/${pid}/stat`), 11, 12), main: ticks(statFields(`/proc/${pid}/task/${pid}/stat`), 11, 12) };
}

/** CPU seconds of this process's children that have exited (the `popwire sync` processes). */
function childrenCpu(): number {
  return ticks(statFields('/proc/self/stat'), 13, 14);
}

/**
 * CPU seconds of Dovecot so far: its master, the master's children that have exited (each pop3
 * process serves one session) and those still running (login, auth, ...).
 */
function dovecotCpu(dovecot: Dovecot): number {
  const master = Number(readFileSync(join(dovecot.dir, 'run', 'master.pid'), 'utf8').trim());
  let total = ticks(statFields(`/proc/${master}/stat`), 11, 12, 13, 14);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = statFields(`/proc/${entry}/stat`);
      if (Number(fields[1]) === master) total += ticks(fields, 11, 12, 13, 14);
    } catch {
      // Gone between the listing and the read.
    }
  }
  return total;
}

function peakRssKiB(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : 0;
}

/** The round with the median time (the upper one of an even count). */
function middle<T extends { result: { seconds: number } }>(rounds: T[]): T {
  const sorted = [...rounds].sort((a, b) => a.result.seconds - b.result.seconds);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * How often the probe asks for `GET /v1/accounts` while serve syncs (issue 13: p99 of at most
 * 50 ms, asked every 100 ms). BENCH_SERVICE_PROBE_MS=0 turns it off, to see what it costs the syncs.
 */
const LATENCY_PROBE_MS = Number(process.env.BENCH_SERVICE_PROBE_MS ?? 100);

/**
 * Sends `request` every `everyMs`, whether or not the last one was answered, and times each from
 * when it was due to when its answer was read: a server that stalls for a second shows ten slow
 * samples, not one (no coordinated omission). `stop` waits for the ones in flight.
 *
 * Each request is due at start + n x everyMs, and the timer is set for that instant each time.
 * (Until issue 13's second pass this was a setInterval, whose ticks Node schedules from when the
 * last one ran: each late tick moved every later one, and the samples grew with the bench
 * process's own accumulated lateness, 0.3 to 0.5 s by the end of a run, which showed as serve's.)
 * `sendLateness` is how late the bench itself sent (its own loop and CPU, not serve's).
 */
function latencyProbe(request: () => Promise<unknown>, everyMs: number): { stop(): Promise<LatencySummary & { sendLateness: LatencySummary }> } {
  const latencies: number[] = [];
  const lateness: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  const start = performance.now();
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    const due = start + sent * everyMs;
    sent += 1;
    lateness.push(performance.now() - due);
    const done = request().then(
      () => void latencies.push(performance.now() - due),
      (error: unknown) => void (failure ??= error),
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
    timer = setTimeout(tick, Math.max(0, start + sent * everyMs - performance.now()));
  };
  if (everyMs <= 0) return { stop: async () => ({ ...summarize([]), sendLateness: summarize([]) }) };
  tick();
  return {
    async stop() {
      clearTimeout(timer);
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      return { ...summarize(latencies), sendLateness: summarize(lateness) };
    },
  };
}

/** `request` `count` times, one after another: what it costs when nothing else runs (ms). */
async function sequentialLatency(request: () => Promise<unknown>, count: number): Promise<LatencySummary> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const begun = performance.now();
    await request();
    latencies.push(performance.now() - begun);
  }
  return summarize(latencies);
}

function summarize(latencies: number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  return { samples: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}

function summarizeLoop(samples: Array<{ p99: number; max: number }>): LoopDelay {
  const p99s = samples.map((s) => s.p99);
  return { scrapes: samples.length, p99Median: median(p99s), p99Max: Math.max(0, ...p99s), max: Math.max(0, ...samples.map((s) => s.max)) };
}

/** BENCH_SERVICE_WORKERS=N: serve's sync.workers (syncs in N worker threads); unset: the default. */
const SYNC_WORKERS = process.env.BENCH_SERVICE_WORKERS === undefined || process.env.BENCH_SERVICE_WORKERS === '' ? undefined : Number(process.env.BENCH_SERVICE_WORKERS);

/** BENCH_SERVICE_WORKERS_ROW=N (default 2): one more serve row, at the default concurrency, with sync.workers N; 0: none. */
const WORKERS_ROW = Number(process.env.BENCH_SERVICE_WORKERS_ROW ?? 2);

/** BENCH_SERVICE_SEQUENTIAL=0 skips the sequential side (iterating on serve). */
const SEQUENTIAL = process.env.BENCH_SERVICE_SEQUENTIAL !== '0';

function skippedSequential(): Omit<SequentialResult, 'rounds'> {
  return { seconds: Number.NaN, cpuSeconds: Number.NaN, dovecotCpuSeconds: Number.NaN, syncSecondsSum: Number.NaN, medianProcessSeconds: Number.NaN, medianSyncSeconds: Number.NaN };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const scale = Number(process.env.BENCH_SCALE ?? 1);
  const accounts = Math.max(2, Math.round(200 * scale));
  const concurrencies = (process.env.BENCH_SERVICE_CONCURRENCY ?? '8,16').split(',').filter((s) => s.trim() !== '').map(Number);
  const profileDir = process.env.BENCH_SERVICE_PROFILE || undefined;
  const result = await benchService({ accounts, messages: 50, runs: Number(process.env.BENCH_RUNS ?? 1), concurrencies, profileDir });
  console.log(`popwire serve benchmark: Node ${result.node}, ${result.runs} round(s), median shown; Dovecot on loopback.`);
  printServiceResult(result);
  console.log(`\n${JSON.stringify(result)}`);
}
