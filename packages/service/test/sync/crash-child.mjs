/**
 * One sync run of one account, with policy delete, as a child process for crash.test.ts to kill
 * with SIGKILL. Usage: node crash-child.mjs STORE PORT PASSWORD, where STORE is a SQLite store's
 * folder or a PostgreSQL URL. On PostgreSQL its connections carry the application name
 * `popwire-crash-PID`, so that the test can see what a killed child left open on the server, and
 * the server ends one idle in a transaction after 1 s instead of the store's minute, so that the
 * test need not wait a minute each time a kill leaves a transaction open.
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

const [where, port, password] = process.argv.slice(2);
if (where === undefined || port === undefined || password === undefined) throw new Error('usage: crash-child.mjs STORE PORT PASSWORD');

const location = where.startsWith('postgres://')
  ? { kind: 'postgres', url: `${where}${where.includes('?') ? '&' : '?'}application_name=popwire-crash-${process.pid}&idle_in_transaction_session_timeout=1000` }
  : { kind: 'sqlite', dir: where };
const store = await Store.open(location);
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
