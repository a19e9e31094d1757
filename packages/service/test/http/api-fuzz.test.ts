/**
 * The API fuzzed from its own OpenAPI document (fast-check), against `popwire serve` as
 * startService runs it: SQLite store, real scheduler and webhook sender, the network guard with
 * loopback allowed, and accounts that point at a closed loopback port (so a test or a sync
 * fails fast and leaves failed runs behind). Two tenants are planted: A (two accounts, one with
 * OAuth settings) and B, each with messages (one with an attachment), webhook secrets and
 * passwords that mark them.
 *
 * Every operation in the document is called with every kind of token (admin, read, write,
 * metrics, read+write, tenant A's, tenant A's admin, a token of no account, expired, revoked,
 * unknown, none), first once each with a valid request, then at random with valid and invalid
 * requests (bad ids, bounds crossed, fields dropped or added, any JSON, broken JSON, wrong media
 * types). For every response:
 * - never a 5xx, and the service still answers /health at the end (no crash);
 * - never a secret: no planted password, webhook or OAuth secret, no API token, not the key,
 *   and no secret the fuzzer sent in another request;
 * - a restricted token sees nothing of an account outside its restriction: no other tenant's
 *   marker, no `accountId` or account `id` it was not granted;
 * - the scope the document names for the route is enforced: 403 FORBIDDEN naming it without
 *   it, never 401/403 with it; a bad or expired token is 401.
 *
 * POPWIRE_FUZZ_RUNS sets the number of random requests (default 1,500); POPWIRE_FUZZ_SEED
 * replays a failure fast-check reported.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { closedPort as closedPortNow } from '../../../../support/daemon.ts';
import { generateKey } from '../../src/accounts/secrets.ts';
import { loadConfig } from '../../src/config.ts';
import { startService, type Service } from '../../src/serve.ts';
import type { MessageToCommit } from '../../src/store/messages.ts';
import { Store } from '../../src/store/store.ts';
import type { Scope } from '../../src/store/tokens.ts';
import { EMPTY_SUMMARY } from '../../src/sync/summary.ts';
import { invalid, junk, valid, type JsonSchema, type Overrides } from './fuzz/schema-arbitrary.ts';

const RUNS = Number(process.env.POPWIRE_FUZZ_RUNS ?? 1500);
const SEED = process.env.POPWIRE_FUZZ_SEED === undefined ? undefined : Number(process.env.POPWIRE_FUZZ_SEED);

/** Secrets the fuzzer sends look like this, so that any of them in a response is found. */
const FUZZ_SECRET = /fz-secret-[0-9a-f]{16}/g;
const API_TOKEN = /pw_[A-Za-z0-9_-]{43}/;

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly scope: Scope | undefined;
  readonly params: ReadonlyArray<{ readonly in: 'path' | 'query'; readonly name: string; readonly required: boolean; readonly schema: JsonSchema }>;
  readonly body: JsonSchema | undefined;
}

type TokenKind = 'admin' | 'read' | 'write' | 'metrics' | 'readWrite' | 'tenantA' | 'tenantAdminA' | 'noAccount' | 'expired' | 'revoked' | 'unknown' | 'none';
const TOKEN_KINDS: readonly TokenKind[] = ['admin', 'read', 'write', 'metrics', 'readWrite', 'tenantA', 'tenantAdminA', 'noAccount', 'expired', 'revoked', 'unknown', 'none'];
const SCOPES_OF: Partial<Record<TokenKind, readonly Scope[]>> = {
  admin: ['admin'],
  read: ['read'],
  write: ['write'],
  metrics: ['metrics'],
  readWrite: ['read', 'write'],
  tenantA: ['read', 'write'],
  tenantAdminA: ['admin'],
  noAccount: ['read', 'write'],
};
const RESTRICTED: ReadonlySet<TokenKind> = new Set(['tenantA', 'tenantAdminA', 'noAccount']);

