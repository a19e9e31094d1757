/**
 * `npm run dev:servers [-- --postgres]`: the private servers the tests use, started for a person
 * to try popwire by hand. A Dovecot POP3 server on two loopback ports (plain with STLS, and
 * implicit TLS) with three users and a few messages in alice's mailbox, and with `--postgres` a
 * throw-away PostgreSQL 15 with an empty `popwire` database. It prints where they listen, the
 * users and passwords, and popwire commands ready to paste, then waits.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops both servers by their PIDs, waits for them to exit and
 * removes their temp folders: nothing is left running or on disk. A second signal exits at
 * once; the servers still go, since they run under a parent-death signal (support/daemon.ts),
 * but their folders stay behind in the system's temp folder.
 *
 * Needs root, as the tests do (Dovecot's master switches users; PostgreSQL runs as `postgres`).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { descendantsOf } from '../support/daemon.ts';
import { startDovecot, type Dovecot } from '../support/dovecot.ts';
import { smallFixtures } from '../support/fixtures.ts';
import { startPostgres, type Postgres } from '../support/postgres.ts';

const USAGE = `usage: npm run dev:servers [-- --postgres]
  Starts a private Dovecot (POP3 on loopback) and, with --postgres, a private PostgreSQL 15;
  prints their URLs, users and passwords; Ctrl-C stops them and removes their files.`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = args.filter((a) => a !== '--postgres');
if (unknown.length > 0) {
  console.error(`dev-servers: unknown argument ${unknown[0]}\n${USAGE}`);
  process.exit(2);
}
const withPostgres = args.includes('--postgres');

const bin = fileURLToPath(new URL('../packages/service/bin/popwire.js', import.meta.url));
// The servers' own handles are unref'd (a forgotten stop() must not keep a test alive): this
// timer is what keeps the process waiting for Ctrl-C.
const keepAlive = setInterval(() => {}, 1 << 30);

let dovecot: Dovecot | undefined;
let postgres: Postgres | undefined;
let dir: string | undefined;
let stopping: Promise<void> | undefined;
/** The servers' main PIDs: Dovecot's master, the postmaster. */
const serverPids: number[] = [];

/** Stops what was started, each by its PID (support/*.ts stop()), and removes the files. */
async function stopAll(): Promise<void> {
  clearInterval(keepAlive);
  // Dovecot's master exits before its log process does: wait for every process below each
  // server, so that "Stopped" is true when it is printed. (Not below this process: tsx's esbuild
  // service lives there until we exit.)
  const below = serverPids.flatMap((pid) => [pid, ...descendantsOf(pid)]);
  const results = await Promise.allSettled([dovecot?.stop(), postgres?.stop()]);
  await gone(below);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  for (const result of results) if (result.status === 'rejected') console.error(`dev-servers: ${String(result.reason)}`);
}

/** Resolves once start-up has finished, or failed: a stop waits for it, so nothing started is missed. */
let startup: Promise<unknown> = Promise.resolve();

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping !== undefined) {
      console.error('dev-servers: stopping at once; the servers go with this process, their temp folders stay');
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    console.log(`\n${signal}: stopping the servers...`);
    stopping = startup.then(stopAll, stopAll).then(() => {
      console.log('Stopped; their files are removed.');
      process.exit(0);
    });
  });
}

