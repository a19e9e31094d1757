/**
 * The routes the console reads that no other client needed, on SQLite and PostgreSQL:
 * GET /v1/service, GET /v1/overview/accounts, GET /v1/accounts/{id}/daily, the webhook outbox
 * (GET /v1/webhook-events, POST .../retry) and the tokens (admin only). Each reads through the
 * token's view: a token restricted to some accounts sees nothing of the others.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { registerConsole } from '../../src/console/serve-console.ts';
import type { MessageToCommit } from '../../src/store/messages.ts';
import { EMPTY_SUMMARY } from '../../src/sync/summary.ts';
import { accountBody, startApp, type TestApp } from '../http/helpers.ts';

const stores = testStores();
const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
const NO_COUNTS = { sessions: 1, newMessages: 0, alreadyHad: 0, deleted: 0, skipped: 0, bytes: 0 };

function message(uid: string): MessageToCommit {
  const bytes = Buffer.from(`Subject: ${uid}\r\n\r\n${uid}\r\n`);
  return { uid, listedSize: bytes.length, firstSeenAt: 1, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), headersOnly: false, summary: EMPTY_SUMMARY };
}

for (const kind of STORE_KINDS) {
  describe(`the console's routes on ${kind}`, () => {
    let app: TestApp;
    const id = { ok: 0, failing: 0, paused: 0, fresh: 0 };
    let reader: string;
    let restricted: string;

    before(async () => {
      app = await startApp(await stores.open(kind));
      for (const name of Object.keys(id) as Array<keyof typeof id>) {
        const made = await app.request('POST', '/v1/accounts', { body: accountBody({ host: `pop-${name}.example.test`, port: 995 }, `pw-${name}-0123456789`, { name, syncInterval: null }) });
        assert.equal(made.status, 201, made.text);
        id[name] = made.json.id;
      }
      const now = Date.now();
      await app.store.messages.commit(id.ok, [message('a'), message('b')], now);
      await app.store.runs.finish(await app.store.runs.start(id.ok, now), { ...NO_COUNTS, newMessages: 2, status: 'ok' }, now);
      await app.store.runs.finish(await app.store.runs.start(id.failing, now), { ...NO_COUNTS, status: 'failed', errorCode: 'POP3_CONNECT_FAILED', errorMessage: 'connect ECONNREFUSED' }, now);
      await app.request('POST', `/v1/accounts/${id.paused}/pause`);
      // A sync holds the ok account's lock now.
      await app.store.db.updateTable('accounts').set({ lock_owner: 'test:1:x', lock_expires: now + 60_000 }).where('id', '=', id.ok).execute();
      reader = (await app.store.tokens.create('reader', { scopes: ['read'] })).token;
      restricted = (await app.store.tokens.create('one account', { scopes: ['read', 'write'], accounts: [id.failing] })).token;
    });

    after(async () => {
      await app?.close();
      await app?.store.close();
    });

    it("says the service's version, queue depth, running syncs and what the token may do", async () => {
      await app.scheduler.enqueue(id.fresh, 'api');
      const { status, json } = await app.request('GET', '/v1/service', { token: reader });
      assert.equal(status, 200);
      assert.equal(json.version, VERSION);
      assert.equal(json.queueDepth, 1);
      assert.equal(json.accounts, 4);
      assert.equal(json.messages, 2);
      assert.deepEqual(json.runningSyncs.map((r: { accountId: number; name: string }) => [r.accountId, r.name]), [[id.ok, 'ok']]);
      assert.deepEqual(json.token.scopes, ['read']);
      assert.equal(json.token.restricted, false);
      const other = await app.request('GET', '/v1/service', { token: restricted });
      assert.deepEqual([other.json.accounts, other.json.messages, other.json.runningSyncs, other.json.token.restricted], [1, 0, [], true], "a restricted token counts only its account's");
    });

    it("gives each account's state in one word, its last run, message count and last error", async () => {
      const { status, json } = await app.request('GET', '/v1/overview/accounts', { token: reader });
      assert.equal(status, 200);
      const byId = new Map(json.accounts.map((a: { id: number }) => [a.id, a]));
      const ok = byId.get(id.ok) as Record<string, any>;
      assert.deepEqual([ok.state, ok.messageCount, ok.syncing, ok.lastError, ok.lastRun.status, ok.lastRun.newMessages], ['ok', 2, true, null, 'ok', 2]);
      const failing = byId.get(id.failing) as Record<string, any>;
      assert.deepEqual([failing.state, failing.lastError, failing.lastRun.errorCode], ['failing', 'connect ECONNREFUSED', 'POP3_CONNECT_FAILED']);
      assert.equal((byId.get(id.paused) as Record<string, any>).state, 'paused');
      assert.deepEqual([(byId.get(id.fresh) as Record<string, any>).state, (byId.get(id.fresh) as Record<string, any>).lastRun], ['new', null]);
      await app.store.db.updateTable('accounts').set({ needs_attention: 1, status_note: 'the server rejected the password' }).where('id', '=', id.fresh).execute();
      const after = (await app.request('GET', '/v1/overview/accounts')).json.accounts.find((a: { id: number }) => a.id === id.fresh);
      assert.deepEqual([after.state, after.lastError], ['needs attention', 'the server rejected the password']);
      const mine = await app.request('GET', '/v1/overview/accounts', { token: restricted });
      assert.deepEqual(mine.json.accounts.map((a: { id: number }) => a.id), [id.failing]);
    });

    it('counts the messages stored per day, every day of the range present', async () => {
      const { status, json } = await app.request('GET', `/v1/accounts/${id.ok}/daily?days=7`, { token: reader });
      assert.equal(status, 200);
      assert.equal(json.days.length, 7);
      assert.equal(json.days.at(-1).day, new Date().toISOString().slice(0, 10));
      assert.deepEqual(json.days.map((d: { messages: number }) => d.messages), [0, 0, 0, 0, 0, 0, 2]);
      assert.equal((await app.request('GET', `/v1/accounts/${id.ok}/daily`, { token: restricted })).status, 404, "another tenant's account is not there");
      assert.equal((await app.request('GET', `/v1/accounts/${id.ok}/daily?days=0`)).status, 400);
    });

    it('shows the webhook outbox by state, and retries an undelivered event now', async () => {
      const now = Date.now();
      const event = (accountId: number) => ({ accountId, url: 'https://hooks.example.test/in', type: 'message.new', body: '{}' });
      const [pending, failing, gaveUp, delivered, otherTenant] = await app.store.webhookEvents.add([event(id.ok), event(id.ok), event(id.ok), event(id.ok), event(id.failing)], now);
      await app.store.webhookEvents.scheduleRetry(failing!, now + 3_600_000, 'HTTP 500');
      await app.store.webhookEvents.giveUp(gaveUp!, 'HTTP 410 Gone');
      await app.store.webhookEvents.markDelivered(delivered!, now);
      const all = await app.request('GET', '/v1/webhook-events', { token: reader });
      assert.equal(all.status, 200);
      assert.deepEqual(all.json.counts, { pending: 2, failing: 1, 'gave-up': 1, delivered: 1 });
      assert.deepEqual(all.json.events.map((e: { id: number }) => e.id), [otherTenant, gaveUp, failing, pending], 'undelivered, newest first');
      const failed = await app.request('GET', '/v1/webhook-events?state=gave-up', { token: reader });
      assert.deepEqual(failed.json.events.map((e: { id: number; lastError: string; nextAttemptAt: null }) => [e.id, e.lastError, e.nextAttemptAt]), [[gaveUp, 'HTTP 410 Gone', null]]);

      assert.equal((await app.request('POST', `/v1/webhook-events/${gaveUp}/retry`, { token: reader })).status, 403, 'retrying needs the write scope');
      const before = Date.now();
      const retried = await app.request('POST', `/v1/webhook-events/${gaveUp}/retry`);
      assert.equal(retried.status, 200, retried.text);
      assert.equal(retried.json.state, 'failing');
      const row = await app.store.webhookEvents.get(gaveUp!);
      assert.ok(row!.next_attempt_at >= before && row!.next_attempt_at <= Date.now(), 'due now');
      assert.equal(row!.attempts, 1, 'the attempts so far are kept');
      assert.equal((await app.request('POST', `/v1/webhook-events/${delivered}/retry`)).status, 409);

      const mine = await app.request('GET', '/v1/webhook-events', { token: restricted });
      assert.deepEqual([mine.json.events.map((e: { id: number }) => e.id), mine.json.counts.pending], [[otherTenant], 1]);
      assert.equal((await app.request('POST', `/v1/webhook-events/${failing}/retry`, { token: restricted })).status, 404, "another tenant's event is not there");
    });

    it('lists, makes and revokes tokens for an admin token only, never showing a token again', async () => {
      for (const token of [reader, restricted]) assert.equal((await app.request('GET', '/v1/tokens', { token })).status, 403);
      const made = await app.request('POST', '/v1/tokens', { body: { name: 'console-made', scopes: ['read'], accounts: [id.ok] } });
      assert.equal(made.status, 201, made.text);
      assert.match(made.json.token, /^pw_/);
      const seen = await app.request('GET', `/v1/accounts/${id.ok}`, { token: made.json.token });
      assert.equal(seen.status, 200);
      assert.equal((await app.request('GET', `/v1/accounts/${id.failing}`, { token: made.json.token })).status, 404);
      const list = await app.request('GET', '/v1/tokens');
      assert.equal(list.status, 200);
      assert.ok(!list.text.includes(made.json.token), 'the list shows no token');
      const entry = list.json.tokens.find((t: { id: number }) => t.id === made.json.id);
      assert.deepEqual([entry.name, entry.scopes, entry.accounts.map((a: { id: number }) => a.id)], ['console-made', ['read'], [id.ok]]);
      assert.equal((await app.request('POST', '/v1/tokens', { body: { name: 'x', accounts: [999_999] } })).status, 404, 'an unknown account is refused');
      assert.equal((await app.request('POST', '/v1/tokens', { body: { name: 'x', expiresAt: '2000-01-01T00:00:00.000Z' } })).status, 400);
      assert.equal((await app.request('DELETE', `/v1/tokens/${made.json.id}`)).status, 204);
      assert.equal((await app.request('GET', `/v1/accounts/${id.ok}`, { token: made.json.token })).status, 401);
      assert.equal((await app.request('DELETE', `/v1/tokens/${made.json.id}`)).status, 404);
    });
  });
}

describe('the console page', () => {
  it('says how to build it when its assets are missing, and the API still answers', async () => {
    const app = Fastify();
    await registerConsole(app, '/nonexistent-popwire-console/');
    const reply = await app.inject({ method: 'GET', url: '/' });
    assert.equal(reply.statusCode, 503);
    assert.match(reply.body, /npm run build/);
    await app.close();
  });
});
