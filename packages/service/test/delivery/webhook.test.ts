/**
 * Webhooks, end to end: syncs against a real Dovecot write events to the outbox, and the
 * dispatcher sends them to a real HTTP receiver, signed; failed deliveries are retried with
 * backoff and given up after the attempts allowed; a receiver that hangs holds up nothing.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { testStores } from '../../../../support/stores.ts';
import type { AccountService } from '../../src/accounts/service.ts';
import { syncFailedEvent, type MessageNewEvent, type SyncFailedEvent } from '../../src/delivery/events.ts';
import { signatureHeader, verifySignature, WebhookDispatcher, type WebhookDispatcherOptions } from '../../src/delivery/webhook.ts';
import { InProcessScheduler } from '../../src/jobs/in-process.ts';
import { createLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Store } from '../../src/store/store.ts';
import { GAVE_UP } from '../../src/store/webhook-events.ts';
import { accountService, dovecotAccount, metric, until } from '../jobs/harness.ts';
import { startReceiver, type Receiver } from './receiver.ts';

const stores = testStores();
const ACCOUNT_SECRET = 'account-webhook-secret-0123';
const DEPLOYMENT_SECRET = 'deployment-webhook-secret-4567';
let dovecot: Dovecot;
const receivers: Receiver[] = [];
before(async () => {
  dovecot = await startDovecot({ users: [{ user: 'hooked', password: 'hooked-secret' }] });
});
after(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await dovecot?.stop();
});

async function receiver(answer?: (n: number) => number | 'hang', path?: string): Promise<Receiver> {
  const r = await startReceiver(answer, path);
  receivers.push(r);
  return r;
}

const FAST: WebhookDispatcherOptions = { pollMs: 20, backoff: { baseMs: 20, maxMs: 100 } };

/** A store, accounts, metrics, a started dispatcher and a started scheduler writing to it. */
async function service(store: Store, options: WebhookDispatcherOptions = {}) {
  const accounts = accountService(store);
  const metrics = new Metrics();
  const webhooks = new WebhookDispatcher(store, accounts, { metrics, ...FAST, ...options });
  const scheduler = new InProcessScheduler({ store, accounts, metrics, webhooks, tickMs: 50 });
  webhooks.start();
  scheduler.start();
  const stop = async () => {
    await scheduler.stop(5_000);
    await webhooks.stop(500);
  };
  return { accounts, metrics, webhooks, scheduler, stop };
}

async function syncNow(scheduler: InProcessScheduler, accountId: number): Promise<void> {
  const job = await scheduler.enqueue(accountId, 'api');
  await until(async () => ['done', 'failed'].includes((await scheduler.job(job.id)).status), 'the sync job ends');
}

async function hookedAccount(accounts: AccountService, url: string, extra: Parameters<typeof dovecotAccount>[2] = {}) {
  return accounts.create(dovecotAccount(dovecot, 'hooked', { webhook: { url, secret: ACCOUNT_SECRET }, ...extra }));
}