/** One generated request, its ids still to be picked from what exists when it runs. */
interface Draft {
  readonly op: number;
  readonly token: TokenKind;
  readonly ids: Readonly<Record<string, { readonly pick: number } | { readonly raw: string }>>;
  readonly query: ReadonlyArray<readonly [string, string]>;
  readonly body: { readonly kind: 'none' } | { readonly kind: 'json'; readonly value: unknown } | { readonly kind: 'raw'; readonly text: string; readonly type: string | undefined };
}

describe('the API, fuzzed from its OpenAPI document', () => {
  let dir: string;
  let service: Service;
  let closedPort: number;
  let operations: Operation[];
  const logs: string[] = [];
  const key = generateKey();
  const tokens = new Map<TokenKind, string | null>();
  /** Planted secrets, each of which must never be in a response. */
  const planted: string[] = [key];
  const tenant = { a: [] as number[], b: [] as number[] };
  /** Who may see which account: every account made during the run, with the token kind that made it. */
  const madeBy = new Map<number, TokenKind>();
  const deleted = new Set<number>();
  const messages: number[] = [];
  const jobs: number[] = [];
  const counts = { requests: 0, byStatus: new Map<number, number>(), pairs: new Set<string>() };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'popwire-fuzz-'));
    closedPort = await closedPortNow();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        store: join(dir, 'data'),
        http: { port: 0, authFailures: 1_000_000 },
        sync: { timeout: 1000, connectAttempts: 1, shutdownGrace: 0, concurrency: 2 },
        network: { allow: ['127.0.0.0/8', '::1', 'localhost'] },
        log: { level: 'info' },
      }),
    );
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString('utf8'));
        done();
      },
    });
    // Made first, as `popwire serve --init` would.
    await (await Store.open({ kind: 'sqlite', dir: join(dir, 'data') })).close();
    service = await startService(loadConfig({ file: join(dir, 'config.json'), env: {} }), { env: { POPWIRE_SECRET_KEY: key }, logDestination: sink });

    const secret = (what: string) => {
      const value = `planted-${what}-${randomBytes(12).toString('hex')}`;
      planted.push(value);
      return value;
    };
    const base = { host: '127.0.0.1', port: closedPort, tls: 'none' as const, allowPlaintextAuth: true, syncInterval: null };
    const hook = (name: string) => ({ url: `http://127.0.0.1:${closedPort}/hook`, secret: secret(`${name}-webhook`) });
    tenant.a.push(
      (await service.accounts.create({ ...base, name: 'Tenant A one', username: 'tenant-a-user-one', credentials: { type: 'password', password: secret('a-password') }, webhook: hook('a') })).id,
      (
        await service.accounts.create({
          ...base,
          name: 'Tenant A two',
          username: 'tenant-a-user-two',
          credentials: { type: 'oauth2', refreshToken: secret('a-refresh'), clientId: 'tenant-a-client', clientSecret: secret('a-client'), tokenUrl: `https://127.0.0.1:${closedPort}/token` },
        })
      ).id,
    );
    tenant.b.push((await service.accounts.create({ ...base, name: 'Tenant B', username: 'tenant-b-user', credentials: { type: 'password', password: secret('b-password') }, webhook: hook('b') })).id);
    for (const [name, id] of [['a', tenant.a[0]!], ['b', tenant.b[0]!]] as const) {
      messages.push(...(await service.store.messages.commit(id, [mail(`${name}-1`, plain(name)), mail(`${name}-2`, withAttachment(name))], Date.now())));
    }

    const make = async (kind: TokenKind, options: Parameters<Service['store']['tokens']['create']>[1]) => {
      const made = await service.store.tokens.create(kind, options);
      tokens.set(kind, made.token);
      return made;
    };
    for (const kind of ['admin', 'read', 'write', 'metrics', 'readWrite'] as const) await make(kind, { scopes: SCOPES_OF[kind] });
    await make('tenantA', { scopes: SCOPES_OF.tenantA, accounts: tenant.a });
    await make('tenantAdminA', { scopes: SCOPES_OF.tenantAdminA, accounts: tenant.a });
    await make('noAccount', { scopes: SCOPES_OF.noAccount, accounts: [] });
    await make('expired', { expiresAt: Date.now() - 1 });
    const revoked = await make('revoked', {});
    await service.store.tokens.revoke(revoked.id);
    tokens.set('unknown', `pw_${randomBytes(32).toString('base64url')}`);
    tokens.set('none', null);
    for (const id of [...tenant.a, ...tenant.b]) {
      const job = await call('POST', `/v1/accounts/${id}/sync`, 'admin');
      assert.equal(job.status, 202, job.text);
      jobs.push(job.json.id);
    }

    operations = await readOperations();
  });

  after(async () => {
    await service?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function call(method: string, path: string, kind: TokenKind, body?: Draft['body']) {
    const headers: Record<string, string> = {};
    const token = tokens.get(kind);
    if (token != null) headers.authorization = `Bearer ${token}`;
    let payload: string | undefined;
    if (body?.kind === 'json') {
      payload = JSON.stringify(body.value);
      headers['content-type'] = 'application/json';
    } else if (body?.kind === 'raw') {
      payload = body.text;
      if (body.type !== undefined) headers['content-type'] = body.type;
    }
    const response = await fetch(service.url + path, { method, headers, body: payload });
    const text = Buffer.from(await response.arrayBuffer()).toString('latin1');
    const json = (response.headers.get('content-type') ?? '').includes('json') && text !== '' ? JSON.parse(text) : undefined;
    return { status: response.status, text, json };
  }

  async function readOperations(): Promise<Operation[]> {
    const { json } = await call('GET', '/openapi.json', 'none');
    const out: Operation[] = [];
    for (const [path, methods] of Object.entries(json.paths as Record<string, Record<string, Record<string, unknown>>>)) {
      // Not fuzzed: POST /v1/tokens answers with a new token by design (once), and DELETE would
      // revoke the fuzzer's own tokens. Their checks are in test/console/routes.test.ts.
      if (path.startsWith('/v1/tokens')) continue;
      for (const [method, op] of Object.entries(methods)) {
        const security = op.security as Array<{ bearer?: string[] }> | undefined;
        const content = (op.requestBody as { content?: Record<string, { schema: JsonSchema }> } | undefined)?.content;
        out.push({
          method: method.toUpperCase(),
          path,
          scope: security?.[0]?.bearer?.[0] as Scope | undefined,
          params: (op.parameters as Operation['params'] | undefined) ?? [],
          body: content?.['application/json']?.schema,
        });
      }
    }
    return out;
  }

  /** What the fuzzer puts in fields where a random value would dial the internet or hide a leak. */
  const overrides = (): Overrides => ({
    host: fc.constantFrom('127.0.0.1', 'localhost', '::1', '10.0.0.1', '169.254.169.254'),
    port: fc.constantFrom(closedPort, 1, 65535),
    url: fc.constantFrom(`http://127.0.0.1:${closedPort}/hook`, `https://127.0.0.1:${closedPort}/hook`, 'http://10.0.0.1/admin', 'https://[::ffff:127.0.0.1]/x'),
    tokenUrl: fc.constantFrom(`https://127.0.0.1:${closedPort}/token`, `http://127.0.0.1:${closedPort}/token`, 'https://169.254.169.254/latest'),
    password: fuzzSecret(),
    secret: fuzzSecret(),
    clientSecret: fuzzSecret(),
    refreshToken: fuzzSecret(),
    accessToken: fuzzSecret(),
    syncInterval: fc.constantFrom(null, 3600, 86_400),
  });

  function drafts(opIndex: fc.Arbitrary<number>, token: fc.Arbitrary<TokenKind>, validOnly: boolean): fc.Arbitrary<Draft> {
    return fc.tuple(opIndex, token).chain(([op, kind]) => {
      const operation = operations[op]!;
      const ids: Record<string, fc.Arbitrary<Draft['ids'][string]>> = {};
      for (const p of operation.params.filter((q) => q.in === 'path')) {
        const pick = fc.nat().map((n) => ({ pick: n }));
        ids[p.name] = validOnly ? pick : fc.oneof({ weight: 4, arbitrary: pick }, { weight: 1, arbitrary: rawId() });
      }
      const query = operation.params
        .filter((q) => q.in === 'query')
        .map((q) => {
          const good = valid(q.schema, overrides()).map((v): ReadonlyArray<readonly [string, string]> => [[q.name, String(v)]]);
          if (validOnly) return q.required ? good : fc.oneof(good, fc.constant([]));
          const bad = fc.oneof(junk(), fc.string()).map((v): ReadonlyArray<readonly [string, string]> => [[q.name, typeof v === 'string' ? v : (JSON.stringify(v) ?? '')]]);
          return fc.oneof(good, bad, fc.constant([]));
        });
      const extra: fc.Arbitrary<ReadonlyArray<readonly [string, string]>> = validOnly ? fc.constant([]) : fc.oneof({ weight: 5, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', 'id', '__proto__', 'limit'), fc.string()).map(([k, v]): ReadonlyArray<readonly [string, string]> => [[k, v]]) });
      const body = bodies(operation, validOnly);
      return fc.record({
        op: fc.constant(op),
        token: fc.constant(kind),
        ids: fc.record(ids),
        query: fc.tuple(fc.tuple(...query), extra).map(([parts, more]) => [...parts.flat(), ...more]),
        body,
      }) as fc.Arbitrary<Draft>;
    });
  }

  function bodies(operation: Operation, validOnly: boolean): fc.Arbitrary<Draft['body']> {
    const schema = operation.body;
    const json = (value: unknown) => ({ kind: 'json' as const, value });
    if (schema === undefined) {
      // fetch sends no body with a GET.
      if (validOnly || operation.method === 'GET') return fc.constant({ kind: 'none' as const });
      return fc.oneof({ weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) }, { weight: 1, arbitrary: junk().map(json) });
    }
    const good = valid(schema, overrides()).map(json);
    if (validOnly) return good;
    const broken = fc.record({
      kind: fc.constant('raw' as const),
      text: fc.oneof(fc.constantFrom('{', '{"name":', '[]', 'null', '"x"', '{"a":1}{', '\u0000', '{"__proto__":{"admin":true}}', `{"name":"${'x'.repeat(70 * 1024)}"}`), fc.string()),
      type: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined, 'application/json; charset=latin1'),
    });
    return fc.oneof({ weight: 3, arbitrary: good }, { weight: 3, arbitrary: invalid(schema, overrides()).map(json) }, { weight: 1, arbitrary: broken });
  }

  /** The path with its ids filled in from what exists now: messages, jobs, every account (planted and made). */
  function pathOf(operation: Operation, draft: Draft): string {
    return operation.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const id = draft.ids[name]!;
      if ('raw' in id) return encodeURIComponent(id.raw);
      const pool = name === 'n' ? [1, 2, 3] : operation.path.startsWith('/v1/messages/') ? messages : operation.path.startsWith('/v1/jobs/') ? jobs : accountPool(operation);
      return String(pool[id.pick % pool.length]);
    });
  }

  /** Planted accounts are not deleted (the later requests need them): DELETE gets those made during the run, or planted ones of another tenant. */
  function accountPool(operation: Operation): number[] {
    const made = [...madeBy.keys()].filter((id) => !deleted.has(id));
    if (operation.method !== 'DELETE') return [...tenant.a, ...tenant.b, ...made];
    return made.length > 0 ? [...made, 9_999_999] : [9_999_999];
  }

  function visibleTo(kind: TokenKind, accountId: number): boolean {
    if (!RESTRICTED.has(kind)) return true;
    if (kind === 'noAccount') return madeBy.get(accountId) === 'noAccount';
    return tenant.a.includes(accountId) || madeBy.get(accountId) === kind;
  }

  async function check(draft: Draft): Promise<void> {
    const operation = operations[draft.op]!;
    let path = pathOf(operation, draft);
    // A DELETE of a planted account of tenant B, by a token of tenant A: only those may try it.
    if (operation.method === 'DELETE' && RESTRICTED.has(draft.token) && draft.ids.id !== undefined && 'pick' in draft.ids.id && draft.ids.id.pick % 2 === 0) {
      path = path.replace(/\/accounts\/\d+/, `/accounts/${tenant.b[0]}`);
    }
    const query = new URLSearchParams(draft.query.map(([k, v]): [string, string] => [k, v])).toString();
    const url = query === '' ? path : `${path}?${query}`;
    const reply = await call(operation.method, url, draft.token, draft.body);
    counts.requests++;
    counts.byStatus.set(reply.status, (counts.byStatus.get(reply.status) ?? 0) + 1);
    counts.pairs.add(`${operation.method} ${operation.path} ${draft.token}`);
    const what = `${operation.method} ${url} with the ${draft.token} token, body ${JSON.stringify(draft.body).slice(0, 300)} -> ${reply.status} ${reply.text.slice(0, 400)}`;

    // Never a 5xx.
    // The log says why (the response must not): the last request that failed.
    assert.ok(reply.status < 500, `server error: ${what}\nlogged: ${logs.filter((l) => l.includes('"request failed"')).at(-1)?.slice(0, 2000)}`);

    // Never a secret.
    for (const secret of planted) assert.equal(reply.text.includes(secret), false, `planted secret in the response: ${what}`);
    assert.doesNotMatch(reply.text, API_TOKEN, `an API token in the response: ${what}`);
    const sent = new Set(JSON.stringify(draft.body).match(FUZZ_SECRET) ?? []);
    for (const found of reply.text.match(FUZZ_SECRET) ?? []) assert.ok(sent.has(found), `a secret sent in another request is in the response: ${what}`);

    // The scope the document names, enforced; bad tokens refused.
    const scopes = SCOPES_OF[draft.token];
    if (operation.scope === undefined) {
      assert.equal(reply.status, 200, `a public route: ${what}`);
    } else if (scopes === undefined) {
      assert.equal(reply.status, 401, `a bad token: ${what}`);
      if (draft.token === 'expired') assert.match(reply.json.error.message, /expired/, what);
    } else if (!scopes.includes('admin') && !scopes.includes(operation.scope)) {
      assert.equal(reply.status, 403, `the token lacks ${operation.scope}: ${what}`);
      assert.equal(reply.json.error.code, 'FORBIDDEN', what);
      assert.match(reply.json.error.message, new RegExp(`\\b${operation.scope}\\b`), what);
    } else {
      assert.ok(reply.status !== 401 && reply.status !== 403, `the token holds ${operation.scope}: ${what}`);
    }

    // What was made, for later requests and for who may see it.
    if (reply.status === 201 && operation.path === '/v1/accounts') madeBy.set(reply.json.id, draft.token);
    if (reply.status === 202 && typeof reply.json?.id === 'number' && !jobs.includes(reply.json.id)) jobs.push(reply.json.id);
    // Deleted, but still its maker's: with keepMessages its messages, runs and jobs stay readable to it.
    if (reply.status === 204 && operation.method === 'DELETE') deleted.add(Number(/\/accounts\/(\d+)/.exec(path)?.[1]));

    // Nothing of an account outside the token's restriction.
    if (RESTRICTED.has(draft.token)) {
      const foreign = draft.token === 'noAccount' ? ['tenant-a', 'Tenant A', 'tenant-b', 'Tenant B'] : ['tenant-b', 'Tenant B'];
      for (const marker of foreign) assert.equal(reply.text.includes(marker), false, `another tenant's ${marker}: ${what}`);
      for (const id of accountIds(reply.json)) assert.ok(visibleTo(draft.token, id), `account ${id} is not the token's: ${what}`);
    }
  }

  it('never answers 5xx, never shows a secret or another tenant\'s data, and enforces every route\'s scope', async (t) => {
    const started = Date.now();
    // Every operation with every kind of token, once, with a valid request.
    for (const [op] of operations.entries()) {
      for (const kind of TOKEN_KINDS) {
        const [draft] = fc.sample(drafts(fc.constant(op), fc.constant(kind), true), { numRuns: 1, seed: op * 100 + TOKEN_KINDS.indexOf(kind) });
        await check(draft!);
      }
    }
    const sweep = counts.requests;
    assert.equal(counts.pairs.size, operations.length * TOKEN_KINDS.length);

    // Then at random, valid and invalid.
    await fc.assert(
      fc.asyncProperty(drafts(fc.nat({ max: operations.length - 1 }), tokenKinds(), false), (draft) => check(draft)),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );

    // Still up, and no request failed inside (a 500 is also logged as `request failed`).
    assert.equal((await call('GET', '/health', 'none')).status, 200);
    assert.equal(logs.join('').includes('"request failed"'), false);
    for (const secret of planted.slice(1)) assert.equal(logs.join('').includes(secret), false, 'a planted secret in the log');
    const statuses = [...counts.byStatus.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ');
    t.diagnostic(`${counts.requests} requests (${sweep} in the sweep of ${operations.length} operations x ${TOKEN_KINDS.length} token kinds) in ${Date.now() - started} ms; ${statuses}`);
  });
});

