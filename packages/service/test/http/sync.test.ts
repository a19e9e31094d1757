/**
 * The routes that act on a mailbox: the connection test against a real Dovecot (a good and a
 * rejected password, no secret in either report), a sync queued through the scheduler (a
 * recording fake: the real scheduler is tested on its own), its job, and the record of runs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { testStores } from '../../../../support/stores.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

const stores = testStores();
let dovecot: Dovecot;
let app: TestApp;
before(async () => {
  dovecot = await startDovecot({ authFailureDelayMs: 0 });
  app = await startApp(await stores.open('sqlite'), { ca: dovecot.ca });
});
after(async () => {
  await app?.close();
  await app?.store.close();
  await dovecot?.stop();
});

const PASSWORD = () => dovecot.users.alice!.password;
const WRONG = 'wrong-password-canary-1234';

async function createAccount(password: string, extra: Parameters<typeof accountBody>[2] = {}): Promise<number> {
  const reply = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, password, extra) });
  assert.equal(reply.status, 201, reply.text);
  return reply.json.id;
}

describe('POST /v1/accounts/{id}/test', () => {
  it('reports each step of a good connection over STLS, the certificate and the mechanism', async () => {
    const id = await createAccount(PASSWORD());
    const reply = await app.request('POST', `/v1/accounts/${id}/test`);
    assert.equal(reply.status, 200, reply.text);
    const report = reply.json;
    assert.equal(report.ok, true, reply.text);
    assert.equal(report.tls, 'starttls');
    // STLS straight after the greeting, CAPA over TLS (RFC 2595 section 4) and after login (RFC 2449 section 5: it may change).
    assert.deepEqual(
      report.steps.map((s: { step: string }) => s.step),
      ['dns', 'tcp', 'greeting', 'tls', 'capa', 'login', 'capa', 'stat'],
    );
    const tls = report.steps.find((s: { step: string }) => s.step === 'tls');
    assert.ok(!Number.isNaN(Date.parse(tls.certificate.validTo)), 'dates as ISO 8601');
    assert.ok(report.steps.find((s: { step: string }) => s.step === 'login').mechanism);
    assert.equal(reply.text.includes(PASSWORD()), false);
    await app.request('DELETE', `/v1/accounts/${id}?keepMessages=false`);
  });

  it('reports a rejected password as a failed login step, without the password', async () => {
    const id = await createAccount(WRONG);
    const reply = await app.request('POST', `/v1/accounts/${id}/test`);
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.json.ok, false);
    assert.equal(reply.json.failedStep, 'login');
    assert.ok(reply.json.error.code);
    assert.equal(reply.text.includes(WRONG), false);
    await app.request('DELETE', `/v1/accounts/${id}?keepMessages=false`);
  });
});

describe('syncs, jobs and runs', () => {
  // One job per account while one is queued or running is the scheduler's doing, not the route's:
  // jobs/scheduler.test.ts and pg-boss.test.ts check it, and serve.test.ts through the API.
  it('hands every sync request to the scheduler and answers 202 with the job it returns; the job can be read back', async () => {
    const id = await createAccount(PASSWORD(), { username: 'bob' });
    const first = await app.request('POST', `/v1/accounts/${id}/sync`);
    assert.equal(first.status, 202, first.text);
    assert.equal(first.json.accountId, id);
    assert.equal(first.json.status, 'queued');
    assert.equal(first.json.reason, 'api');
    const second = await app.request('POST', `/v1/accounts/${id}/sync`);
    assert.equal(second.status, 202, second.text);
    assert.deepEqual(second.json, await app.scheduler.job(second.json.id), "the scheduler's job, as it gave it");
    assert.deepEqual(app.scheduler.enqueued.slice(-2), [
      { accountId: id, reason: 'api' },
      { accountId: id, reason: 'api' },
    ]);

    const job = await app.request('GET', `/v1/jobs/${first.json.id}`);
    assert.deepEqual(job.json, first.json);
    const missing = await app.request('GET', '/v1/jobs/424242');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'JOB_NOT_FOUND');

    const count = app.scheduler.enqueued.length;
    assert.equal((await app.request('POST', '/v1/accounts/424242/sync')).status, 404);
    assert.equal(app.scheduler.enqueued.length, count, 'nothing queued for an account that is not there');
    await app.request('DELETE', `/v1/accounts/${id}?keepMessages=false`);
  });

  it('lists past runs newest first, with their counts and errors', async () => {
    await dovecot.setMailbox('carol', bulkMessages(4, 600));
    const id = await createAccount(dovecot.users.carol!.password, { username: 'carol' });
    assert.equal((await app.request('GET', `/v1/accounts/${id}/runs`)).json.runs.length, 0);
    assert.equal((await app.sync(id)).status, 'ok');
    await app.request('PATCH', `/v1/accounts/${id}`, { body: { credentials: { type: 'password', password: WRONG } } });
    assert.equal((await app.sync(id)).status, 'failed');

    const reply = await app.request('GET', `/v1/accounts/${id}/runs`);
    assert.equal(reply.status, 200);
    const [failed, ok] = reply.json.runs;
    assert.equal(reply.json.runs.length, 2);
    assert.equal(failed.status, 'failed');
    assert.ok(failed.error.code, JSON.stringify(failed));
    assert.equal(ok.status, 'ok');
    assert.equal(ok.error, null);
    assert.deepEqual(
      { newMessages: ok.newMessages, alreadyHad: ok.alreadyHad, deleted: ok.deleted, skipped: ok.skipped, sessions: ok.sessions },
      { newMessages: 4, alreadyHad: 0, deleted: 0, skipped: 0, sessions: 1 },
    );
    assert.ok(ok.bytes > 4 * 600);
    assert.ok(Date.parse(ok.finishedAt) >= Date.parse(ok.startedAt));
    assert.match(ok.finishedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.equal(reply.text.includes(WRONG), false);
    assert.equal((await app.request('GET', `/v1/accounts/${id}/runs?limit=1`)).json.runs[0].id, failed.id);
  });
});
