/**
 * A private, real PostgreSQL 15 server for tests and benchmarks (Debian's `postgresql` package).
 *
 * Each startPostgres() gets a fresh temp folder holding the data directory (`data/`, made by
 * initdb with `-U postgres --auth=trust -E UTF8 --locale=C`), the log (`postgres.log`) and the
 * unix socket, and listens only on 127.0.0.1 on a free port. Connect as `postgres` without a
 * password; createDatabase() gives each test its own database.
 *
 * As root, initdb runs as the `postgres` OS user (`runuser -u postgres --`) and the server is
 * started by `setpriv --reuid postgres ... --pdeathsig QUIT -- postgres -D ...` in the foreground:
 * not with `pg_ctl start`, which daemonises and would leave the server orphaned. setpriv changes
 * user before it sets the parent-death signal (the kernel clears that signal on a uid change), then
 * execs the postmaster in place (same PID), so the server shuts down, taking its backends with it,
 * even when the test process is killed outright. stop() sends SIGQUIT (immediate shutdown, like
 * `pg_ctl stop -m immediate`) to that PID, waits for the postmaster to exit (it waits for its
 * children first), then removes the temp folder. Not as root, everything runs as the current user.
 *
 * Throw-away data, but honest durability: fsync, synchronous_commit and full_page_writes keep
 * their defaults, since storage tests may rely on them. Only initdb's own final sync of the fresh
 * data directory is skipped (--no-sync), and shared_buffers is small.
 *
 * Measured on a 2-CPU Debian 12 container (Node 20, temp folder under /tmp): startPostgres() takes
 * 1.0 s when the machine is idle and 2-2.5 s while other tests load it; initdb is nearly all of it
 * (the server accepts connections about 0.1 s after launch). createDatabase() takes 0.15-0.5 s and
 * stop() 0.1-0.2 s. Both initdb and CREATE DATABASE create hundreds of files, and creating a file
 * under /tmp cost about 1 ms there (0.03 ms under /var/tmp or /work): with TMPDIR=/var/tmp,
 * startPostgres() took 1.0-1.5 s and createDatabase() 0.16-0.36 s in the same conditions.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, chown, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePorts, hasExited, isExecutable, isRoot, lookupAccount, requireRoot, spawnDaemon, terminate } from './daemon.ts';

export interface PostgresOptions {
  /**
   * Extra server settings, passed as `-c name=value` after the harness's own, so they override
   * them. Leave listen_addresses, port and unix_socket_directories alone: start-up relies on them.
   */
  settings?: Record<string, string | number | boolean>;
}

export interface Postgres {
  host: '127.0.0.1';
  port: number;
  /** `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser, no password, the default database. */
  url: string;
  /** The temp folder: `data/` (the data directory), `postgres.log`, and the unix socket. */
  dir: string;
  /**
   * Creates an empty database (from template1) and returns its URL. `name` must be a plain
   * lower-case identifier; by default a fresh random one.
   */
  createDatabase(name?: string): Promise<string>;
  /** Kills the server as a crash would (SIGQUIT, every connection dropped) and starts it again on the same data and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const BIN_DIR = '/usr/lib/postgresql/15/bin';
const INITDB = join(BIN_DIR, 'initdb');
const POSTGRES = join(BIN_DIR, 'postgres');
const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const OS_USER = 'postgres';
const START_ATTEMPTS = 5;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const INSTALL_SCRIPT = fileURLToPath(new URL('../scripts/install-system-deps.sh', import.meta.url));

/** The harness's server settings: fast to start and small, durability left at the defaults. */
const BASE_SETTINGS: Record<string, string | number | boolean> = {
  max_connections: 100,
  shared_buffers: '16MB',
  // Logs go to stderr, which is postgres.log; no collector process.
  logging_collector: 'off',
  log_line_prefix: '%m [%p] %q%u@%d ',
  // Same results on every machine, whatever its TZ.
  timezone: 'UTC',
  log_timezone: 'UTC',
  // Debian 12's postgresql-15 has no JIT provider installed; say so instead of looking for one.
  jit: 'off',
};

const execFileAsync = promisify(execFile);

let installing: Promise<void> | undefined;

/** Installs PostgreSQL 15 from Debian's packages (via scripts/install-system-deps.sh) if initdb is missing; once per process. */
export function ensurePostgresInstalled(): Promise<void> {
  installing ??= (async () => {
    if (await isExecutable(INITDB)) return;
    requireRoot('install PostgreSQL');
    await execFileAsync('bash', [INSTALL_SCRIPT], { maxBuffer: 64 * 1024 * 1024 });
    if (!(await isExecutable(INITDB))) throw new Error(`${INSTALL_SCRIPT} ran, but ${INITDB} is still missing`);
  })();
  // A failed attempt may be retried by a later call.
  installing.catch(() => { installing = undefined; });
  return installing;
}

export async function startPostgres(options: PostgresOptions = {}): Promise<Postgres> {
  await ensurePostgresInstalled();
  const dir = await mkdtemp(join(tmpdir(), 'popwire-postgres-'));
  try {
    return await startIn(dir, options);
  } catch (error) {
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    throw error;
  }
}

interface Layout {
  dir: string;
  data: string;
  log: string;
}


async function startIn(dir: string, options: PostgresOptions): Promise<Postgres> {
  const layout: Layout = { dir, data: join(dir, 'data'), log: join(dir, 'postgres.log') };
  // PostgreSQL refuses to run as root: as root, the folder (and so the data and socket) belongs to postgres.
  const account = isRoot() ? await lookupAccount(OS_USER) : undefined;
  await chmod(dir, 0o700);
  if (account !== undefined) await chown(dir, account.uid, account.gid);
  await initdb(layout);
  const { child, port } = await launch(layout, options);
  return makeHandle(layout, child, port, options);
}

async function initdb(layout: Layout): Promise<void> {
  const args = [INITDB, '-D', layout.data, '-U', SUPERUSER, '--auth=trust', '-E', 'UTF8', '--locale=C',
    '--no-sync', '--no-instructions'];
  const [command, ...rest] = isRoot() ? ['runuser', '-u', OS_USER, '--', ...args] : args;
  try {
    // cwd: a directory postgres can enter, or initdb warns that it cannot go back to ours.
    await execFileAsync(command!, rest, { cwd: layout.dir, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`initdb failed in ${layout.data}:\n${tail(`${stdout}${stderr}`)}`, { cause: error });
  }
}

async function launch(layout: Layout, options: PostgresOptions): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = (await freePorts(HOST, 1))[0]!;
    // Diagnostics of a failed attempt must not make the next one look failed.
    await rm(layout.log, { force: true });
    const child = await spawnPostgres(layout, port, options);
    try {
      await waitUntilAccepting(port, child, layout);
      return { child, port };
    } catch (error) {
      await terminate(child, STOP_TIMEOUT_MS);
      // Another process may take the port between our probe and the server's bind: try another.
      if (attempt < START_ATTEMPTS && (await logTail(layout)).includes('Address already in use')) continue;
      throw error;
    }
  }
}

