/**
 * mpop (Debian's package), a C client that pipelines, delivering into an mbox under a temp folder.
 * Timed as a whole process (its login is inside the time; a few round trips).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJob } from './common.ts';

const job = readJob();
const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-mpop-'));
const mbox = join(dir, 'mbox');
const args = [
  `--host=${job.host}`,
  `--port=${job.port}`,
  '--tls=off',
  '--auth=user',
  `--user=${job.user}`,
  `--passwordeval=printf %s ${job.password}`,
  '--keep=on',
  '--only-new=off',
  '--pipelining=on',
  '--received-header=off',
  `--uidls-file=${join(dir, 'uidls')}`,
  `--delivery=mbox,${mbox}`,
  '--quiet',
];
const started = process.hrtime.bigint();
const child = spawn('mpop', args, { stdio: ['ignore', 'ignore', 'inherit'] });
const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
if (code !== 0) throw new Error(`mpop exited with ${code}`);
const bytes = (await stat(mbox)).size;
await rm(dir, { recursive: true, force: true });
// mpop's own peak RSS is not visible from here; report it as unknown (0).
process.stdout.write(`${JSON.stringify({ messages: job.count, bytes, seconds, peakRssMiB: 0, startRssMiB: 0 })}\n`);
