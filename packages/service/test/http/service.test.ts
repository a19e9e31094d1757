/**
 * What surrounds the routes: the OpenAPI document lists every route with its schemas, the docs
 * page is served, /health says ok or 503 and nothing else, /metrics is Prometheus text with the
 * queue depth read at scrape time, an unexpected error is a 500 that says `internal error`
 * (the details in the log only), and the log never holds a token, a password or a body.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { testStores } from '../../../../support/stores.ts';
import { accountBody, FakeScheduler, startApp, WEBHOOK_SECRET, type TestApp } from './helpers.ts';

const stores = testStores();

const ROUTES = [
  'POST /v1/accounts',
  'GET /v1/accounts',
  'GET /v1/accounts/{id}',
  'PATCH /v1/accounts/{id}',
  'DELETE /v1/accounts/{id}',
  'POST /v1/accounts/{id}/pause',
  'POST /v1/accounts/{id}/resume',
  'POST /v1/accounts/{id}/test',
  'POST /v1/accounts/{id}/sync',
  'GET /v1/jobs/{id}',
  'GET /v1/accounts/{id}/runs',
  'GET /v1/accounts/{id}/messages',
  'GET /v1/messages',
  'GET /v1/messages/{id}',
  'PATCH /v1/messages/{id}',
  'DELETE /v1/messages/{id}',
  'GET /v1/messages/{id}/raw',
  'GET /v1/messages/{id}/attachments/{n}',
  'GET /v1/messages/{id}/deliveries',
  'GET /v1/service',
  'GET /v1/overview/accounts',
  'GET /v1/accounts/{id}/daily',
  'GET /v1/webhook-events',
  'POST /v1/webhook-events/{id}/retry',
  'GET /v1/tokens',
  'POST /v1/tokens',
  'DELETE /v1/tokens/{id}',
  'GET /health',
  'GET /metrics',
];

describe('the service routes', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp(await stores.open('sqlite'));
  });
  after(async () => {
    await app?.close();
    await app?.store.close();
  });

  it('publishes an OpenAPI 3.1 document with every route, its parameters and responses', async () => {
    const reply = await app.request('GET', '/openapi.json', { token: null });
    assert.equal(reply.status, 200);
    const spec = JSON.parse(reply.text);
    assert.equal(spec.openapi, '3.1.0');
    const operations = Object.entries(spec.paths as Record<string, Record<string, { responses: Record<string, unknown>; parameters?: unknown[] }>>).flatMap(
      ([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, operation })),
    );
    assert.deepEqual(operations.map((o) => o.route).sort(), [...ROUTES].sort());
    for (const { route, operation } of operations) {
      const codes = Object.keys(operation.responses);
      assert.ok(codes.some((c) => /^2\d\d$/.test(c)), `${route} declares its success`);
      if (route !== 'GET /health') assert.ok(codes.includes('4XX'), `${route} declares its errors`);
    }
    const create = spec.paths['/v1/accounts'].post;
    const body = create.requestBody.content['application/json'].schema;
    assert.equal(body.additionalProperties, false);
    assert.deepEqual(body.required.sort(), ['credentials', 'host', 'name', 'username']);
    const view = create.responses['201'].content['application/json'].schema;
    assert.equal('credentials' in view.properties, false, 'no secret in the response schema');
    assert.deepEqual(spec.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' });
    assert.deepEqual(spec.paths['/health'].get.security, []);
  });

  it('serves the docs page', async () => {
    const reply = await app.request('GET', '/docs', { token: null });
    assert.equal(reply.status, 200);
    assert.match(reply.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(reply.text, /swagger/i);
  });

  it('says ok on /health while the store answers, and 503 with nothing more when it does not', async () => {
    const ok = await app.request('GET', '/health', { token: null });
    assert.equal(ok.status, 200);
    assert.equal(ok.text, '{"status":"ok"}');

    const store = await stores.open('sqlite');
    const broken = await startApp(store);
    await store.close();
    const down = await broken.request('GET', '/health', { token: null });
    await broken.close();
    assert.equal(down.status, 503);
    assert.equal(down.text, '{"status":"unavailable"}');
    assert.match(broken.logs(), /health check: the store does not answer/);
  });

  it('serves Prometheus text on /metrics, the queue depth read at scrape time', async () => {
    const before = await app.request('GET', '/metrics');
    assert.equal(before.status, 200);
    assert.match(before.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(before.text, /^# HELP popwire_queue_depth /m);
    assert.match(before.text, /^# TYPE popwire_syncs_total counter$/m);
    assert.match(before.text, /^popwire_queue_depth 0$/m);
    const { json: account } = await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'pop.example.test', port: 995 }, 'pw-0123456789') });
    await app.request('POST', `/v1/accounts/${account.id}/sync`);
    const after = await app.request('GET', '/metrics');
    assert.match(after.text, /^popwire_queue_depth 1$/m);
    await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=false`);
  });

  it('answers an unexpected error with a bare 500 and logs its details', async () => {
    const scheduler = new FakeScheduler();
    scheduler.job = async () => {
      throw new Error('connect to postgres://popwire:hunter2@db.internal:5432 failed');
    };
    const store = await stores.open('sqlite');
    await using failing = await startApp(store, { scheduler });
    const reply = await failing.request('GET', '/v1/jobs/1');
    await store.close();
    assert.equal(reply.status, 500);
    assert.equal(reply.text, '{"error":{"code":"INTERNAL","message":"internal error"}}');
    assert.match(failing.logs(), /hunter2@db\.internal/);
  });

  it('never logs a token, a password, a webhook secret or a request body', async () => {
    const password = 'log-canary-password-4242';
    const { json: account } = await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'pop.example.test', port: 995 }, password, { username: 'canary' }) });
    await app.request('PATCH', `/v1/accounts/${account.id}`, { body: { credentials: { type: 'password', password: `${password}-2` } } });
    await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'pop.example.test', port: 995 }, password, { username: 'canary' }) });
    await app.request('POST', '/v1/accounts', { body: { ...accountBody({ host: 'pop.example.test', port: 'x' as unknown as number }, password) } });
    await app.request('POST', '/v1/accounts', { rawBody: `{"credentials": {"password": "${password}"` });
    await app.request('GET', '/v1/accounts', { token: `pw_${password}` });
    const logs = app.logs();
    assert.match(logs, /incoming request/, 'requests are logged');
    for (const secret of [password, app.token, WEBHOOK_SECRET, '"authorization"', '"headers"', '"body"']) {
      assert.equal(logs.includes(secret), false, secret);
    }
    await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=false`);
  });

  it("keeps the Authorization header out of the log even when the service's logger would log every header", async () => {
    const store = await stores.open('sqlite');
    await using verbose = await startApp(store, { serializers: { req: pino.stdSerializers.req } });
    assert.equal((await verbose.request('GET', '/v1/accounts')).status, 200);
    await verbose.close();
    await store.close();
    assert.match(verbose.logs(), /"url":"\/v1\/accounts"/);
    assert.equal(verbose.logs().includes(verbose.token), false);
    assert.equal(verbose.logs().includes('"authorization"'), false);
  });
});
