/**
 * One sync run of one account, with policy delete, as a child process for crash.test.ts to kill
 * with SIGKILL. Usage: node crash-child.mjs STORE_DIR PORT PASSWORD
 *
 * Plain JavaScript on the built service (dist/), not TypeScript under tsx: tsx costs about a
 * second of CPU per start, and this runs some forty times per test (crash-safety.ts checks
 * that dist/ is up to date before starting any).
 *
 * It opens the store, says `ready`, and waits for `go ACCOUNT_ID` on stdin, so that its start-up
 * is not part of the run the parent times and kills. Then it prints `phase NAME` at each phase
 * of the run, and at the end the report as `done JSON`. Large messages take the chunked path
 * from 256 KiB instead of 8 MiB, so that kills land in it without the test moving tens of
 * megabytes.
 */
import { createInterface } from 'node:readline';
import { Pop3Client } from 'popwire';
import { Store } from '../../dist/store/store.js';
import { syncAccount } from '../../dist/sync/index.js';

const [dir, port, password] = process.argv.slice(2);
if (dir === undefined || port === undefined || password === undefined) throw new Error('usage: crash-child.mjs STORE_DIR PORT PASSWORD');

const store = await Store.open({ kind: 'sqlite', dir });
process.stdout.write('ready\n');
const go = await createInterface({ input: process.stdin })[Symbol.asyncIterator]().next();
const accountId = /^go (\d+)$/.exec(go.done === true ? '' : go.value)?.[1];
if (accountId === undefined) throw new Error('expected "go ACCOUNT_ID" on stdin');

let phase = '';
const report = await syncAccount({
  store,
  accountId: Number(accountId),
  policy: { retention: 'delete', oversize: 'skip' },
  writer: { largeBytes: 256 * 1024 },
  connect: () => Pop3Client.connect({ host: '127.0.0.1', port: Number(port), tls: 'none', user: 'alice', password, allowPlaintextAuth: true }),
  onProgress: (progress) => {
    if (progress.phase === phase) return;
    phase = progress.phase;
    process.stdout.write(`phase ${phase}\n`);
  },
});
await store.close();
const { status, newMessages, alreadyHad, deleted, error } = report;
process.stdout.write(`done ${JSON.stringify({ status, newMessages, alreadyHad, deleted, error: error === undefined ? undefined : String(error) })}\n`);
process.exitCode = status === 'ok' ? 0 : 1;
