import Sqlite from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteAdapter, type DialectAdapter, type Driver, type MigrationProvider, sql, SqliteDialect } from 'kysely';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DatabaseError } from 'pg';
import type { Dialect } from './dialect.js';
import { StoreError } from './errors.js';
import { migrationProvider } from './migrations/index.js';
import type { Database } from './schema.js';

/** Where the store lives: a folder holding an SQLite file (the embedded default), or a PostgreSQL database. */
export type StoreLocation = { readonly kind: 'sqlite'; readonly dir: string } | { readonly kind: 'postgres'; readonly url: string };

export const DEFAULT_STORE_DIR = 'popwire-data';
export const SQLITE_FILE = 'popwire.sqlite';

/**
 * `postgres://…` or `postgresql://…` names a database; any other `scheme://` is refused (a
 * `mysql://x@h/db` once made a folder named `mysql:` with an SQLite store in it); anything else
 * is a folder for SQLite.
 */
export function parseStoreLocation(text: string): StoreLocation {
  if (text.trim() === '') throw new StoreError('STORE_INVALID_LOCATION', 'the store location is empty');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1];
  if (scheme !== undefined && !/^postgres(ql)?$/i.test(scheme)) {
    throw new StoreError('STORE_INVALID_LOCATION', `${scheme}:// is not a kind of store popwire knows: give a folder (SQLite) or a postgres:// URL`);
  }
  if (scheme !== undefined) {
    try {
      new URL(text);
    } catch (cause) {
      throw new StoreError('STORE_INVALID_LOCATION', 'the PostgreSQL URL cannot be read', { cause });
    }
    return { kind: 'postgres', url: text };
  }
  return { kind: 'sqlite', dir: resolve(text) };
}

/** Says where a location is, without the password a PostgreSQL URL may carry. */
export function describeLocation(location: StoreLocation): string {
  if (location.kind === 'sqlite') return join(location.dir, SQLITE_FILE);
  const url = new URL(location.url);
  if (url.password !== '') url.password = '***';
  return url.toString();
}

export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
}

export interface OpenOptions {
  /**
   * Whether a store may be made where there is none: an SQLite folder without its file, a
   * PostgreSQL database without popwire's tables. Default true. With false, such a place is a
   * STORE_NOT_FOUND error and nothing is made there (not even the folder).
   */
  readonly create?: boolean | undefined;
}

/** Opens the database and brings its schema up to date. */
export async function openDatabase(location: StoreLocation, options: OpenOptions = {}): Promise<OpenDatabase> {
  const create = options.create ?? true;
  if (!create && location.kind === 'sqlite' && !existsSync(join(location.dir, SQLITE_FILE))) {
    throw new StoreError('STORE_NOT_FOUND', `no store at ${describeLocation(location)}`);
  }
  const opened = location.kind === 'sqlite' ? openSqlite(location.dir) : await openPostgres(location.url);
  try {
    if (!create && location.kind === 'postgres' && !(await hasStore(opened.db))) {
      throw new StoreError('STORE_NOT_FOUND', `no store in ${describeLocation(location)}: the database holds no popwire tables`);
    }
    await migrate(opened.db);
  } catch (error) {
    await opened.db.destroy().catch(() => {});
    throw error;
  }
  return opened;
}

/** Opens (or makes) the SQLite file, unmigrated: openDatabase migrates it. */
export function openSqlite(dir: string): OpenDatabase {
  let database: Sqlite.Database;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, SQLITE_FILE);
    // Every message and every sealed credential is in this file: made 0600, never with the
    // umask's usual 0644. SQLite gives its -wal and -shm files the main file's mode.
    closeSync(openSync(file, 'a', 0o600));
    database = new Sqlite(file);
    // WAL: readers (the API, `popwire messages`) do not wait for a sync's writes, and a commit
    // is one append to the log. synchronous=FULL: the log is fsynced at every commit, so a
    // committed message survives a power cut, which is what allows its DELE; NORMAL would keep
    // it only across a process crash.
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = FULL');
    database.pragma('foreign_keys = ON');
    // A second process (`popwire messages` during `popwire serve`) waits for the writer's lock.
    database.pragma('busy_timeout = 10000');
  } catch (cause) {
    throw new StoreError('STORE_OPEN_FAILED', `cannot open the SQLite store in ${dir}: ${(cause as Error).message}`, { cause });
  }
  const db = new Kysely<Database>({ dialect: new TransactionalSqliteDialect({ database: withStatementCache(database) }) });
  sqliteHandles.set(db, database);
  return { db, dialect: 'sqlite' };
}

const sqliteHandles = new WeakMap<Kysely<Database>, Sqlite.Database>();

/**
 * The better-sqlite3 database under a store opened by openSqlite, for the statements a sync
 * runs per message (sqlite-writes.ts); undefined for PostgreSQL and for any other Kysely.
 */
export function sqliteDatabaseOf(db: Kysely<Database>): Sqlite.Database | undefined {
  return sqliteHandles.get(db);
}

/**
 * SQLite runs DDL inside transactions, but Kysely's adapter says it does not, so its Migrator
 * ran each statement on its own: a crash (or a failed statement) halfway through a migration
 * left half a schema that no later start could migrate. Saying so makes the Migrator run all
 * pending migrations in one transaction: after any crash the old schema is intact.
 */
class TransactionalSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }

  /**
   * BEGIN IMMEDIATE: a transaction takes the write lock when it starts. With a plain (deferred)
   * BEGIN, a transaction that reads and then writes while another connection (a serve sync
   * worker, a `popwire sync` process) has committed since its read cannot upgrade, and SQLite
   * answers SQLITE_BUSY at once, without waiting out busy_timeout: a sync failed with "database
   * is locked" under bench (e) with two sync workers. Waiting at BEGIN is what busy_timeout covers.
   */
  override createDriver(): Driver {
    const driver = super.createDriver();
    driver.beginTransaction = async (connection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    return driver;
  }
}

class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

const STATEMENT_CACHE = 200;

/**
 * Kysely prepares every query anew, and better-sqlite3's prepare costs more than running a
 * small insert (about 60 us against 15 us, measured on a 3,000-message commit): a sync runs
 * the same few statements thousands of times, so they are prepared once and kept. The cache is
 * bounded (least recently used goes) because a list query's SQL varies with its filters.
 * Safe because Kysely runs one query at a time on the connection.
 */
function withStatementCache(database: Sqlite.Database): Sqlite.Database {
  const cache = new Map<string, Sqlite.Statement>();
  const prepare = (source: string) => {
    let statement = cache.get(source);
    if (statement !== undefined) {
      cache.delete(source);
    } else {
      statement = database.prepare(source);
      if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
    }
    cache.set(source, statement);
    return statement;
  };
  return new Proxy(database, { get: (target, key) => (key === 'prepare' ? prepare : Reflect.get(target, key, target)) });
}

const INT8_OID = 20;

/**
 * A session idle inside a transaction this long is ended by the server. A sync whose machine
 * vanishes (or whose network breaks) sends no FIN: its open transaction keeps its locks until
 * TCP gives up on the connection, two hours by default, and a later sync inserting the same
 * message waits on them all that time. None of our transactions waits on anything but the
 * database, so a minute idle in one means its client is gone. A URL may set its own
 * (`?idle_in_transaction_session_timeout=ms`).
 */
const IDLE_IN_TRANSACTION_MS = 60_000;

let postgresErrorClass: typeof DatabaseError | undefined;

/**
 * Whether `error` is PostgreSQL's own (pg's DatabaseError). None can be before a PostgreSQL store
 * is opened, which is when pg is loaded (pg-boss runs only beside such a store).
 */
export function isPostgresError(error: unknown): boolean {
  return postgresErrorClass !== undefined && error instanceof postgresErrorClass;
}

/**
 * pg is loaded here, not at the top: on loading it looks for a Cloudflare runtime, which makes
 * Node 20 load its own fetch (undici), some 20 ms that `popwire sync` into SQLite need not pay.
 */
async function openPostgres(url: string): Promise<OpenDatabase> {
  const { default: pg } = await import('pg');
  postgresErrorClass = pg.DatabaseError;
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    // int8 (ids, sizes, times in ms) comes back as a string by default; every value we store is
    // below 2^53, so a number is exact.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that
  // would end the process. The next query gets a fresh connection (or its own error).
  pool.on('error', () => {});
  // A client checked out between two statements (inside a transaction) has no listener of the
  // pool's: a server restart there emitted 'error' on it and ended the process (found by `npm run
  // soak`). The transaction's next statement fails instead, and the pool drops the client.
  pool.on('connect', (client) => client.on('error', () => {}));
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), dialect: 'postgres' };
}

/** Whether migrations have run in this database: Kysely's bookkeeping table is there. */
async function hasStore(db: Kysely<Database>): Promise<boolean> {
  try {
    const { rows } = await sql<{ found: string | null }>`select to_regclass('kysely_migration')::text as found`.execute(db);
    return rows[0]?.found != null;
  } catch (cause) {
    throw new StoreError('STORE_OPEN_FAILED', `cannot reach the store: ${(cause as Error).message}`, { cause });
  }
}

/** Brings the schema up to date; `provider` is for tests (a migration that fails halfway). */
export async function migrate(db: Kysely<Database>, provider: MigrationProvider = migrationProvider): Promise<void> {
  if (await upToDate(db, provider)) return;
  let result;
  try {
    result = await new Migrator({ db, provider }).migrateToLatest();
  } catch (cause) {
    throw new StoreError('STORE_OPEN_FAILED', `cannot reach the store: ${(cause as Error).message}`, { cause });
  }
  if (result.error !== undefined) {
    // Kysely reports a database it could not reach inside the result, with no migration run.
    if (result.results === undefined || result.results.length === 0) {
      const reason = result.error instanceof Error ? result.error.message : String(result.error);
      throw new StoreError('STORE_OPEN_FAILED', `cannot reach the store: ${reason}`, { cause: result.error });
    }
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    const cause = result.error;
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new StoreError('STORE_MIGRATION_FAILED', `migration ${failed} failed: ${reason}`, { cause });
  }
}

/**
 * Whether exactly the migrations `provider` knows have run: one query. Kysely's Migrator finds
 * that out by reading every table's columns (to see its own tables exist), then reads the
 * migration table and sorts it inside a transaction: 15 to 30 ms of every `popwire sync` start
 * (bench (j)). Any other answer (one pending, one this code does not know, no migration table
 * yet, an error) goes to the Migrator, which migrates or fails as it always did. Sound because a
 * migration's name is recorded in the transaction that runs it.
 */
async function upToDate(db: Kysely<Database>, provider: MigrationProvider): Promise<boolean> {
  let applied: string[];
  try {
    const { rows } = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
    applied = rows.map((row) => row.name);
  } catch {
    return false;
  }
  const known = new Set(Object.keys(await provider.getMigrations()));
  return applied.length === known.size && applied.every((name) => known.has(name));
}
