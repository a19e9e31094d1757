/**
 * `popwire fetch --mbox` as a user runs it (the built command, in this process so that its peak
 * RSS is measured): every message into an mbox, locked and fsynced after each message. Login is
 * inside the time here (a few round trips), unlike the library clients.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../packages/service/dist/cli/main.js';
import { measure, readJob } from './common.ts';

const job = readJob();
const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-fetch-'));
const mbox = join(dir, 'mbox');
process.env.POPWIRE_PASSWORD = job.password;
const url = `pop3://${job.user}@${job.host}:${job.port}`;
await measure(async () => {
  // The command always takes STLS when offered (no clear-text option by design), so this client
  // pays for TLS where the others run plain: its ratio is a lower bound.
  const code = await main(['node', 'popwire', 'fetch', '--insecure', '--timeout', '120000', '--messages', `1-${job.count}`, '--mbox', mbox, url]);
  if (code !== 0) throw new Error(`popwire fetch exited with ${code}`);
  return { messages: job.count, bytes: (await stat(mbox)).size };
});
await rm(dir, { recursive: true, force: true });
