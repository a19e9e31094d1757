/**
 * Scenario (g) (issue 13): a server that does not advertise PIPELINING. Debian's popa3d has no
 * CAPA at all; in lock-step it costs a delayed ACK per message (its reply leaves in three writes
 * with Nagle on, and the body waits for our ACK of the `+OK`, which our kernel holds 40 ms). Since
 * the probe (packages/client/src/commands/pipelining-probe.ts), popwire pipelines to it.
 *
 * popa3d serves 2,000 messages of about 4 KB from /var/mail/popwirebench (mbox), spawned per
 * connection by a Node server on 127.0.0.1 with the socket as its stdin and stdout (its inetd
 * mode). It authenticates system users, so the setup creates the system user `popwirebench` (no
 * home, no shell) if it is missing and sets its password each run; it needs root.
 *
 * popa3d is not installed as a package: Debian's popa3d and dovecot-pop3d both provide
 * pop3-server and conflict, so installing it would remove the Dovecot every test runs. Instead
 * `apt-get download` fetches the package once into a cache folder and `dpkg-deb -x` unpacks it
 * there; the binary needs only its system user `popa3d` and /var/lib/popa3d (its chroot), made
 * here if missing, and PAM's defaults (/etc/pam.d/other). Without apt or root the scenario says
 * so and is skipped. The users are left in place; the mbox is removed at the end.
 *
 * Rows, each its own process, median of BENCH_RUNS: the raw pipelined limit (bench/clients/raw.ts),
 * popwire's retrieveMany, `popwire fetch --mbox` (clear text: popa3d has no STLS), and retrieveMany
 * with pipelining turned off, which is what popwire did before the probe (lock-step, on its first
 * LOCKSTEP_MESSAGES messages: 44 ms each would take 90 s for all).
 *
 * Run as a script, this file is one of those processes: `no-pipelining.ts JOB` with a job of
 * bench/clients/common.ts plus `mode`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pop3Client } from '../packages/client/src/index.ts';
import { bulkMessages } from '../support/fixtures.ts';
import { measure, plainSession, range, readJob, type Job, type Result } from './clients/common.ts';

/** Where the unpacked package is kept between runs. */
const POPA3D_CACHE = join(tmpdir(), 'popwire-bench-popa3d');
const USER = 'popwirebench';
const PASSWORD = 'popwire-bench-g';
const MBOX = `/var/mail/${USER}`;
const LOCKSTEP_MESSAGES = 100;

type Mode = 'library' | 'lockstep' | 'fetch';

interface Row {
  readonly name: string;
  readonly script: string;
  readonly mode?: Mode;
  readonly maxMessages?: number;
}

const ROWS: Row[] = [
  { name: 'raw pipelined socket (limit)', script: fileURLToPath(new URL('./clients/raw.ts', import.meta.url)) },
  { name: 'popwire library (retrieveMany), probe then pipelined', script: fileURLToPath(import.meta.url), mode: 'library' },
  { name: '`popwire fetch --mbox --allow-plaintext`', script: fileURLToPath(import.meta.url), mode: 'fetch' },
  { name: 'popwire library, lock-step (pipelining: false; what it did before the probe)', script: fileURLToPath(import.meta.url), mode: 'lockstep', maxMessages: LOCKSTEP_MESSAGES },
];

export async function noPipeliningScenario(options: { count: number; runs: number }): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('\n(g) skipped: it needs root (system users, /var/mail)');
    return;
  }
  let popa3d: string;
  try {
    popa3d = unpackPopa3d();
  } catch (error) {
    console.log(`\n(g) skipped: could not fetch popa3d with apt-get download: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  ensureUser(USER, PASSWORD);
  ensureUser('popa3d');
  mkdirSync('/var/lib/popa3d', { recursive: true, mode: 0o755 });
  writeMbox(bulkMessages(options.count, 4096));
  const server = await startPopa3d(popa3d);
  try {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const job: Job = { host: '127.0.0.1', port: address.port, user: USER, password: PASSWORD, count: options.count };
    const results: Array<{ row: Row; result: Result; all: Result[] }> = [];
    for (const row of ROWS) {
      const all: Result[] = [];
      for (let i = 0; i < options.runs; i++) all.push(await runRow(row, { ...job, count: Math.min(job.count, row.maxMessages ?? Infinity) }));
      const sorted = [...all].sort((a, b) => a.seconds - b.seconds);
      results.push({ row, result: sorted[Math.floor(sorted.length / 2)] as Result, all });
    }
    const perMessage = (r: Result) => (1000 * r.seconds) / r.messages;
    const limit = perMessage(results[0]!.result);
    console.log(`\n### (g) popa3d (no CAPA, no PIPELINING advertised), ${options.count} messages of about 4 KB, loopback\n`);
    console.log('| client | messages | ms per message | speed ÷ raw limit | every run, ms per message |');
    console.log('|---|---:|---:|---:|---|');
    for (const { row, result, all } of results) {
      console.log(
        `| ${row.name} | ${result.messages} | ${perMessage(result).toFixed(3)} | ${(limit / perMessage(result)).toFixed(2)} | ${all.map((r) => perMessage(r).toFixed(3)).join(', ')} |`,
      );
    }
    console.log('\nThe library rows time the retrieval (login excluded; the probe is inside it); the fetch row times the whole command, login included.');
  } finally {
    server.close();
    rmSync(MBOX, { force: true });
  }
}

