/**
 * Scoped tokens: each route needs the scope its OpenAPI operation names (admin holds all), a
 * token without it gets 403 FORBIDDEN naming the scope; a token restricted to some accounts
 * finds every other account, and its messages, runs and jobs, not there (404, not 403), sees
 * only its own in lists, and gets the accounts it creates; an expired token is told so.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { authorize } from '../../src/http/access.ts';
import { requireToken } from '../../src/http/auth.ts';
import type { MessageToCommit } from '../../src/store/messages.ts';
import { SCOPES, TokenStore, type Scope } from '../../src/store/tokens.ts';
import { EMPTY_SUMMARY } from '../../src/sync/summary.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

const stores = testStores();

function message(uid: string, text: string): MessageToCommit {
  const bytes = Buffer.from(`Subject: ${text}\r\n\r\n${text}\r\n`);
  return { uid, listedSize: bytes.length, firstSeenAt: 1, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), headersOnly: false, summary: EMPTY_SUMMARY };
}

for (const kind of STORE_KINDS) {
  describe(`scoped tokens on ${kind}`, () => {
    let app: TestApp;
    /** Two tenants' accounts, with a message, a run and a job each. */
    const tenant = { a: { account: 0, message: 0, job: 0 }, b: { account: 0, message: 0, job: 0 } };
    before(async () => {
      app = await startApp(await stores.open(kind));
      for (const [name, t] of Object.entries(tenant)) {
        const made = await app.request('POST', '/v1/accounts', { body: accountBody({ host: `pop-${name}.example.test`, port: 995 }, `pw-${name}-0123456789`, { name: `Tenant ${name}` }) });
        assert.equal(made.status, 201, made.text);
        t.account = made.json.id;
        t.message = (await app.store.messages.commit(t.account, [message(`u-${name}`, `mail of tenant ${name}`)], 5))[0]!;
        await app.store.runs.start(t.account, 5);
        t.job = (await app.scheduler.enqueue(t.account, 'api')).id;
      }
    });
    after(async () => {
      await app?.close();
      await app?.store.close();
    });

    /** Every operation of the OpenAPI document with the scope it names, paths filled in with tenant a's ids. */
    async function operations(): Promise<Array<{ method: string; path: string; scope: Scope | undefined }>> {
      const { json } = await app.request('GET', '/openapi.json', { token: null });
      const ids: Record<string, number> = { id: tenant.a.account, n: 1 };
      return Object.entries(json.paths as Record<string, Record<string, { security?: Array<{ bearer?: string[] }> }>>).flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, op]) => ({
          method: method.toUpperCase(),
          // A token or webhook event of no one (404 once the scope passes): revoking a real token here would revoke the test's own.
          path: /^\/v1\/(tokens|webhook-events)\/\{id\}/.test(path)
            ? path.replace('{id}', '999999')
            : path.startsWith('/v1/messages/') || path === '/v1/jobs/{id}' ? path.replace('{id}', String(path.startsWith('/v1/jobs') ? tenant.a.job : tenant.a.message)).replace('{n}', '1') : path.replace(/\{(\w+)\}/g, (_, p: string) => String(ids[p])),
          scope: op.security?.[0]?.bearer?.[0] as Scope | undefined,
        })),
      );
    }

    it('names in the OpenAPI document the scope of every operation behind a token', async () => {
      const ops = await operations();
      const byRoute = Object.fromEntries(ops.map((o) => [`${o.method} ${o.path.replace(/\/\d+/g, '/N')}`, o.scope]));
      assert.equal(byRoute['GET /health'], undefined);
      assert.equal(byRoute['GET /metrics'], 'metrics');
      assert.equal(byRoute['GET /v1/accounts'], 'read');
      assert.equal(byRoute['POST /v1/accounts'], 'write');
      assert.equal(byRoute['PATCH /v1/accounts/N'], 'write');
      assert.equal(byRoute['POST /v1/accounts/N/sync'], 'write');
      assert.equal(byRoute['GET /v1/messages/N/raw'], 'read');
      for (const op of ops) if (op.path !== '/health') assert.ok(op.scope !== undefined && SCOPES.includes(op.scope), `${op.method} ${op.path}`);
    });

    it('lets each scope call its routes and refuses the others with 403 FORBIDDEN naming the scope', async () => {
      const ops = (await operations()).filter((o) => o.scope !== undefined);
      for (const scope of SCOPES) {
        const { token } = await app.store.tokens.create(`only ${scope}`, { scopes: [scope] });
        for (const op of ops) {
          // A body that the schema refuses: an allowed write is a 400 and changes nothing.
          const reply = await app.request(op.method, op.path, { token, ...(op.method === 'POST' || op.method === 'PATCH' ? { body: { nope: 1 } } : {}) });
          const what = `${scope} token, ${op.method} ${op.path}: ${reply.status} ${reply.text.slice(0, 200)}`;
          if (scope === 'admin' || scope === op.scope) {
            assert.notEqual(reply.status, 403, what);
            assert.notEqual(reply.status, 401, what);
          } else {
            assert.equal(reply.status, 403, what);
            assert.equal(reply.json.error.code, 'FORBIDDEN', what);
            assert.match(reply.json.error.message, new RegExp(`\\b${op.scope}\\b`), what);
          }
        }
      }
    });

    it('gives a token restricted to one account 404 for every other account, its messages, runs and job, and lists only its own', async () => {
      const { token } = await app.store.tokens.create('tenant a', { scopes: ['read', 'write'], accounts: [tenant.a.account] });
      const b = tenant.b;
      const hidden: Array<[string, string, unknown?]> = [
        ['GET', `/v1/accounts/${b.account}`],
        ['PATCH', `/v1/accounts/${b.account}`, { name: 'taken over' }],
        ['POST', `/v1/accounts/${b.account}/pause`],
        ['POST', `/v1/accounts/${b.account}/test`],
        ['POST', `/v1/accounts/${b.account}/sync`],
        ['GET', `/v1/accounts/${b.account}/runs`],
        ['GET', `/v1/accounts/${b.account}/messages`],
        ['GET', `/v1/messages/${b.message}`],
        ['GET', `/v1/messages/${b.message}/raw`],
        ['GET', `/v1/messages/${b.message}/attachments/1`],
        ['GET', `/v1/jobs/${b.job}`],
        ['DELETE', `/v1/accounts/${b.account}?keepMessages=false`],
      ];
      for (const [method, path, body] of hidden) {
        const reply = await app.request(method, path, { token, ...(body === undefined ? {} : { body }) });
        assert.equal(reply.status, 404, `${method} ${path}: ${reply.text}`);
        assert.equal(reply.text.includes('Tenant b') || reply.text.includes('tenant b'), false, `${method} ${path}`);
      }
      // Nothing of b was changed or deleted.
      const admin = await app.request('GET', `/v1/accounts/${b.account}`);
      assert.equal(admin.json.name, 'Tenant b');
      assert.equal(admin.json.paused, false);

      const list = await app.request('GET', '/v1/accounts', { token });
      assert.deepEqual(list.json.accounts.map((a: { id: number }) => a.id), [tenant.a.account]);
      const own = await app.request('GET', `/v1/messages/${tenant.a.message}/raw`, { token });
      assert.equal(own.status, 200);
      assert.match(own.text, /mail of tenant a/);
      assert.equal((await app.request('GET', `/v1/jobs/${tenant.a.job}`, { token })).status, 200);
      assert.equal((await app.request('GET', `/v1/accounts/${tenant.a.account}/runs`, { token })).json.runs.length, 1);
    });

    it('adds an account a restricted token creates to its accounts, and refuses a mailbox another tenant has', async () => {
      const { id, token } = await app.store.tokens.create('tenant c', { scopes: ['read', 'write'], accounts: [] });
      assert.deepEqual((await app.request('GET', '/v1/accounts', { token })).json.accounts, []);
      const made = await app.request('POST', '/v1/accounts', { token, body: accountBody({ host: 'pop-c.example.test', port: 995 }, 'pw-c-0123456789', { name: 'Tenant c' }) });
      assert.equal(made.status, 201, made.text);
      assert.deepEqual((await app.request('GET', '/v1/accounts', { token })).json.accounts.map((a: { id: number }) => a.id), [made.json.id]);
      const listed = (await app.store.tokens.list()).find((t) => t.id === id)!;
      assert.deepEqual(listed.accounts, [{ id: made.json.id, key: 'alice@pop-c.example.test:995' }]);

      const taken = await app.request('POST', '/v1/accounts', { token, body: accountBody({ host: 'pop-b.example.test', port: 995 }, 'other-password-0123', { name: 'Mine now' }) });
      assert.equal(taken.status, 409, taken.text);
      assert.equal((await app.request('GET', `/v1/accounts/${tenant.b.account}`)).json.name, 'Tenant b');
    });

    it('sees no account once every account it was given is deleted, rather than all of them', async () => {
      const extra = await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'pop-d.example.test', port: 995 }, 'pw-d-0123456789') });
      const { token } = await app.store.tokens.create('tenant d', { scopes: ['read'], accounts: [extra.json.id] });
      assert.equal((await app.request('DELETE', `/v1/accounts/${extra.json.id}?keepMessages=false`)).status, 204);
      assert.deepEqual((await app.request('GET', '/v1/accounts', { token })).json.accounts, []);
    });

    it('refuses an expired token with a 401 that says it expired', async () => {
      let now = Date.now();
      const tokens = new TokenStore(app.store.db, () => now);
      const { token } = await tokens.create('short', { expiresAt: now + 1_000 });
      assert.equal((await tokens.check(token)).ok, true);
      now += 1_000;
      const check = await tokens.check(token);
      assert.deepEqual(check, { ok: false, reason: 'expired', expiredAt: now });
      const { token: gone } = await app.store.tokens.create('gone', { expiresAt: Date.now() - 1 });
      const reply = await app.request('GET', '/v1/accounts', { token: gone });
      assert.equal(reply.status, 401);
      assert.equal(reply.json.error.code, 'UNAUTHORIZED');
      assert.match(reply.json.error.message, /expired/);
      const unknown = await app.request('GET', '/v1/accounts', { token: `pw_${'B'.repeat(43)}` });
      assert.doesNotMatch(unknown.json.error.message, /expired/);
    });
  });
}

describe('a restricted view of the store', () => {
  it('leaves the database open when it is closed: the database is its parent store\'s', async () => {
    await using store = await stores.open('sqlite');
    const view = store.restrictedTo({ kind: 'token', tokenId: 1 });
    await view.close();
    assert.deepEqual(await store.accounts.list(), []);
    assert.deepEqual(await view.accounts.list(), []);
  });
});

describe('route scope declarations', () => {
  it('refuses to register a route behind the token check that declares no scope', async () => {
    await using store = await stores.open('sqlite');
    const app = Fastify();
    void app.register(async (secured) => {
      secured.addHook('onRequest', requireToken(store.tokens));
      authorize(secured, { store, accounts: undefined as never });
      secured.get('/v1/forgotten', async () => ({ all: 'of it' }));
    });
    await assert.rejects(async () => app.ready(), /GET \/v1\/forgotten declares no scope/);
    await app.close();
  });
});