startup = start();
await startup.catch(async (error: unknown) => {
  console.error(`dev-servers: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll();
  process.exit(1);
});

async function start(): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), 'popwire-dev-'));
  const [startedDovecot, startedPostgres] = await Promise.allSettled([startDovecot(), withPostgres ? startPostgres() : undefined]);
  if (startedDovecot.status === 'fulfilled') dovecot = startedDovecot.value;
  if (startedPostgres.status === 'fulfilled') postgres = startedPostgres.value;
  if (startedDovecot.status === 'rejected') throw startedDovecot.reason;
  if (startedPostgres.status === 'rejected') throw startedPostgres.reason;
  const messages = smallFixtures().map((f) => f.bytes);
  await dovecot!.setMailbox('alice', messages);
  const ca = join(dir, 'ca.pem');
  await writeFile(ca, dovecot!.ca);
  const databaseUrl = postgres === undefined ? undefined : await postgres.createDatabase('popwire');
  const store = join(dir, 'popwire-data');
  const ids = await pids(dovecot!, postgres);
  if (stopping === undefined) print({ dovecot: dovecot!, postgres, databaseUrl, ca, store, messages: messages.length, pids: ids });
}

interface Started {
  readonly dovecot: Dovecot;
  readonly postgres: Postgres | undefined;
  readonly databaseUrl: string | undefined;
  readonly ca: string;
  readonly store: string;
  readonly messages: number;
  readonly pids: string;
}

function print({ dovecot, postgres, databaseUrl, ca, store, messages, pids }: Started): void {
  const host = dovecot.host;
  const pop3s = `pop3s://alice@${host}:${dovecot.tlsPort}`;
  const alice = dovecot.users.alice!;
  const lines = [
    'Dovecot (POP3):',
    `  pop3://${host}:${dovecot.port}     plain TCP, upgraded with STLS`,
    `  pop3s://${host}:${dovecot.tlsPort}    TLS from the first byte`,
    `  CA certificate: ${ca}   (its certificate is for localhost and 127.0.0.1; pass it with --ca, or tls.caFile / POPWIRE_TLS_CA_FILE for serve)`,
    ...Object.values(dovecot.users).map((u) => `  user ${u.user}, password ${u.password}${u.user === 'alice' ? `   (${messages} messages)` : ''}`),
    `  files and log: ${dovecot.dir}`,
  ];
  if (postgres !== undefined && databaseUrl !== undefined) {
    lines.push(
      'PostgreSQL 15:',
      `  ${databaseUrl}   (user postgres, no password: trust on loopback; an empty database "popwire")`,
      `  files and log: ${postgres.dir}`,
    );
  }
  lines.push(
    `PIDs: ${pids}`,
    '',
    'Try it (paste into a shell; `popwire` is the bin of this checkout, built by npm run dev:servers):',
    `  popwire() { node ${bin} "$@"; }`,
    `  export POPWIRE_PASSWORD=${alice.password}`,
    `  popwire stat --ca ${ca} ${pop3s}`,
    `  popwire list --ca ${ca} pop3://alice@${host}:${dovecot.port}`,
    `  popwire sync --ca ${ca} --store ${store} ${pop3s}`,
    `  popwire messages --store ${store}`,
  );
  if (databaseUrl !== undefined) lines.push(`  popwire sync --ca ${ca} --store ${databaseUrl} ${pop3s}`);
  lines.push(
    '',
    'The service on the SQLite store above (a token first; it makes a secret key next to the store;',
    'these servers are on loopback, which serve refuses for accounts unless POPWIRE_NETWORK_ALLOW lists it):',
    `  popwire token create --store ${store}`,
    `  POPWIRE_STORE=${store} POPWIRE_TLS_CA_FILE=${ca} POPWIRE_NETWORK_ALLOW=127.0.0.1 popwire serve`,
  );
  if (databaseUrl !== undefined) {
    lines.push(
      'or on PostgreSQL (a PostgreSQL store needs a secret key):',
      `  export POPWIRE_SECRET_KEY=$(popwire keys generate)`,
      `  POPWIRE_STORE=${databaseUrl} popwire token create`,
      `  POPWIRE_STORE=${databaseUrl} POPWIRE_TLS_CA_FILE=${ca} POPWIRE_NETWORK_ALLOW=127.0.0.1 popwire serve`,
    );
  }
  lines.push('', 'Ready. Ctrl-C stops the servers and removes their files.');
  console.log(lines.join('\n'));
}

/**
 * The servers' PIDs, from their pid files: for a person who wants to look at them, for the wait
 * at stop, and for the test that checks they go.
 */
async function pids(dovecot: Dovecot, postgres: Postgres | undefined): Promise<string> {
  const first = async (file: string) => Number((await readFile(file, 'utf8')).split('\n')[0]!.trim());
  const dovecotPid = await first(join(dovecot.dir, 'run', 'master.pid'));
  serverPids.push(dovecotPid);
  const found = [`dovecot ${dovecotPid}`];
  if (postgres !== undefined) {
    const postgresPid = await first(join(postgres.dir, 'data', 'postmaster.pid'));
    serverPids.push(postgresPid);
    found.push(`postgres ${postgresPid}`);
  }
  return found.join(', ');
}

const GONE_WAIT_MS = 5_000;

/** Waits until none of `pids` runs; past GONE_WAIT_MS, SIGKILL to those left. */
async function gone(pids: readonly number[]): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let waited = 0; pids.some(alive); waited += 50) {
    if (waited >= GONE_WAIT_MS) for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    await delay(50);
  }
}
