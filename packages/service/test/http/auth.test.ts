/**
 * Bearer tokens: every /v1 route and /metrics refuse a request without a valid token (missing,
 * wrong, malformed, revoked) with a JSON 401 that holds no data, before the body is read;
 * /health, /openapi.json and /docs need none. The token store keeps only hashes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { testStores } from '../../../../support/stores.ts';
import { TokenStore } from '../../src/store/tokens.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

const stores = testStores();

describe('bearer tokens', () => {
  let app: TestApp;
  let accountId: number;
  before(async () => {
    app = await startApp(await stores.open('sqlite'));
    accountId = (await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'pop.example.test', port: 995 }, 'pw-0123456789', { name: 'Secret Name' }) })).json.id;
  });
  after(async () => {
    await app?.close();
    await app?.store.close();
  });

  /** Every operation of the OpenAPI document, with 1 for each path parameter. */
  async function operations(): Promise<Array<[string, string]>> {
    const { json } = await app.request('GET', '/openapi.json', { token: null });
    return Object.entries(json.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method): [string, string] => [method.toUpperCase(), path.replace(/\{[^}]+\}/g, String(accountId))]),
    );
  }

  function assertUnauthorized(reply: Awaited<ReturnType<TestApp['request']>>, what: string) {
    assert.equal(reply.status, 401, `${what}: ${reply.text}`);
    assert.equal(reply.json?.error?.code, 'UNAUTHORIZED', what);
    assert.deepEqual(Object.keys(reply.json), ['error'], `${what}: nothing but the error`);
    assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer/, what);
    assert.equal(reply.text.includes('Secret Name'), false, what);
  }

  it('refuses every /v1 route and /metrics without a token; /health needs none', async () => {
    const all = await operations();
    assert.ok(all.length >= 15, `${all.length} operations`);
    for (const [method, path] of all) {
      const reply = await app.request(method, path, { token: null });
      if (path === '/health') assert.equal(reply.status, 200);
      else assertUnauthorized(reply, `${method} ${path}`);
    }
  });

  it('refuses a wrong, malformed or foreign token the same way', async () => {
    const { token } = app;
    for (const authorization of [
      `Bearer pw_${'A'.repeat(43)}`,
      `Bearer ${token}x`,
      `Bearer ${token.slice(0, -1)}`,
      `Basic ${Buffer.from(`user:${token}`).toString('base64')}`,
      'Bearer',
      `Bearer ${token} ${token}`,
      token,
      `Bearer ${createHash('sha256').update(token).digest('hex')}`,
    ]) {
      const reply = await app.request('GET', '/v1/accounts', { token: null, headers: { authorization } });
      assertUnauthorized(reply, authorization);
    }
    const ok = await app.request('GET', '/v1/accounts', { token: null, headers: { authorization: `bearer  ${token}` } });
    assert.equal(ok.status, 200, 'the scheme is case-insensitive (RFC 7235)');
  });

  it('checks the token before the body: a bad body without a token is a 401, not a 400', async () => {
    const reply = await app.request('POST', '/v1/accounts', { token: null, rawBody: '{"port": "not json' });
    assertUnauthorized(reply, 'bad body');
  });

  it('stops accepting a token once revoked', async () => {
    const { id, token } = await app.store.tokens.create('ci');
    assert.equal((await app.request('GET', '/v1/accounts', { token })).status, 200);
    assert.equal((await app.request('GET', '/metrics', { token })).status, 200);
    assert.equal(await app.store.tokens.revoke(id), true);
    assertUnauthorized(await app.request('GET', '/v1/accounts', { token }), 'revoked');
    assertUnauthorized(await app.request('GET', '/metrics', { token }), 'revoked, /metrics');
    assert.equal(await app.store.tokens.revoke(id), false);
  });

  it('serves /openapi.json and the docs page without a token', async () => {
    const spec = await app.request('GET', '/openapi.json', { token: null });
    assert.equal(spec.status, 200);
    const docs = await app.request('GET', '/docs', { token: null });
    assert.equal(docs.status, 200);
    assert.match(docs.headers.get('content-type') ?? '', /^text\/html/);
  });
});

describe('TokenStore', () => {
  it('stores only the SHA-256 of a token, and lists tokens without it', async () => {
    await using store = await stores.open('sqlite');
    const { id, token } = await store.tokens.create('deploy');
    assert.match(token, /^pw_[A-Za-z0-9_-]{43}$/);
    const rows = await store.db.selectFrom('api_tokens').selectAll().execute();
    assert.deepEqual(
      rows.map((r) => r.token_hash),
      [createHash('sha256').update(token).digest('hex')],
    );
    const listed = await store.tokens.list();
    assert.deepEqual(listed.map((t) => ({ id: t.id, name: t.name })), [{ id, name: 'deploy' }]);
    assert.equal(JSON.stringify(listed).includes(token), false);
    assert.equal(JSON.stringify(listed).includes(rows[0]!.token_hash), false);
  });

  it('records when a token was last used, at most once a minute', async () => {
    await using store = await stores.open('sqlite');
    let now = 1_000_000;
    const tokens = new TokenStore(store.db, () => now);
    const { token } = await tokens.create('ci');
    const lastUsed = async () => (await tokens.list())[0]!.lastUsedAt;
    assert.equal(await lastUsed(), null);
    assert.equal(await tokens.verify(token), true);
    assert.equal(await lastUsed(), 1_000_000);
    now += 59_000;
    await tokens.verify(token);
    assert.equal(await lastUsed(), 1_000_000);
    now += 1_000;
    await tokens.verify(token);
    assert.equal(await lastUsed(), 1_060_000);
    assert.equal(await tokens.verify('pw_nope'), false);
    assert.equal(await tokens.verify(''), false);
  });
});