describe('webhooks', () => {
  it('sends message.new for each new message to the account and the deployment receiver, each signed with its secret', async () => {
    const own = await receiver();
    const deployment = await receiver();
    await dovecot.setMailbox('hooked', bulkMessages(5, 700));
    await using store = await stores.open('sqlite');
    const { accounts, metrics, scheduler, stop } = await service(store, { defaultTarget: { url: deployment.url, secret: DEPLOYMENT_SECRET } });
    try {
      const { id } = await hookedAccount(accounts, own.url);
      await syncNow(scheduler, id);
      await until(() => own.received.length === 5 && deployment.received.length === 5, 'both receivers have five events');
      await dovecot.deliver('hooked', bulkMessages(1, 400)[0]!);
      await syncNow(scheduler, id);
      await until(() => own.received.length === 6 && deployment.received.length === 6, 'one more event each, for the one new message');
      await until(async () => (await metric(metrics.webhooks, { outcome: 'delivered' })) === 12, 'every delivery counted');

      const stored = (await store.messages.list({ accountId: id, limit: 100 })).messages;
      for (const [r, secret, other] of [[own, ACCOUNT_SECRET, DEPLOYMENT_SECRET], [deployment, DEPLOYMENT_SECRET, ACCOUNT_SECRET]] as const) {
        for (const request of r.received) {
          const signature = request.headers['popwire-signature'] as string;
          assert.ok(verifySignature(secret, signature, request.body), 'signed with the receiver secret');
          assert.equal(verifySignature(other, signature, request.body), false);
          assert.equal(verifySignature(secret, signature, request.body.replace('"size":', '"size":1')), false, 'a changed body fails');
          assert.equal(request.headers['content-type'], 'application/json');
          assert.equal(request.headers['popwire-event'], 'message.new');
          assert.equal(request.method, 'POST');
        }
        assert.equal(new Set(r.received.map((q) => q.headers['popwire-delivery'])).size, 6, 'a delivery id per event');
        const events = r.received.map((q) => JSON.parse(q.body) as MessageNewEvent);
        assert.deepEqual(events.map((e) => e.message.id).sort((a, b) => a - b), stored.map((m) => m.id).sort((a, b) => a - b));
        for (const event of events) {
          const message = stored.find((m) => m.id === event.message.id)!;
          assert.deepEqual(event.account, { id, name: "hooked's mailbox" });
          assert.deepEqual(
            [event.message.uid, event.message.size, event.message.subject, event.message.messageId, event.message.from?.address, event.message.hasAttachments],
            [message.uid, message.size, message.subject, message.message_id_header, message.from_address, false],
          );
          // The one shape of the API and the CLI's --json: {name, address}, ISO 8601 UTC with milliseconds.
          assert.deepEqual(event.message.from, { name: 'Alice Example', address: 'alice@example.test' });
          assert.deepEqual(event.message.to, [{ name: 'Bob Example', address: 'bob@example.test' }]);
          assert.equal(event.message.date, '2025-11-25T10:00:00.000Z');
          assert.match(event.createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        }
      }
      const outbox = await store.db.selectFrom('webhook_events').selectAll().execute();
      assert.equal(outbox.length, 12);
      assert.ok(outbox.every((e) => e.delivered_at !== null && e.attempts === 1));
    } finally {
      await stop();
    }
  });

  it('sends sync.failed for a failed run, with the run and the error but no secret', async () => {
    const own = await receiver();
    await using store = await stores.open('sqlite');
    const { accounts, scheduler, stop } = await service(store);
    try {
      const { id } = await hookedAccount(accounts, own.url, { credentials: { type: 'password', password: 'not-the-password' } });
      await syncNow(scheduler, id);
      await until(() => own.received.length === 1, 'the event arrives');
      const [run] = await store.runs.forAccount(id);
      const request = own.received[0]!;
      assert.equal(request.headers['popwire-event'], 'sync.failed');
      assert.ok(verifySignature(ACCOUNT_SECRET, request.headers['popwire-signature'] as string, request.body));
      const event = JSON.parse(request.body) as SyncFailedEvent;
      assert.deepEqual([event.type, event.account.id, event.run.id, event.run.status, event.run.error.code], ['sync.failed', id, run?.id, 'failed', 'POP3_AUTH_FAILED']);
      for (const secret of ['not-the-password', ACCOUNT_SECRET, 'hooked-secret']) assert.equal(request.body.includes(secret), false, secret);
    } finally {
      await stop();
    }
  });

  it('retries a receiver that fails twice, then delivers the same event, signed anew each time', async () => {
    const flaky = await receiver((n) => (n === 1 ? 500 : n === 2 ? 503 : 200));
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const metrics = new Metrics();
    const webhooks = new WebhookDispatcher(store, accounts, { ...FAST, metrics, defaultTarget: { url: flaky.url, secret: DEPLOYMENT_SECRET } });
    webhooks.start();
    try {
      const row = await store.accounts.get((await accounts.create(dovecotAccount(dovecot, 'hooked'))).id);
      const [eventId] = await webhooks.enqueue(row, [syncFailedEvent(row, 7, { code: 'POP3_TIMEOUT', message: 'no answer' }, Date.now())]);
      await until(async () => (await store.webhookEvents.get(eventId!))?.delivered_at != null, 'the event is delivered');
      assert.equal(flaky.received.length, 3);
      assert.deepEqual(new Set(flaky.received.map((r) => r.headers['popwire-delivery'])), new Set([String(eventId)]));
      assert.equal(new Set(flaky.received.map((r) => r.body)).size, 1, 'the same body each time');
      assert.ok(flaky.received.every((r) => verifySignature(DEPLOYMENT_SECRET, r.headers['popwire-signature'] as string, r.body)));
      const event = await store.webhookEvents.get(eventId!);
      assert.deepEqual([event?.attempts, event?.last_error], [3, null]);
      assert.equal(await metric(metrics.webhooks, { outcome: 'failed' }), 2);
      assert.equal(await metric(metrics.webhooks, { outcome: 'delivered' }), 1);
    } finally {
      await webhooks.stop();
    }
  });

  it('gives an event up after the attempts allowed (a timeout counts as one), and logs neither the secret nor the query', async () => {
    const failing = await receiver((n) => (n === 1 ? 'hang' : 500), '/hook?token=query-token-xyz');
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const metrics = new Metrics();
    let logged = '';
    const logger = createLogger('warn', new Writable({ write: (chunk, _encoding, done) => ((logged += String(chunk)), done()) }));
    const webhooks = new WebhookDispatcher(store, accounts, { ...FAST, metrics, logger, attempts: 3, timeoutMs: 200 });
    webhooks.start();
    try {
      const { id } = await accounts.create(dovecotAccount(dovecot, 'hooked', { webhook: { url: failing.url, secret: ACCOUNT_SECRET } }));
      const row = await store.accounts.get(id);
      const [eventId] = await webhooks.enqueue(row, [syncFailedEvent(row, 1, { code: 'POP3_TIMEOUT', message: 'x' }, Date.now())]);
      await until(async () => (await store.webhookEvents.get(eventId!))?.next_attempt_at === GAVE_UP, 'the event is given up');
      const event = await store.webhookEvents.get(eventId!);
      assert.deepEqual([event?.attempts, event?.delivered_at, event?.last_error], [3, null, 'HTTP 500']);
      assert.equal(failing.received.length, 3, 'the request that hung past the timeout was one of the three attempts');
      assert.deepEqual([await metric(metrics.webhooks, { outcome: 'failed' }), await metric(metrics.webhooks, { outcome: 'gave_up' })], [2, 1]);
      assert.match(logged, /webhook event given up/);
      assert.ok(logged.includes(failing.url.split('?')[0]!));
      for (const secret of [ACCOUNT_SECRET, 'query-token-xyz']) assert.equal(logged.includes(secret), false, secret);
    } finally {
      await webhooks.stop();
    }
  });

  it('a receiver that hangs does not hold up the sync; stop() cuts its requests and hands the events back', async () => {
    const stuck = await receiver(() => 'hang');
    await dovecot.setMailbox('hooked', bulkMessages(3, 500));
    await using store = await stores.open('sqlite');
    const { accounts, scheduler, webhooks, stop } = await service(store, { timeoutMs: 600_000 });
    try {
      const { id } = await hookedAccount(accounts, stuck.url);
      const job = await scheduler.enqueue(id, 'api');
      await until(async () => (await scheduler.job(job.id)).status === 'done' && stuck.hanging() === 3, 'the sync is done while three requests hang');
      assert.equal((await store.runs.forAccount(id))[0]?.status, 'ok');
      assert.equal(await store.messages.count(id), 3);
      await webhooks.stop(100);
      const events = await store.db.selectFrom('webhook_events').selectAll().execute();
      assert.equal(events.length, 3);
      assert.ok(events.every((e) => e.attempts === 0 && e.delivered_at === null && e.next_attempt_at <= Date.now()), JSON.stringify(events));
    } finally {
      await stop();
    }
  });

  it('a dead receiver (accepts, never answers) holds only its share of requests; a healthy one gets every event meanwhile', async () => {
    const dead = await receiver(() => 'hang');
    const healthy = await receiver();
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    // No timeout runs out during the test: the healthy receiver is served while the dead one still holds its requests.
    const webhooks = new WebhookDispatcher(store, accounts, { ...FAST, timeoutMs: 600_000, defaultTarget: { url: healthy.url, secret: DEPLOYMENT_SECRET } });
    webhooks.start();
    try {
      const { id } = await hookedAccount(accounts, dead.url);
      const row = await store.accounts.get(id);
      const events = Array.from({ length: 20 }, (_, i) => syncFailedEvent(row, i + 1, { code: 'POP3_TIMEOUT', message: 'x' }, Date.now()));
      await webhooks.enqueue(row, events);
      await until(async () => healthy.received.length === 20, 'the healthy receiver gets all 20 events');
      assert.equal(dead.hanging(), 4, 'the dead receiver holds its four requests (half of 8), no more');
      assert.equal(dead.received.length, 4);
    } finally {
      await webhooks.stop(100);
    }
  });

  it('a receiver that keeps failing trips its circuit breaker: nothing sent while open, one trial after the cool-down, all sent once it answers', async () => {
    let answer: number = 500;
    const flaky = await receiver(() => answer);
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    let clock = Date.now();
    const webhooks = new WebhookDispatcher(store, accounts, { ...FAST, now: () => clock, breakerCooldownMs: 30_000 });
    webhooks.start();
    const state = () => webhooks.receiverStates().find((r) => r.url === flaky.url)?.state;
    try {
      const { id } = await hookedAccount(accounts, flaky.url);
      const row = await store.accounts.get(id);
      await webhooks.enqueue(row, Array.from({ length: 10 }, (_, i) => syncFailedEvent(row, i + 1, { code: 'X', message: 'x' }, clock)));
      await until(async () => state() === 'open', 'the circuit opens');
      // The clock stands still, so no retry is due: without the breaker each of the 10 events would be tried once.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const whenOpened = flaky.received.length;
      assert.ok(whenOpened >= 3 && whenOpened <= 6, `3 failures open it (three more may have been in flight); got ${whenOpened} requests`);
      clock += 30_001;
      await until(async () => flaky.received.length === whenOpened + 1 && state() === 'open', 'one trial fails and opens the circuit again');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(flaky.received.length, whenOpened + 1, 'one trial while half-open, then nothing');
      answer = 200;
      clock += 60_001;
      await until(async () => (await store.db.selectFrom('webhook_events').select('id').where('delivered_at', 'is not', null).execute()).length === 10, 'every event delivered once the receiver answers');
      assert.equal(state(), 'closed');
    } finally {
      await webhooks.stop(100);
    }
  });

  it('never gives an event up because its secret cannot be opened: it waits, uncounted, for the key to come back', async () => {
    const hook = await receiver();
    await using store = await stores.open('sqlite');
    const withKey = accountService(store);
    const { id } = await hookedAccount(withKey, hook.url);
    const row = await store.accounts.get(id);
    // Another key ring: the account's sealed webhook secret does not open with it.
    const withoutKey = new WebhookDispatcher(store, accountService(store), FAST);
    withoutKey.start();
    let eventId: number | undefined;
    try {
      [eventId] = await withoutKey.enqueue(row, [syncFailedEvent(row, 1, { code: 'X', message: 'x' }, Date.now())]);
      await until(async () => (await store.webhookEvents.get(eventId!))?.last_error != null, 'the attempt is recorded');
    } finally {
      await withoutKey.stop(100);
    }
    const waiting = await store.webhookEvents.get(eventId!);
    assert.equal(waiting?.attempts, 0, 'not counted as an attempt');
    assert.notEqual(waiting?.next_attempt_at, GAVE_UP);
    assert.match(waiting?.last_error ?? '', /key ring/);
    assert.equal(hook.received.length, 0);
    // The key is back (the same ring as at sealing), and the hour has passed.
    const later = new WebhookDispatcher(store, withKey, { ...FAST, now: () => Date.now() + 3_600_001 });
    later.start();
    try {
      await until(async () => (await store.webhookEvents.get(eventId!))?.delivered_at != null, 'the event is delivered');
      assert.equal(hook.received.length, 1);
    } finally {
      await later.stop(100);
    }
  });

  it('sends only to http(s) URLs', async () => {
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const webhooks = new WebhookDispatcher(store, accounts, { defaultTarget: { url: 'file:///etc/passwd', secret: DEPLOYMENT_SECRET } });
    const row = { id: 1, webhook_url: 'ftp://example.test/hook', webhook_secret: 'sealed' };
    assert.deepEqual(webhooks.urlsFor(row), []);
    assert.deepEqual(await webhooks.enqueue(row, [syncFailedEvent({ id: 1, name: null }, 1, { code: 'X', message: 'x' }, 0)]), []);
    assert.deepEqual(webhooks.urlsFor({ webhook_url: 'https://example.test/hook', webhook_secret: 'sealed' }), ['https://example.test/hook']);
  });
});

describe('verifySignature', () => {
  const body = '{"type":"message.new"}';
  const now = 1_767_225_600;
  const sign = (secret: string, t: number) => signatureHeader(secret, body, t);

  it('accepts the signature of the body within the tolerance, from a string or the raw bytes', async () => {
    const header = sign('s3cret', now);
    assert.match(header, /^t=1767225600,v1=[0-9a-f]{64}$/);
    assert.ok(verifySignature('s3cret', header, body, 300, now + 299));
    assert.ok(verifySignature('s3cret', header, Buffer.from(body), 300, now - 299));
  });

  it('refuses another secret, a changed body, an old or future timestamp, and anything malformed', async () => {
    const header = sign('s3cret', now);
    assert.equal(verifySignature('other', header, body, 300, now), false);
    assert.equal(verifySignature('s3cret', header, `${body} `, 300, now), false);
    assert.equal(verifySignature('s3cret', header, body, 300, now + 301), false, 'a replay after the tolerance');
    assert.equal(verifySignature('s3cret', header, body, 300, now - 301), false);
    assert.equal(verifySignature('s3cret', header.replace('t=1767225600', 't=1767225601'), body, 300, now), false, 'a changed timestamp');
    for (const bad of [undefined, '', 'v1=abc', header.split(',')[0], header.split(',')[1], `${header},x==y`, 't=abc,v1=00']) {
      assert.equal(verifySignature('s3cret', bad, body, 300, now), false, String(bad));
    }
  });

  it('accepts any one of several v1 signatures, so that a secret can be rotated', async () => {
    const [t, v1] = (sign('new-secret', now)).split(',');
    const old = (sign('old-secret', now)).split(',')[1];
    assert.ok(verifySignature('new-secret', `${t},${old},${v1}`, body, 300, now));
    assert.ok(verifySignature('old-secret', `${t},${old},${v1}`, body, 300, now));
  });
});
