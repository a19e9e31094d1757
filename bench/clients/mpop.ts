/**
 * mpop (Debian's package), a C client that pipelines, delivering into an mbox (the default) or a
 * Maildir under a temp folder, keeping the messages or (`fetch.delete`) deleting them. With a
 * `fetch.caFile` it takes STLS and trusts that CA, like `popwire fetch --ca`; without, clear text.
 * Timed as a whole process (its login is inside the time; a few round trips).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJob } from './common.ts';

const job = readJob();
const destination = job.fetch?.destination ?? 'mbox';
const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-mpop-'));
const target = join(dir, destination);
// mpop delivers into an existing Maildir only.
if (destination === 'maildir') for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(target, sub), { recursive: true });
const tls = job.fetch?.caFile !== undefined ? ['--tls=on', '--tls-starttls=on', `--tls-trust-file=${job.fetch.caFile}`] : ['--tls=off'];
const args = [
  `--host=${job.host}`,
  `--port=${job.port}`,
  ...tls,
  '--auth=user',
  `--user=${job.user}`,
  `--passwordeval=printf %s ${job.password}`,
  job.fetch?.delete === true ? '--keep=off' : '--keep=on',
  '--only-new=off',
  '--pipelining=on',
  '--received-header=off',
  `--uidls-file=${join(dir, 'uidls')}`,
  `--delivery=${destination},${target}`,
  '--quiet',
];
const started = process.hrtime.bigint();
const child = spawn('mpop', args, { stdio: ['ignore', 'ignore', 'inherit'] });
const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
if (code !== 0) throw new Error(`mpop exited with ${code}`);
let bytes = 0;
if (destination === 'mbox') bytes = (await stat(target)).size;
else for (const name of await readdir(join(target, 'new'))) bytes += (await stat(join(target, 'new', name))).size;
await rm(dir, { recursive: true, force: true });
// mpop's own peak RSS is not visible from here; report it as unknown (0).
process.stdout.write(`${JSON.stringify({ messages: job.count, bytes, seconds, peakRssMiB: 0, startRssMiB: 0 })}\n`);
