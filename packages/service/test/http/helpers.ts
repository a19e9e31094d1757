/**
 * The HTTP API on a real port, for tests: startApp() builds it over a given store with a real
 * AccountService, a fake scheduler (the real one is tested on its own), fresh metrics and a
 * logger whose every line is kept, listens on 127.0.0.1:0, and makes a token. Requests go
 * through `fetch`, so what is tested is what a client gets on the wire.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { LoggerOptions } from 'pino';
import { Pop3Client } from 'popwire';
import { AccountService, type AccountInput } from '../../src/accounts/service.ts';
import { SecretBox } from '../../src/accounts/secrets.ts';
import type { DestinationPolicy } from '../../src/accounts/destinations.ts';
import { createDestination } from '../../src/destinations/index.ts';
import { buildApp, type AppDeps } from '../../src/http/app.ts';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../../src/http/limits.ts';
import { AddressGuard } from '../../src/net/guard.ts';
import { JobNotFoundError, type SyncJobView, type SyncScheduler } from '../../src/jobs/scheduler.ts';
import { createLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Store } from '../../src/store/store.ts';
import { syncAccount, type SyncReport } from '../../src/sync/index.ts';

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  /** The body exactly as sent, for searching it for what must not be there. */
  readonly text: string;
  readonly bytes: Buffer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly json: any;
}

export interface RequestOptions {
  readonly body?: unknown;
  /** Raw body text, sent as JSON. */
  readonly rawBody?: string;
  /** null: no Authorization header; a string: this token instead of the app's. */
  readonly token?: string | null;
  readonly headers?: Record<string, string>;
}

export interface TestApp extends AsyncDisposable {
  readonly url: string;
  readonly token: string;
  readonly store: Store;
  readonly accounts: AccountService;
  readonly scheduler: FakeScheduler;
  readonly metrics: Metrics;
  /** Every log line so far, as written. */
  logs(): string;
  request(method: string, path: string, options?: RequestOptions): Promise<Reply>;
  /** Syncs an account now, in this process, with the account's own client options and policy. */
  sync(accountId: number): Promise<SyncReport>;
  close(): Promise<void>;
}

export interface AppOptions {
  /** The CA of the test's Dovecot, for the accounts' TLS. */
  readonly ca?: Buffer;
  readonly scheduler?: FakeScheduler;
  /** The outbound address policy; default: loopback allowed, as the tests' Dovecot listens there. */
  readonly network?: AddressGuard;
  /** Serializers the service's logger comes with (to check that the API's own win). */
  readonly serializers?: LoggerOptions['serializers'];
  /** Default: the service's, but bad tokens never rate-limited (tests send many from 127.0.0.1; limits.test.ts tests the limit). */
  readonly limits?: HttpLimits;
  /** The webhook outbox the routes write their events to (message.updated); default none. */
  readonly webhooks?: AppDeps['webhooks'];
  /** What API callers may use as destinations (config `destinations`); default: none of MDA, Maildir, sockets. */
  readonly destinations?: Omit<DestinationPolicy, 'network'>;
}

/** What the tests' own servers need: `network.allow` for loopback, as a deployment's config would say. */
export const LOOPBACK = ['127.0.0.0/8', '::1'];

export async function startApp(store: Store, options: AppOptions = {}): Promise<TestApp> {
  const network = options.network ?? new AddressGuard({ allow: LOOPBACK });
  const destinations = options.destinations === undefined ? undefined : { ...options.destinations, network };
  const accounts = new AccountService(store, new SecretBox([randomBytes(32)]), { ca: options.ca, timeout: 10_000, network, destinations });
  const scheduler = options.scheduler ?? new FakeScheduler();
  const metrics = new Metrics();
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const base = createLogger('trace', sink);
  const logger = options.serializers === undefined ? base : base.child({}, { serializers: options.serializers });
  const limits = options.limits ?? { ...DEFAULT_HTTP_LIMITS, authFailures: Number.MAX_SAFE_INTEGER };
  const app = await buildApp({ store, accounts, scheduler, metrics, logger, tokens: store.tokens, limits, webhooks: options.webhooks });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const { token } = await store.tokens.create('test');
  const close = async () => {
    await app.close();
  };
  return {
    url,
    token,
    store,
    accounts,
    scheduler,
    metrics,
    logs: () => lines.join(''),
    request: async (method, path, request = {}) => {
      const headers: Record<string, string> = { ...request.headers };
      const bearer = request.token === undefined ? token : request.token;
      if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
      let body: string | undefined;
      if (request.rawBody !== undefined || request.body !== undefined) {
        body = request.rawBody ?? JSON.stringify(request.body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(url + path, { method, headers, body });
      const bytes = Buffer.from(await response.arrayBuffer());
      const text = bytes.toString('utf8');
      const json = (response.headers.get('content-type') ?? '').includes('json') && text !== '' ? JSON.parse(text) : undefined;
      return { status: response.status, headers: response.headers, text, bytes, json };
    },
    sync: async (accountId) => {
      const row = await accounts.row(accountId);
      // The account's API destinations, as the scheduler's runner makes them.
      const { targets, uidHeader } = await accounts.destinations.targets(row, createDestination);
      return syncAccount({ store, accountId, connect: () => Pop3Client.connect(accounts.clientOptions(row)), policy: accounts.policy(row), destinations: { targets, options: { uidHeader } } });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Records what the API asks of a scheduler. Idempotent per account like the real one: while an
 * account's job is queued, enqueue returns it.
 */
export class FakeScheduler implements SyncScheduler {
  readonly enqueued: Array<{ accountId: number; reason: string }> = [];
  readonly jobs = new Map<number, SyncJobView>();
  private nextId = 1;

  async enqueue(accountId: number, reason: string): Promise<SyncJobView> {
    this.enqueued.push({ accountId, reason });
    const open = [...this.jobs.values()].find((j) => j.accountId === accountId && (j.status === 'queued' || j.status === 'running'));
    if (open !== undefined) return open;
    const job: SyncJobView = { id: this.nextId++, accountId, status: 'queued', reason, queuedAt: new Date().toISOString(), startedAt: null, finishedAt: null, runId: null, error: null };
    this.jobs.set(job.id, job);
    return job;
  }

  async job(id: number): Promise<SyncJobView> {
    const job = this.jobs.get(id);
    if (job === undefined) throw new JobNotFoundError(`no job ${id}`);
    return job;
  }

  queueDepth(): number {
    return [...this.jobs.values()].filter((j) => j.status === 'queued').length;
  }

  start(): void {}
  async stop(): Promise<void> {}
}

/** An account body for POST /v1/accounts: Dovecot's alice over STLS, with a webhook. */
export function accountBody(server: { host: string; port: number }, password: string, extra: Partial<AccountInput> = {}): AccountInput {
  return {
    name: 'Alice',
    host: server.host,
    port: server.port,
    tls: 'starttls',
    username: 'alice',
    credentials: { type: 'password', password },
    webhook: { url: 'https://hooks.example.test/popwire', secret: WEBHOOK_SECRET },
    ...extra,
  };
}

export const WEBHOOK_SECRET = 'webhook-secret-do-not-show-0123456789';