/** Account ids a response shows: every `accountId`, and the `id` of anything that looks like an account. */
function accountIds(json: unknown, out: number[] = []): number[] {
  if (Array.isArray(json)) for (const item of json) accountIds(item, out);
  else if (json !== null && typeof json === 'object') {
    const record = json as Record<string, unknown>;
    if (typeof record.accountId === 'number') out.push(record.accountId);
    if ('username' in record && 'host' in record && typeof record.id === 'number') out.push(record.id);
    for (const value of Object.values(record)) accountIds(value, out);
  }
  return out;
}

/** Valid tokens three times as often as refused ones: what a refused token gets is the same on every route. */
function tokenKinds(): fc.Arbitrary<TokenKind> {
  return fc.oneof(...TOKEN_KINDS.map((kind) => ({ weight: SCOPES_OF[kind] === undefined ? 1 : 3, arbitrary: fc.constant(kind) })));
}

function fuzzSecret(): fc.Arbitrary<string> {
  return fc.uint8Array({ minLength: 8, maxLength: 8 }).map((bytes) => `fz-secret-${Buffer.from(bytes).toString('hex')}`);
}

/** Ids that are not ids: words, signs, exponents, hex, out of range, any text. */
function rawId(): fc.Arbitrary<{ raw: string }> {
  return fc
    .oneof(fc.constantFrom('abc', '0', '-1', '1.5', '1e3', '0x1f', '9007199254740993', '99999999999999999999', ' 1', '1 ', '%00', 'null', '[]'), fc.string({ maxLength: 20 }))
    // `.` and `..` (even as %2E) are resolved by the URL parser before the request leaves: another route.
    .filter((raw) => raw !== '.' && raw !== '..')
    .map((raw) => ({ raw }));
}

function mail(uid: string, text: string): MessageToCommit {
  const bytes = Buffer.from(text);
  return { uid, listedSize: bytes.length, firstSeenAt: 1, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), headersOnly: false, summary: EMPTY_SUMMARY };
}

function plain(tenant: string): string {
  return `From: tenant-${tenant} <tenant-${tenant}@example.test>\r\nTo: x@example.test\r\nSubject: tenant-${tenant} mail\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\ntenant-${tenant} body\r\n`;
}

function withAttachment(tenant: string): string {
  const attachment = Buffer.from(`tenant-${tenant} attachment`).toString('base64');
  return [
    `From: tenant-${tenant}@example.test`,
    `Subject: tenant-${tenant} with a file`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain',
    '',
    `tenant-${tenant} text`,
    '--b',
    `Content-Type: text/plain; name="tenant-${tenant}.txt"`,
    'Content-Disposition: attachment',
    'Content-Transfer-Encoding: base64',
    '',
    attachment,
    '--b--',
    '',
  ].join('\r\n');
}