async function spawnPostgres(layout: Layout, port: number, options: PostgresOptions): Promise<ChildProcess> {
  const settings = {
    ...BASE_SETTINGS,
    ...options.settings,
    listen_addresses: HOST,
    port,
    unix_socket_directories: layout.dir,
  };
  const serverArgs = [POSTGRES, '-D', layout.data,
    ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${settingValue(value)}`])];
  const user = isRoot() ? ['--reuid', OS_USER, '--regid', OS_USER, '--init-groups'] : [];
  const log = await open(layout.log, 'a');
  try {
    if (isRoot()) {
      const account = await lookupAccount(OS_USER);
      await log.chown(account.uid, account.gid);
    }
    // SIGQUIT is the postmaster's immediate shutdown: it stops its backends, then itself.
    return await spawnDaemon(serverArgs, { stopSignal: 'SIGQUIT', logFd: log.fd, cwd: layout.dir, setprivOptions: user });
  } finally {
    await log.close();
  }
}

function settingValue(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return String(value);
}

/**
 * Polls until the server answers a query, and checks that it is ours (its data_directory), not
 * another server that took the port in between.
 */
async function waitUntilAccepting(port: number, child: ChildProcess, layout: Layout): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (hasExited(child)) {
      throw new Error(`PostgreSQL exited during start-up (${exitDescription(child)}):\n${await logTail(layout)}`);
    }
    const client = new pg.Client({ host: HOST, port, user: SUPERUSER, database: 'postgres', connectionTimeoutMillis: 2_000 });
    // An error after connect (the server going away) must not become an uncaught 'error' event.
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ dir: string }>("SELECT current_setting('data_directory') AS dir");
      if (rows[0]?.dir === layout.data) return;
      throw new Error(`port ${port} answers with another server's data directory: ${rows[0]?.dir}`);
    } catch (error) {
      lastError = error;
    } finally {
      await client.end().catch(() => {});
    }
    await delay(20);
  }
  throw new Error(
    `PostgreSQL did not accept connections on port ${port} within ${START_TIMEOUT_MS} ms ` +
    `(last error: ${(lastError as Error | undefined)?.message}):\n${await logTail(layout)}`,
  );
}

async function logTail(layout: Layout): Promise<string> {
  return tail(await readFile(layout.log, 'utf8').catch(() => ''));
}

function tail(text: string): string {
  return text.split('\n').slice(-40).join('\n');
}

function exitDescription(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `exit code ${child.exitCode}`;
}

function makeHandle(layout: Layout, first: ChildProcess, port: number, options: PostgresOptions): Postgres {
  let child = first;
  const urlOf = (database: string) => `postgres://${SUPERUSER}@${HOST}:${port}/${database}`;
  const url = urlOf('postgres');
  let stopping: Promise<void> | undefined;
  return {
    host: HOST,
    port,
    url,
    dir: layout.dir,
    async createDatabase(name = `test_${randomBytes(6).toString('hex')}`) {
      // Unquoted-identifier syntax, so the name needs no quoting in SQL or escaping in the URL.
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`Unsupported database name: ${name}`);
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {});
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end().catch(() => {});
      }
      return urlOf(name);
    },
    async restart() {
      if (stopping !== undefined) throw new Error('the server is stopped');
      await terminate(child, STOP_TIMEOUT_MS);
      child = await spawnPostgres(layout, port, options);
      await waitUntilAccepting(port, child, layout);
    },
    stop() {
      stopping ??= terminate(child, STOP_TIMEOUT_MS).then(() => rm(layout.dir, { recursive: true, force: true, maxRetries: 5 }));
      return stopping;
    },
  };
}
