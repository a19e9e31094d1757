import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { checkKeyRing } from './accounts/key-check.js';
import { AccountService } from './accounts/service.js';
import { generateKey, loadKeyRing, parseKeyRing, SecretBox, SecretKeyError } from './accounts/secrets.js';
import { ConfigError, type ServiceConfig } from './config.js';
import { buildApp } from './http/app.js';
import { InProcessScheduler } from './jobs/in-process.js';
import { PgBossScheduler } from './jobs/pg-boss.js';
import { SyncWorkerPool } from './jobs/worker-pool.js';
import { Pruner } from './jobs/prune.js';
import { createLogger } from './logger.js';
import { Metrics } from './metrics.js';
import { serviceParts } from './service-parts.js';
import { describeLocation, parseStoreLocation, type StoreLocation } from './store/database.js';
import { StoreError } from './store/errors.js';
import { Store } from './store/store.js';

/** The running service: the HTTP API, the scheduler and the webhook sender over one store. */
export interface Service {
  /** Where the API listens, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly accounts: AccountService;
  readonly logger: Logger;
  /**
   * Stops taking requests and jobs; running syncs get `sync.shutdownGrace` ms to finish cleanly
   * (commit, DELE what is committed, QUIT), then are abandoned (dropped without QUIT: the server
   * keeps every message). Then the webhook sender and the store close.
   */
  close(): Promise<void>;
}

export interface ServiceOptions {
  readonly env?: NodeJS.ProcessEnv | undefined;
  /**
   * Whether a new store may be made where the configuration points and none is (`popwire serve
   * --init`). Default false: a mistyped POPWIRE_STORE must not start an empty service with a
   * new secret key, on which every token and account of the real one is unknown.
   */
  readonly init?: boolean | undefined;
  /** Lines for the person starting the service (stderr): a store or a key made. */
  readonly notify?: ((line: string) => void) | undefined;
  /** Where logs go (default stdout). */
  readonly logDestination?: NodeJS.WritableStream | undefined;
}

/** Starts `popwire serve`: everything in this process, listening when the promise resolves. */
export async function startService(config: ServiceConfig, options: ServiceOptions = {}): Promise<Service> {
  const env = options.env ?? process.env;
  const logger = createLogger(config.log.level, options.logDestination);
  const location = parseStoreLocation(config.store);
  const ca = config.tls.caFile === undefined ? undefined : readCa(config.tls.caFile);
  const { store, created } = await openServiceStore(location, options);
  try {
    // A key is made only where no sealed secret could need the old one.
    const mayMakeKey = created || !(await store.accounts.holdsSealedSecrets());
    const keyRing = resolveKeyRing(config, location, env, logger, { mayMake: mayMakeKey, notify: options.notify });
    const box = new SecretBox(keyRing);
    // Refuses to start on secrets that no key of the ring opens (accounts/key-check.ts says why).
    await checkKeyRing(store, box);
    const metrics = new Metrics();
    const { accounts, webhooks } = serviceParts(config, store, box, ca, logger, metrics);
    const schedulerOptions = { store, accounts, metrics, webhooks, logger: logger.child({ part: 'scheduler' }), concurrency: config.sync.concurrency };
    // Syncs in worker threads (jobs/sync-worker.ts), with the key ring: it stays in this process's memory.
    const workers =
      config.sync.workers > 0 && config.jobs.engine === 'in-process'
        ? new SyncWorkerPool({
            size: config.sync.workers,
            data: { config, location, keyRing, ca },
            metrics,
            wake: () => webhooks.wake(),
            logLine: (line) => void (options.logDestination ?? process.stdout).write(line),
            logger: logger.child({ part: 'scheduler' }),
            store,
          })
        : undefined;
    // pg-boss: several serve processes on one PostgreSQL store share the queue (config.ts checks the store).
    const scheduler =
      config.jobs.engine === 'pg-boss' ? new PgBossScheduler({ ...schedulerOptions, leaseMs: config.jobs.leaseSeconds * 1000 }) : new InProcessScheduler({ ...schedulerOptions, executor: workers });
    const app = await buildApp({ store, accounts, scheduler, metrics, logger, tokens: store.tokens, limits: config.http, webhooks });
    await app.listen({ host: config.http.host, port: config.http.port });
    const pruner = new Pruner(store, { keepDays: config.history.keepDays, purgeAfterDays: config.messages.purgeAfterDays, logger: logger.child({ part: 'prune' }) });
    webhooks.start();
    scheduler.start();
    pruner.start();
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.http.port;
    const host = config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host;
    const url = `http://${host}:${port}`;
    logger.info({ url, store: describeLocation(location), jobs: config.jobs.engine, concurrency: config.sync.concurrency }, 'popwire serve is listening');
    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        logger.info('shutting down');
        await app.close();
        await scheduler.stop(config.sync.shutdownGrace);
        await workers?.close();
        await webhooks.stop();
        await pruner.stop();
        await store.close();
        logger.info('stopped');
      })());
    return { url, app, store, accounts, logger, close };
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}

