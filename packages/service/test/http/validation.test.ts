/**
 * Bad requests get a 400 (or 413, 415) with a JSON error naming the field, never a 500, and
 * change nothing. Bodies are checked as sent: a number where a string belongs is wrong, not
 * converted; path and query parameters, which are text, are converted first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testStores } from '../../../../support/stores.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

const stores = testStores();
const SERVER = { host: 'pop.example.test', port: 995 };
const good = () => accountBody(SERVER, 'correct horse battery staple', { tls: 'implicit' });

/** `good()` with one change; `undefined` removes the property. */
function bodyWith(change: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = { ...good() };
  for (const [key, value] of Object.entries(change)) {
    if (value === undefined) delete body[key];
    else body[key] = value;
  }
  return body;
}

const BAD_BODIES: Array<[string, Record<string, unknown>, string]> = [
  ['a port given as a string', bodyWith({ port: '995' }), 'body.port'],
  ['a name given as a number', bodyWith({ name: 1 }), 'body.name'],
  ['paused given as a string', bodyWith({ paused: 'true' }), 'body.paused'],
  ['an interval given as a string', bodyWith({ syncInterval: '60' }), 'body.syncInterval'],
  ['a missing user name', bodyWith({ username: undefined }), 'body.username'],
  ['missing credentials', bodyWith({ credentials: undefined }), 'body.credentials'],
  ['a password credential without its password', bodyWith({ credentials: { type: 'password' } }), 'body.credentials.password'],
  ['a password with a line break', bodyWith({ credentials: { type: 'password', password: 'a\r\nDELE 1' } }), 'body.credentials.password'],
  ['an unknown TLS mode', bodyWith({ tls: 'ssl' }), 'body.tls'],
  ['an unknown mechanism', bodyWith({ auth: 'NTLM' }), 'body.auth'],
  ['port 70000', bodyWith({ port: 70000 }), 'body.port'],
  ['port 0', bodyWith({ port: 0 }), 'body.port'],
  ['a fractional port', bodyWith({ port: 99.5 }), 'body.port'],
  ['an interval of 0 seconds', bodyWith({ syncInterval: 0 }), 'body.syncInterval'],
  ['an interval under the 60-second floor', bodyWith({ syncInterval: 1 }), 'body.syncInterval'],
  ['an extra property', bodyWith({ admin: true }), 'body.admin'],
  ['an extra property in the credentials', bodyWith({ credentials: { type: 'password', password: 'x', user: 'root' } }), 'body.credentials.user'],
  ['an unknown retention policy', bodyWith({ policy: { retention: 'forever' } }), 'body.policy.retention'],
  ['keep without its days', bodyWith({ policy: { retention: 'keep' } }), 'body.policy.keepDays'],
  ['a short webhook secret', bodyWith({ webhook: { url: 'https://h.example.test/', secret: 'short' } }), 'body.webhook.secret'],
  ['a webhook that is not http(s)', bodyWith({ webhook: { url: 'file:///etc/passwd', secret: 'x'.repeat(16) } }), 'body.webhook.url'],
  ['a host with a space', bodyWith({ host: 'pop example.test' }), 'body.host'],
];

