/**
 * Regression, found by the API fuzz test (api-fuzz.test.ts): a body string holding a lone UTF-16
 * surrogate (JSON `"\ud800"`) passed the schema. An account made with such a user name was
 * stored by SQLite with three U+FFFD in its key, while its credentials had been sealed with the
 * key as sent in their AAD: they could never be opened again, and every connection test and
 * sync of the account was a 500. Such a string is now a 400 naming the field, on every body.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testStores } from '../../../../support/stores.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

const stores = testStores();

describe('a body string that is not well-formed Unicode', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp(await stores.open('sqlite'));
  });
  after(async () => {
    await app?.close();
    await app?.store.close();
  });

  it('is a 400 naming the field, and no account is made', async () => {
    for (const [username, name] of [['\ud800', 'Alice'], ['a\udc00b', 'Alice'], ['alice', 'x\ud83d']]) {
      const rawBody = JSON.stringify(accountBody({ host: 'pop.example.test', port: 995 }, 'pw-0123456789', { username, name }));
      const reply = await app.request('POST', '/v1/accounts', { rawBody });
      const field = username === 'alice' ? 'body.name' : 'body.username';
      assert.equal(reply.status, 400, reply.text);
      assert.deepEqual(reply.json.error, { code: 'INVALID_REQUEST', message: `${field}: is not well-formed Unicode (a lone surrogate)`, field });
    }
    assert.deepEqual((await app.request('GET', '/v1/accounts')).json.accounts, []);
  });

  it('is found in a nested field and in a key too', async () => {
    const made = await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'pop.example.test', port: 995 }, 'pw-0123456789') });
    assert.equal(made.status, 201, made.text);
    const nested = await app.request('PATCH', `/v1/accounts/${made.json.id}`, { body: { credentials: { type: 'password', password: 'pw\udbff' } } });
    assert.equal(nested.json.error.field, 'body.credentials.password');
    const key = await app.request('PATCH', `/v1/accounts/${made.json.id}`, { rawBody: '{"name":"ok","\\ud800":1}' });
    assert.equal(key.status, 400, key.text);
  });

  it('passes when the surrogates are paired (an emoji)', async () => {
    const reply = await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'pop.example.test', port: 995 }, 'pw-0123456789', { username: 'bob', name: 'Bob \ud83d\udce8' }) });
    assert.equal(reply.status, 201, reply.text);
    assert.equal(reply.json.name, 'Bob 📨');
  });
});