/** Debian's popa3d, unpacked (not installed) into POPA3D_CACHE once; returns the binary's path. */
function unpackPopa3d(): string {
  const binary = join(POPA3D_CACHE, 'root/usr/sbin/popa3d');
  if (existsSync(binary)) return binary;
  rmSync(POPA3D_CACHE, { recursive: true, force: true });
  mkdirSync(POPA3D_CACHE, { recursive: true });
  // apt's sandbox user cannot write into a root-owned temp folder; the download is unsandboxed then.
  execFileSync('apt-get', ['download', '-qq', 'popa3d'], { cwd: POPA3D_CACHE, stdio: ['ignore', 'ignore', 'pipe'] });
  const deb = readdirSync(POPA3D_CACHE).find((name) => name.endsWith('.deb'));
  if (deb === undefined) throw new Error('no .deb was downloaded');
  execFileSync('dpkg-deb', ['-x', join(POPA3D_CACHE, deb), join(POPA3D_CACHE, 'root')]);
  return binary;
}

/** A system user with no home and no shell, created once; with a password, it is set every run (popa3d logs in through PAM). */
function ensureUser(user: string, password?: string): void {
  try {
    execFileSync('id', ['-u', user], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user]);
  }
  if (password !== undefined) execFileSync('chpasswd', { input: `${user}:${password}\n` });
}

/** The messages as an mbox: a `From ` line before each, LF line ends (popa3d sends CRLF). */
function writeMbox(messages: Buffer[]): void {
  const text = messages.map((m) => `From alice@example.test Tue Nov 25 10:00:00 2025\n${m.toString('latin1').replace(/\r\n/g, '\n')}\n`).join('');
  writeFileSync(MBOX, text, 'latin1');
  const uid = Number(execFileSync('id', ['-u', USER]).toString());
  const gid = Number(execFileSync('id', ['-g', USER]).toString());
  chownSync(MBOX, uid, gid);
  chmodSync(MBOX, 0o600);
}

/** popa3d in inetd mode, one process per connection; the socket stays paused here so popa3d alone reads it. */
async function startPopa3d(popa3d: string): Promise<Server> {
  const server = createServer({ pauseOnConnect: true }, (socket) => {
    const child = spawn(popa3d, [], { stdio: [socket, socket, 'ignore'] });
    child.on('exit', () => socket.destroy());
    child.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return server;
}

async function runRow(row: Row, job: Job): Promise<Result> {
  const input = row.mode === undefined ? job : { ...job, mode: row.mode };
  const child = spawn(process.execPath, ['--import', 'tsx', row.script, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`${row.name} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) as string) as Result;
}

/** One row's process: the library with or without pipelining, or the built `popwire fetch`. */
async function child(job: Job & { mode: Mode }): Promise<void> {
  if (job.mode === 'fetch') {
    const { main } = (await import('../packages/service/dist/cli/main.js')) as { main: (argv: string[]) => Promise<number> };
    const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-g-'));
    const target = join(dir, 'mbox');
    process.env.POPWIRE_PASSWORD = job.password;
    try {
      await measure(async () => {
        const args = ['fetch', '--allow-plaintext', '--timeout', '120000', '--messages', `1-${job.count}`, '--mbox', target, `pop3://${job.user}@${job.host}:${job.port}`];
        const code = await main(['node', 'popwire', ...args]);
        if (code !== 0) throw new Error(`popwire fetch exited with ${code}`);
        return { messages: job.count, bytes: (await stat(target)).size };
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return;
  }
  const client = await Pop3Client.connect({ ...plainSession(job), pipelining: job.mode !== 'lockstep' });
  await measure(async () => {
    let messages = 0;
    let bytes = 0;
    for await (const { body } of client.retrieveMany(range(job.count))) {
      for await (const chunk of body) bytes += (chunk as Buffer).length;
      messages++;
    }
    if (job.mode === 'library' && !client.pipelining) throw new Error('the probe did not find popa3d pipelining');
    return { messages, bytes };
  });
  await client.quit();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child(readJob() as Job & { mode: Mode });