describe('request validation', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp(await stores.open('sqlite'));
  });
  after(async () => {
    await app?.close();
    await app?.store.close();
  });

  for (const [what, body, field] of BAD_BODIES) {
    it(`refuses ${what} with a 400 naming ${field}`, async () => {
      const reply = await app.request('POST', '/v1/accounts', { body });
      assert.equal(reply.status, 400, reply.text);
      assert.equal(reply.json.error.code, 'INVALID_REQUEST');
      assert.equal(reply.json.error.field, field);
      assert.ok(reply.json.error.message.startsWith(field), reply.json.error.message);
      assert.equal(reply.text.includes('correct horse'), false, 'the password is not echoed');
    });
  }

  it('accepts the good body, and created nothing for any of the bad ones', async () => {
    assert.equal((await app.request('GET', '/v1/accounts')).json.accounts.length, 0);
    const created = await app.request('POST', '/v1/accounts', { body: good() });
    assert.equal(created.status, 201, created.text);
    await app.request('DELETE', `/v1/accounts/${created.json.id}?keepMessages=false`);
  });

  it('refuses what is not a JSON object: bad JSON, an array, null, no body, another media type, too large', async () => {
    const cases: Array<[string, Parameters<TestApp['request']>[2], number, string]> = [
      ['bad JSON', { rawBody: '{"name": ' }, 400, 'INVALID_REQUEST'],
      ['an array', { body: [good()] }, 400, 'INVALID_REQUEST'],
      ['null', { rawBody: 'null' }, 400, 'INVALID_REQUEST'],
      ['no body', {}, 400, 'INVALID_REQUEST'],
      ['text/plain', { rawBody: JSON.stringify(good()), headers: { 'content-type': 'text/plain' } }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['1 MB', { body: bodyWith({ name: 'x'.repeat(1_000_000) }) }, 413, 'PAYLOAD_TOO_LARGE'],
    ];
    for (const [what, options, status, code] of cases) {
      const reply = await app.request('POST', '/v1/accounts', options);
      assert.equal(reply.status, status, `${what}: ${reply.text}`);
      assert.equal(reply.json.error.code, code, what);
    }
    const missing = await app.request('POST', '/v1/accounts', {});
    assert.equal(missing.json.error.field, 'body');
  });

  it('says an interval under the floor is refused because of sync.minInterval, on create and on change', async () => {
    const created = await app.request('POST', '/v1/accounts', { body: bodyWith({ syncInterval: 59 }) });
    assert.equal(created.status, 400);
    assert.match(created.json.error.message, /^body\.syncInterval: must be at least 60 seconds \(the service's sync\.minInterval\)/);
    const { json: account } = await app.request('POST', '/v1/accounts', { body: bodyWith({ syncInterval: 60 }) });
    assert.equal(account.syncInterval, 60);
    const changed = await app.request('PATCH', `/v1/accounts/${account.id}`, { body: { syncInterval: 5 } });
    assert.equal(changed.status, 400);
    assert.equal(changed.json.error.field, 'body.syncInterval');
    assert.match(changed.json.error.message, /sync\.minInterval/);
    assert.equal((await app.request('GET', `/v1/accounts/${account.id}`)).json.syncInterval, 60, 'unchanged');
    await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=false`);
  });

  it('says an empty JSON body is empty, and runs a route that takes no body when it gets an empty one', async () => {
    for (const rawBody of ['', '\n', ' \r\n']) {
      for (const [method, path] of [['POST', '/v1/accounts'], ['PATCH', '/v1/accounts/1']] as const) {
        const reply = await app.request(method, path, { rawBody });
        assert.equal(reply.status, 400, `${method} ${JSON.stringify(rawBody)}: ${reply.text}`);
        assert.equal(reply.json.error.field, 'body');
        assert.match(reply.json.error.message, /^body: the request body is empty; this request needs a JSON object/);
      }
    }
    const { json: account } = await app.request('POST', '/v1/accounts', { body: good() });
    for (const rawBody of ['', '\n']) {
      const paused = await app.request('POST', `/v1/accounts/${account.id}/pause`, { rawBody });
      assert.equal(paused.status, 200, paused.text);
      assert.equal(paused.json.paused, true);
    }
    await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=false`);
  });

  it('refuses a change of what names the mailbox, and a bad change', async () => {
    const { json: account } = await app.request('POST', '/v1/accounts', { body: good() });
    for (const [body, field] of [
      [{ host: 'other.example.test' }, 'body.host'],
      [{ port: 110 }, 'body.port'],
      [{ username: 'bob' }, 'body.username'],
      [{ paused: 1 }, 'body.paused'],
      [{ webhook: { url: 'https://h.example.test/' } }, 'body.webhook.secret'],
    ] as const) {
      const reply = await app.request('PATCH', `/v1/accounts/${account.id}`, { body });
      assert.equal(reply.status, 400, JSON.stringify(body));
      assert.equal(reply.json.error.field, field);
    }
    assert.deepEqual((await app.request('GET', `/v1/accounts/${account.id}`)).json, account, 'unchanged');
    await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=false`);
  });

  it('refuses an id that is not a positive integer, naming the path parameter', async () => {
    for (const id of ['abc', '1.5', '-1', '0', '1e400', '99999999999999999999', '%20']) {
      for (const path of [`/v1/accounts/${id}`, `/v1/messages/${id}/raw`, `/v1/jobs/${id}`]) {
        const reply = await app.request('GET', path);
        assert.equal(reply.status, 400, `${path}: ${reply.text}`);
        assert.equal(reply.json.error.field, 'params.id', path);
      }
    }
  });

  it('converts query parameters from text, and refuses one that does not convert', async () => {
    const { json: account } = await app.request('POST', '/v1/accounts', { body: good() });
    const bad = await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=perhaps`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.field, 'querystring.keepMessages');
    const missing = await app.request('DELETE', `/v1/accounts/${account.id}`);
    assert.equal(missing.json.error.field, 'querystring.keepMessages');
    assert.equal((await app.request('GET', `/v1/accounts/${account.id}/runs?limit=5`)).status, 200);
    assert.equal((await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=false`)).status, 204);
  });
});
