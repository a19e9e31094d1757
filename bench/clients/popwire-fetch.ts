/**
 * `popwire fetch` as a user runs it (the built command, in this process so that its peak RSS is
 * measured): every message into an mbox (the default) or a Maildir, optionally with --delete.
 * Login is inside the time here (a few round trips), unlike the library clients.
 *
 * The command always takes STLS when offered (no clear-text option by design): with a `fetch.caFile`
 * it trusts Dovecot's certificate through --ca, as mpop does with the same file; without one
 * (scenarios a to c) it uses --insecure. Either way it pays for TLS where the raw baseline runs plain.
 *
 * It runs the bundle that ships (dist/bundle, as bin/popwire.js does), and loads the fetch
 * command's code before the clock starts (a `fetch --help`, its output dropped): `main()` imports
 * a command's chunk when it runs, and under the bench's tsx loader hooks that import alone took
 * 100 to 280 ms of the timed run (50 ms without the hooks), more than the whole raw retrieval
 * through the delaying proxy. Module loading is bench (j)'s subject, not this one's.
 *
 * With `job.phases`, the session is traced (--trace) and each traced line timestamped, so the
 * proxy part of (f) can set the same phases of popwire and of the raw baseline side by side
 * (see `phasesOf`). The trace costs a little CPU per line: those runs are not the timed ones.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measure, readJob, type FetchPhases } from './common.ts';

// The bundle has no type declarations of its own: main() is the one used here.
const { main } = (await import('../../packages/service/dist/bundle/popwire.js' as string)) as { main: (argv: string[]) => Promise<number> };

const job = readJob();
const destination = job.fetch?.destination ?? 'mbox';
const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-fetch-'));
const target = join(dir, destination);
process.env.POPWIRE_PASSWORD = job.password;
const url = `pop3://${job.user}@${job.host}:${job.port}`;
const trust = job.fetch?.caFile !== undefined ? ['--ca', job.fetch.caFile] : ['--insecure'];
const deleting = job.fetch?.delete === true ? ['--delete'] : [];
await quietly(() => main(['node', 'popwire', 'fetch', '--help']));
const traced: Array<readonly [number, string]> = [];
if (job.phases === true) {
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = String(chunk);
    if (!text.startsWith('C: ') && !text.startsWith('S: ')) return write(chunk, ...rest);
    traced.push([performance.now(), text.trimEnd()]);
    return true;
  }) as typeof process.stderr.write;
}
let started = 0;
let ended = 0;
await measure(async () => {
  const args = ['fetch', ...trust, '--timeout', '120000', '--messages', `1-${job.count}`, `--${destination}`, target, ...deleting, url];
  if (job.phases === true) args.splice(1, 0, '--trace');
  started = performance.now();
  const code = await main(['node', 'popwire', ...args]);
  ended = performance.now();
  if (code !== 0) throw new Error(`popwire fetch exited with ${code}`);
  return { messages: job.count, bytes: await sizeOf(target) };
}, job.phases === true ? () => ({ fetchPhases: phasesOf(traced, started, ended) }) : undefined);
await rm(dir, { recursive: true, force: true });

async function sizeOf(path: string): Promise<number> {
  if (destination === 'mbox') return (await stat(path)).size;
  const names = await readdir(join(path, 'new'));
  if (names.length !== job.count) throw new Error(`the Maildir holds ${names.length} messages, not ${job.count}`);
  let bytes = 0;
  for (const name of names) bytes += (await stat(join(path, 'new', name))).size;
  return bytes;
}

/** Runs `work` with stdout dropped (the help text of the warm-up). */
async function quietly(work: () => Promise<unknown>): Promise<void> {
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    await work();
  } finally {
    process.stdout.write = write;
  }
}

/**
 * Seconds from `main()`'s start to each phase of the session, read from the trace: the greeting,
 * the TLS handshake (from +OK to STLS to the next command written), the login, the listing, the
 * first RETR written, the end of the last body, and QUIT's reply.
 */
function phasesOf(lines: ReadonlyArray<readonly [number, string]>, started: number, ended: number): FetchPhases {
  const at = (index: number) => (index === -1 ? Number.NaN : ((lines[index] as readonly [number, string])[0] - started) / 1000);
  const find = (test: (line: string) => boolean, from = 0) => {
    for (let i = from; i < lines.length; i++) if (test((lines[i] as readonly [number, string])[1])) return i;
    return -1;
  };
  const stls = find((line) => line === 'C: STLS');
  const firstRetr = find((line) => line.startsWith('C: RETR '));
  const quit = find((line) => line === 'C: QUIT');
  let lastBody = -1;
  for (let i = quit === -1 ? lines.length - 1 : quit; i >= 0 && lastBody === -1; i--) if (/^S: \[\d+ octets, then \.\]$/.test((lines[i] as readonly [number, string])[1])) lastBody = i;
  return {
    greeting: at(find((line) => line.startsWith('S: '))),
    tlsStarted: at(stls === -1 ? -1 : stls + 1),
    tlsDone: at(stls === -1 ? -1 : stls + 2),
    loginSent: at(find((line) => line.startsWith('C: AUTH') || line.startsWith('C: USER') || line.startsWith('C: APOP'))),
    listingSent: at(find((line) => line === 'C: LIST' || line === 'C: STAT')),
    firstRetr: at(firstRetr),
    lastBody: at(lastBody),
    quitSent: at(quit),
    quitAnswered: at(quit === -1 ? -1 : find((line) => line.startsWith('S: '), quit)),
    end: (ended - started) / 1000,
  };
}
