/**
 * `popwire fetch` as a user runs it (the built command, in this process so that its peak RSS is
 * measured): every message into an mbox (the default) or a Maildir, optionally with --delete.
 * Login is inside the time here (a few round trips), unlike the library clients.
 *
 * The command always takes STLS when offered (no clear-text option by design): with a `fetch.caFile`
 * it trusts Dovecot's certificate through --ca, as mpop does with the same file; without one
 * (scenarios a to c) it uses --insecure. Either way it pays for TLS where the raw baseline runs plain.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../packages/service/dist/cli/main.js';
import { measure, readJob } from './common.ts';

const job = readJob();
const destination = job.fetch?.destination ?? 'mbox';
const dir = await mkdtemp(join(tmpdir(), 'popwire-bench-fetch-'));
const target = join(dir, destination);
process.env.POPWIRE_PASSWORD = job.password;
const url = `pop3://${job.user}@${job.host}:${job.port}`;
const trust = job.fetch?.caFile !== undefined ? ['--ca', job.fetch.caFile] : ['--insecure'];
const deleting = job.fetch?.delete === true ? ['--delete'] : [];
await measure(async () => {
  const args = ['fetch', ...trust, '--timeout', '120000', '--messages', `1-${job.count}`, `--${destination}`, target, ...deleting, url];
  const code = await main(['node', 'popwire', ...args]);
  if (code !== 0) throw new Error(`popwire fetch exited with ${code}`);
  return { messages: job.count, bytes: await sizeOf(target) };
});
await rm(dir, { recursive: true, force: true });

async function sizeOf(path: string): Promise<number> {
  if (destination === 'mbox') return (await stat(path)).size;
  const names = await readdir(join(path, 'new'));
  if (names.length !== job.count) throw new Error(`the Maildir holds ${names.length} messages, not ${job.count}`);
  let bytes = 0;
  for (const name of names) bytes += (await stat(join(path, 'new', name))).size;
  return bytes;
}
