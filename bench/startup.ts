/**
 * Scenario (j) (issue 13): what starting the `popwire` command costs, as a user runs it. Each
 * command is a fresh process, timed from spawn to exit, process start-up included:
 *
 * - `node -e 0`: the floor, Node starting and stopping (the unit of the ratios);
 * - `popwire --version`: the command line loaded, no work;
 * - `popwire capa URL --ca FILE`: one POP3 session on loopback Dovecot (greeting, CAPA, STLS,
 *   the TLS handshake, CAPA again, QUIT). Target: at most 2x `node -e 0`;
 * - `popwire sync URL --store DIR --ca FILE` with nothing new on the 10,000-message mailbox: the
 *   store opened, login, UIDL of 10,000, QUIT, the run's bookkeeping. Target: at most 0.4 s.
 *
 * Each popwire row twice: the bundle the package ships (bin/popwire.js, built by
 * scripts/build.mjs), and the same code as tsc compiled it, loaded module by module
 * (packages/service/dist/cli/main.js through a two-line launcher like the bin), to show what the
 * bundle itself buys. Rounds interleave every row, so that the machine's drift touches each alike;
 * the median of each is reported, with every run. Where NODE_EXTRA_CA_CERTS is set (it is on the
 * machines these ran on; Node then parses that file at every start), `node -e 0` and the sync
 * are also timed without it. CPU is the child's user+system time, read from
 * this process's children times (/proc/self/stat, in clock ticks of 10 ms): less disturbed by a
 * busy machine than wall time, and coarse.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dovecot } from '../support/dovecot.ts';

const BIN = fileURLToPath(new URL('../packages/service/bin/popwire.js', import.meta.url));
const TSC_MAIN = fileURLToPath(new URL('../packages/service/dist/cli/main.js', import.meta.url));
/** Linux's USER_HZ: /proc reports CPU times in these ticks. */
const TICKS_PER_SECOND = 100;

export interface StartupOptions {
  readonly dovecot: Dovecot;
  /** A user whose mailbox holds `count` messages (the 10,000 of scenario a). */
  readonly user: string;
  readonly count: number;
  readonly runs: number;
}

interface Row {
  readonly label: string;
  readonly argv: readonly string[];
  /** The child's environment, when not the scenario's. */
  readonly env?: NodeJS.ProcessEnv;
}

interface Timing {
  readonly ms: number;
  readonly cpuMs: number;
}

/** This process's children's CPU time (utime + stime of the waited-for ones), in ms. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // The fields after the command name (which may hold spaces), from field 3 on: cutime and cstime are fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS_PER_SECOND;
}

function time(row: Row, env: NodeJS.ProcessEnv): Timing {
  const cpu = childrenCpuMs();
  const started = performance.now();
  const result = spawnSync(process.execPath, row.argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`${row.label} exited with ${result.status ?? result.signal}: ${result.stderr.toString()}`);
  return { ms, cpuMs: childrenCpuMs() - cpu };
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

export async function startupScenario({ dovecot, user, count, runs }: StartupOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-startup-'));
  try {
    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, dovecot.ca);
    const launcher = join(dir, 'tsc-main.mjs');
    await writeFile(launcher, `import { main } from ${JSON.stringify(TSC_MAIN)};\nprocess.exitCode = await main(process.argv);\n`);
    const store = join(dir, 'store');
    const env = { ...process.env, POPWIRE_PASSWORD: dovecot.users[user]!.password };
    const capa = ['capa', `pop3://127.0.0.1:${dovecot.port}`, '--ca', caFile];
    const sync = ['sync', `pop3://${user}@127.0.0.1:${dovecot.port}`, '--store', store, '--ca', caFile];

    // The first sync fills the store; every timed one after it finds nothing new.
    time({ label: 'first sync', argv: [BIN, ...sync] }, env);

    const rows: Row[] = [
      { label: '`node -e 0`', argv: ['-e', '0'] },
      { label: '`popwire --version` (bundle)', argv: [BIN, '--version'] },
      { label: '`popwire --version` (tsc output)', argv: [launcher, '--version'] },
      { label: '`popwire capa` (bundle)', argv: [BIN, ...capa] },
      { label: '`popwire capa` (tsc output)', argv: [launcher, ...capa] },
      { label: `\`popwire sync\`, nothing new in ${count} (bundle)`, argv: [BIN, ...sync] },
      { label: `\`popwire sync\`, nothing new in ${count} (tsc output)`, argv: [launcher, ...sync] },
    ];
    // NODE_EXTRA_CA_CERTS (set on the machines these benchmarks ran on, not by popwire) makes
    // every Node process parse that file's certificates as it starts: 50 to 100 ms, `node -e 0`
    // included. Where it is set, the floor and the sync are timed without it too.
    const { NODE_EXTRA_CA_CERTS: extraCerts, ...bareEnv } = env as NodeJS.ProcessEnv;
    const bare = extraCerts === undefined ? undefined : bareEnv;
    if (bare !== undefined) {
      rows.push(
        { label: '`node -e 0`, without NODE_EXTRA_CA_CERTS', argv: ['-e', '0'], env: bare },
        { label: `\`popwire sync\`, nothing new in ${count} (bundle), without NODE_EXTRA_CA_CERTS`, argv: [BIN, ...sync], env: bare },
      );
    }
    const timings = rows.map((): Timing[] => []);
    for (let round = 0; round < runs; round++) rows.forEach((row, i) => timings[i]!.push(time(row, row.env ?? env)));

    const floor = median(timings[0]!.map((t) => t.ms));
    console.log(`\n### (j) start-up: a fresh process per command, spawn to exit, median of ${runs}; Dovecot on loopback, STLS\n`);
    console.log('| command | wall ms | ÷ `node -e 0` | CPU ms | every run, wall ms |');
    console.log('|---|---:|---:|---:|---|');
    rows.forEach((row, i) => {
      const runsOf = timings[i]!;
      const ms = median(runsOf.map((t) => t.ms));
      console.log(`| ${row.label} | ${ms.toFixed(0)} | ${(ms / floor).toFixed(2)} | ${median(runsOf.map((t) => t.cpuMs)).toFixed(0)} | ${runsOf.map((t) => t.ms.toFixed(0)).join(', ')} |`);
    });
    console.log('\nTargets (issue 13): `popwire capa` at most 2x `node -e 0`; `popwire sync` with nothing new at most 400 ms.');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