/** The store, made only with `init`; `created` says whether it was made now. */
async function openServiceStore(location: StoreLocation, options: ServiceOptions): Promise<{ store: Store; created: boolean }> {
  try {
    return { store: await Store.open(location, { create: false }), created: false };
  } catch (error) {
    if (!(error instanceof StoreError && error.code === 'STORE_NOT_FOUND')) throw error;
    if (options.init !== true) {
      throw new StoreError(
        'STORE_NOT_FOUND',
        `${error.message}: popwire serve --init makes a new one there; to use an existing store, name it with --store, POPWIRE_STORE or "store" in the configuration file`,
        { cause: error },
      );
    }
  }
  const store = await Store.open(location, { create: true });
  options.notify?.(`made a new, empty store at ${describeLocation(location)}`);
  return { store, created: true };
}

/**
 * The key ring: POPWIRE_SECRET_KEY, else `secretKeyFile`. With neither and the embedded SQLite
 * store, a key is made in the store's folder (mode 0600) when the store holds no sealed secret
 * yet, so that `popwire serve --init` runs out of the box; the log and stderr say where it is and
 * that a deployment should keep its key apart from its data. A store whose secrets were sealed
 * with a key that is now missing is refused: a new key would make them unreadable. With
 * PostgreSQL a key must be given: several machines must share it.
 * Without a logger (a command that only reads keys) no key is made.
 */
export function resolveKeyRing(
  config: ServiceConfig,
  location: StoreLocation,
  env: NodeJS.ProcessEnv,
  logger?: Logger,
  making: { readonly mayMake: boolean; readonly notify?: ((line: string) => void) | undefined } = { mayMake: true },
): Buffer[] {
  const ring = loadKeyRing({ env: env.POPWIRE_SECRET_KEY, file: config.secretKeyFile });
  if (ring.length > 0) return ring;
  if (location.kind !== 'sqlite') {
    throw new ConfigError('secretKeyFile: a secret key is required with a PostgreSQL store (set POPWIRE_SECRET_KEY or secretKeyFile)');
  }
  const file = join(location.dir, 'secret.key');
  try {
    return parseKeyRing(readFileSync(file, 'utf8'));
  } catch (error) {
    if (error instanceof SecretKeyError) throw error;
  }
  if (logger === undefined) return [];
  if (!making.mayMake) {
    throw new ConfigError(
      `secretKeyFile: the store at ${describeLocation(location)} holds sealed credentials, but its key ${file} is missing: restore it, or set POPWIRE_SECRET_KEY or secretKeyFile`,
    );
  }
  writeKeyFile(location.dir, file);
  logger.warn({ file }, 'made a secret key for stored credentials next to the store; keep a copy, and in production set POPWIRE_SECRET_KEY or secretKeyFile instead');
  making.notify?.(`made a new secret key at ${file} (keep a copy: without it the stored credentials cannot be read)`);
  return parseKeyRing(readFileSync(file, 'utf8'));
}

function writeKeyFile(dir: string, file: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // `wx`: never overwrite a key, which would make every sealed credential unreadable.
  writeFileSync(file, `${generateKey()}\n`, { mode: 0o600, flag: 'wx' });
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new ConfigError(`tls.caFile: cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
}
