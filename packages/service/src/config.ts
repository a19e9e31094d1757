import { readFileSync } from 'node:fs';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { parseAllowEntry } from './net/guard.js';
import { parseStoreLocation } from './store/database.js';

/**
 * `popwire serve`'s configuration: one typed object from a JSON file and the environment
 * (the environment wins), checked against a schema at start. A bad setting stops the start with
 * one line that names it and says where it came from.
 */
const Schema = Type.Object(
  {
    /** A folder (SQLite) or a postgres:// URL. */
    store: Type.String({ minLength: 1, default: 'popwire-data' }),
    http: Type.Object(
      {
        // Loopback by default: exposing the API is a decision, not an accident.
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        // Bounds on what one client may hold (http/limits.ts says which attack each stops).
        /** Milliseconds to receive a request's line and headers (a slow-drip client gets 408). */
        headersTimeout: Type.Integer({ minimum: 100, default: 10_000 }),
        /** Milliseconds to receive a whole request, body included. */
        requestTimeout: Type.Integer({ minimum: 100, default: 30_000 }),
        /** Milliseconds an idle kept-alive connection stays open. */
        keepAliveTimeout: Type.Integer({ minimum: 100, default: 5_000 }),
        /** Connections open at once; more are refused. */
        maxConnections: Type.Integer({ minimum: 1, default: 1024 }),
        /** Bad tokens one client address may send per `authWindow` seconds before it gets 429. */
        authFailures: Type.Integer({ minimum: 1, default: 20 }),
        authWindow: Type.Integer({ minimum: 1, default: 60 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** A file holding the key ring (accounts/secrets.ts); POPWIRE_SECRET_KEY takes precedence. */
    secretKeyFile: Type.Optional(Type.String({ minLength: 1 })),
    sync: Type.Object(
      {
        /** Syncs running at once, across accounts. */
        concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
        /**
         * Worker threads the syncs run in (jobs/sync-worker.ts); 0: in the main thread, beside the
         * HTTP API. With workers, the store's writes and the POP3 sessions no longer hold up the
         * API's event loop. The in-process job engine only.
         */
        workers: Type.Integer({ minimum: 0, maximum: 64, default: 0 }),
        /** Seconds between syncs of an account created without its own interval. */
        defaultInterval: Type.Integer({ minimum: 1, default: 300 }),
        /**
         * The shortest interval an account may have, in seconds: providers lock accounts that log
         * in every few seconds. Lower it for tests only. A server's LOGIN-DELAY (CAPA) raises it.
         */
        minInterval: Type.Integer({ minimum: 1, default: 60 }),
        /**
         * Octets: the size limit of accounts that set none (their policy's maxSize). A message LIST
         * says is larger is skipped (or kept as headers); one whose RETR sends more fails the run.
         */
        maxSize: Type.Integer({ minimum: 1024, default: 100 * 1024 * 1024 }),
        /** Milliseconds allowed for each server reply. */
        timeout: Type.Integer({ minimum: 1000, default: 30_000 }),
        /**
         * Seconds one sync's POP3 session may take, connect to QUIT, however steadily the server
         * answers: `timeout` is per reply, and a server sending a byte every few seconds never trips
         * it. Past it the run fails with POP3_TIMEOUT (nothing is deleted) and is retried at the next turn.
         */
        deadline: Type.Integer({ minimum: 1, default: 3600 }),
        /** Connect attempts per sync ([SYS/TEMP], [IN-USE], refused...); never after a rejected password. */
        connectAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
        /** Milliseconds a running sync gets to finish cleanly on SIGTERM before it is abandoned. */
        shutdownGrace: Type.Integer({ minimum: 0, default: 30_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    history: Type.Object(
      {
        /** Days that finished jobs, finished runs (each account's newest is kept) and delivered webhook events are kept. */
        keepDays: Type.Integer({ minimum: 1, default: 30 }),
      },
      { additionalProperties: false, default: {} },
    ),
    messages: Type.Object(
      {
        /** Days a soft-deleted message (DELETE /v1/messages/{id}) stays, hidden, before it is purged. 0: at the next prune. */
        purgeAfterDays: Type.Integer({ minimum: 0, default: 30 }),
      },
      { additionalProperties: false, default: {} },
    ),
    jobs: Type.Object(
      {
        /**
         * What runs the background syncs: `in-process` (timers in this process, the default) or
         * `pg-boss` (a queue in the PostgreSQL store, shared by several `popwire serve` processes).
         */
        engine: Type.Union([Type.Literal('in-process'), Type.Literal('pg-boss')], { default: 'in-process' }),
        /**
         * pg-boss: seconds a running sync's account lease lasts unrenewed (renewed every third).
         * A sync whose process died is taken up by another process about this long after.
         */
        leaseSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
      },
      { additionalProperties: false, default: {} },
    ),
    tls: Type.Object(
      {
        /** Extra CA certificates (PEM) trusted for every account, added to Node's roots. */
        caFile: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Where the service may connect for callers of its API (accounts' POP3 hosts, webhooks, OAuth
     * token endpoints): loopback, private, link-local and other special addresses are refused
     * unless listed here (net/guard.ts). The config's own `webhook` and CLI commands are trusted.
     */
    network: Type.Object(
      {
        /** CIDR blocks (`10.1.0.0/16`), addresses, host names (`pop.internal`) or `*.suffix`. */
        allow: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * What callers of the API may use as an account's destinations (accounts/destinations.ts).
     * Running a command, writing under a folder and using a Unix socket of this machine are the
     * operator's decisions: each is off until listed here. Network destinations (LMTP, SMTP,
     * IMAP on a host) follow `network` instead, like POP3 hosts.
     */
    destinations: Type.Object(
      {
        /** MDA commands by the absolute path of their program (argv[0], exactly): `/usr/bin/procmail`. */
        mda: Type.Object({ allow: Type.Array(Type.String({ minLength: 2, pattern: '^/' }), { default: [] }) }, { additionalProperties: false, default: {} }),
        /** Folders under which an API Maildir may be. */
        maildir: Type.Object({ allow: Type.Array(Type.String({ minLength: 2, pattern: '^/' }), { default: [] }) }, { additionalProperties: false, default: {} }),
        /** LMTP Unix sockets (`/var/run/dovecot/lmtp`). */
        lmtp: Type.Object({ sockets: Type.Array(Type.String({ minLength: 2, pattern: '^/' }), { default: [] }) }, { additionalProperties: false, default: {} }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** A deployment-wide webhook, besides any account's own. */
    webhook: Type.Optional(
      Type.Object(
        {
          url: Type.String({ pattern: '^https?://' }),
          secret: Type.String({ minLength: 16 }),
        },
        { additionalProperties: false },
      ),
    ),
    log: Type.Object(
      { level: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info' }) },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type ServiceConfig = Static<typeof Schema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
}

/** Environment variables and the settings they set. Numbers are read as numbers. */
const ENVIRONMENT: ReadonlyArray<readonly [string, string, 'string' | 'integer']> = [
  ['POPWIRE_STORE', 'store', 'string'],
  ['POPWIRE_HTTP_HOST', 'http.host', 'string'],
  ['POPWIRE_HTTP_PORT', 'http.port', 'integer'],
  ['POPWIRE_SECRET_KEY_FILE', 'secretKeyFile', 'string'],
  ['POPWIRE_SYNC_CONCURRENCY', 'sync.concurrency', 'integer'],
  ['POPWIRE_SYNC_WORKERS', 'sync.workers', 'integer'],
  ['POPWIRE_SYNC_INTERVAL', 'sync.defaultInterval', 'integer'],
  ['POPWIRE_SYNC_MIN_INTERVAL', 'sync.minInterval', 'integer'],
  ['POPWIRE_JOBS_ENGINE', 'jobs.engine', 'string'],
  ['POPWIRE_MESSAGES_PURGE_AFTER_DAYS', 'messages.purgeAfterDays', 'integer'],
  ['POPWIRE_JOBS_LEASE_SECONDS', 'jobs.leaseSeconds', 'integer'],
  ['POPWIRE_TLS_CA_FILE', 'tls.caFile', 'string'],
  ['POPWIRE_WEBHOOK_URL', 'webhook.url', 'string'],
  ['POPWIRE_WEBHOOK_SECRET', 'webhook.secret', 'string'],
  ['POPWIRE_LOG_LEVEL', 'log.level', 'string'],
];

/** `popwire serve --store/--host/--port`: the same settings as the file and the variables, named the same way. */
export interface ServeFlags {
  readonly store?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: string | undefined;
}

const FLAGS: ReadonlyArray<readonly [string, string, 'string' | 'integer', keyof ServeFlags]> = [
  ['--store', 'store', 'string', 'store'],
  ['--host', 'http.host', 'string', 'host'],
  ['--port', 'http.port', 'integer', 'port'],
];

/**
 * Reads the file (if any), applies the environment and then the flags over it, fills the defaults and checks the
 * result. Throws ConfigError naming the first bad setting and its source.
 */
export function loadConfig(options: { file?: string | undefined; env?: NodeJS.ProcessEnv; flags?: ServeFlags | undefined } = {}): ServiceConfig {
  const env = options.env ?? process.env;
  const raw: Record<string, unknown> = options.file === undefined ? {} : readFile(options.file);
  const sources = new Map<string, string>();
  // Flags last: they win over the environment, as a command line does.
  const given: Array<readonly [string, string, 'string' | 'integer', string | undefined]> = [
    ...ENVIRONMENT.map(([variable, path, type]) => [variable, path, type, env[variable]] as const),
    ...FLAGS.map(([flag, path, type, key]) => [flag, path, type, options.flags?.[key]] as const),
  ];
  for (const [variable, path, type, text] of given) {
    if (text === undefined || text === '') continue;
    let value: unknown = text;
    if (type === 'integer') {
      if (!/^-?\d+$/.test(text.trim())) throw new ConfigError(`${path} (from ${variable}) must be an integer; got ${JSON.stringify(text)}`);
      value = Number(text);
    }
    setPath(raw, path, value);
    sources.set(path, variable);
  }
  // A list, comma-separated in its variable; like the others, it wins over the file.
  const allow = env.POPWIRE_NETWORK_ALLOW;
  if (allow !== undefined && allow.trim() !== '') {
    setPath(raw, 'network.allow', allow.split(',').map((entry) => entry.trim()).filter((entry) => entry !== ''));
    sources.set('network.allow', 'POPWIRE_NETWORK_ALLOW');
  }
  const config = Value.Default(Schema, raw) as unknown;
  const errors = [...Value.Errors(Schema, config)].filter((e) => e.keyword !== 'boolean');
  const first = errors[0];
  if (first !== undefined) {
    const path = settingName(first.instancePath, first.params);
    const source = sources.get(path) ?? (options.file === undefined ? 'defaults' : options.file);
    // A union of literals reports each literal it is not: say which values it may be instead.
    const allowed = errors.filter((e) => e.keyword === 'const' && e.instancePath === first.instancePath).map((e) => JSON.stringify((e.params as { allowedValue?: unknown }).allowedValue));
    const missing = first.keyword === 'required';
    const message = allowed.length > 0 ? `must be one of ${allowed.join(', ')}` : missing ? 'is required' : first.message;
    throw new ConfigError(`${path === '' ? 'the configuration' : path} (from ${source}): ${message}`);
  }
  const valid = config as ServiceConfig;
  const source = (path: string) => sources.get(path) ?? options.file ?? 'defaults';
  if (valid.sync.defaultInterval < valid.sync.minInterval) {
    throw new ConfigError(`sync.defaultInterval (from ${source('sync.defaultInterval')}): must be at least sync.minInterval (${valid.sync.minInterval} seconds)`);
  }
  try {
    parseStoreLocation(valid.store);
  } catch (error) {
    throw new ConfigError(`store (from ${source('store')}): ${(error as Error).message}`, { cause: error });
  }
  for (const [index, entry] of valid.network.allow.entries()) {
    if (parseAllowEntry(entry) === undefined) {
      throw new ConfigError(`network.allow[${index}] (from ${sources.get('network.allow') ?? options.file ?? 'defaults'}): ${JSON.stringify(entry)} is neither an address, a CIDR block nor a host name`);
    }
  }
  // The queue lives in the store's database (store/database.ts: a postgres:// URL names one).
  if (valid.jobs.engine === 'pg-boss' && !/^postgres(ql)?:\/\//i.test(valid.store)) {
    throw new ConfigError('jobs.engine: pg-boss needs a PostgreSQL store (set store to a postgres:// URL)');
  }
  return valid;
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read the configuration file ${file}: ${(cause as Error).message}`, { cause });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`the configuration file ${file} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`the configuration file ${file} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node = (node[key] = typeof next === 'object' && next !== null ? next : {}) as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

/** `/http/port` -> `http.port`; for an unknown property, its name. */
function settingName(instancePath: string, params: unknown): string {
  const base = instancePath.split('/').filter(Boolean).join('.');
  const extra = (params as { additionalProperties?: unknown } | undefined)?.additionalProperties;
  if (Array.isArray(extra) && extra.length > 0) return [base, String(extra[0])].filter(Boolean).join('.') + ' (unknown setting)';
  const missing = (params as { requiredProperties?: unknown } | undefined)?.requiredProperties;
  if (Array.isArray(missing) && missing.length > 0) return [base, String(missing[0])].filter(Boolean).join('.');
  return base;
}
