/**
 * The in-process scheduler against a real Dovecot: many accounts on one-second intervals never
 * run two syncs of one account at once, nor more than the concurrency in all, and every message
 * ends up stored once; enqueue() gives one job per account while one is queued or running.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { testStores } from '../../../../support/stores.ts';
import { AccountError } from '../../src/accounts/service.ts';
import { InProcessScheduler } from '../../src/jobs/in-process.ts';
import { JobNotFoundError } from '../../src/jobs/scheduler.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Store } from '../../src/store/store.ts';
import { accountService, countingSync, dovecotAccount, metric, observations, until } from './harness.ts';

const stores = testStores();
const MANY = Array.from({ length: 12 }, (_, i) => ({ user: `user${i}`, password: `password-${i}` }));
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ users: [...MANY, { user: 'gate', password: 'gate-secret' }] });
});
after(() => dovecot?.stop());

/** The Message-IDs stored for an account. */
async function storedIds(store: Store, accountId: number): Promise<string[]> {
  const page = await store.messages.list({ accountId, limit: 10_000 });
  return page.messages.map((m) => m.message_id_header ?? '').sort();
}

const messageIds = (messages: Buffer[]) => messages.map((m) => /^Message-ID: (\S+)/im.exec(m.toString('latin1'))![1]!).sort();

describe('InProcessScheduler', () => {
  it('syncs 12 accounts on 1 s intervals: never two runs of one account at once, never more than the concurrency, all mail stored once', async () => {
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const metrics = new Metrics();
    const mailboxes = new Map<number, Buffer[]>();
    for (const { user } of MANY) {
      const messages = bulkMessages(12, 1500);
      await dovecot.setMailbox(user, messages);
      const { id } = await accounts.create(dovecotAccount(dovecot, user, { syncInterval: 1 }));
      mailboxes.set(id, messages);
    }
    const { sync, state } = countingSync();
    const scheduler = new InProcessScheduler({ store, accounts, metrics, concurrency: 3, tickMs: 50, sync });
    scheduler.start();
    try {
      await until(() => [...mailboxes.keys()].every((id) => (state.runs.get(id) ?? 0) >= 1), 'every account ran once');
      // New mail while the schedule runs: the next runs must bring it in.
      for (const [i, { user }] of MANY.entries()) {
        const extra = Buffer.from(`Message-ID: <late-${i}@popwire.test>\r\nSubject: late\r\n\r\nlate mail\r\n`);
        await dovecot.deliver(user, extra);
        mailboxes.get([...mailboxes.keys()][i]!)!.push(extra);
      }
      await until(async () => (await store.messages.count()) === 12 * 13, 'the late mail is stored');
      await until(() => [...mailboxes.keys()].every((id) => (state.runs.get(id) ?? 0) >= 3), 'every account ran three times');
    } finally {
      await scheduler.stop(10_000);
    }

    assert.equal(state.mostPerAccount, 1, 'never two syncs of one account at once');
    assert.equal(state.most, 3, 'as many at once as the concurrency allows, and no more');
    for (const [id, messages] of mailboxes) assert.deepEqual(await storedIds(store, id), messageIds(messages));

    const runs = await store.db.selectFrom('sync_runs').selectAll().orderBy('id').execute();
    // Those running when stop() came end `stopped`, having finished cleanly.
    const stopped = runs.filter((r) => r.status === 'stopped');
    assert.ok(runs.every((r) => r.status === 'ok' || r.status === 'stopped'), JSON.stringify(runs.filter((r) => r.status !== 'ok')));
    assert.ok(stopped.length <= 3);
    // The same promise as the store sees it: an account's runs never overlap in time.
    for (const id of mailboxes.keys()) {
      const mine = runs.filter((r) => r.account_id === id);
      for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.started_at >= mine[i - 1]!.finished_at!, `runs of account ${id} overlap`);
    }
    const jobs = await store.db.selectFrom('sync_jobs').selectAll().where('status', 'in', ['done', 'failed']).execute();
    assert.equal(jobs.length, runs.length);
    assert.ok(jobs.every((j) => j.status === 'done' && j.run_id !== null && j.reason === 'schedule'));

    assert.equal(await metric(metrics.syncs, { status: 'ok' }), runs.length - stopped.length);
    assert.equal(await metric(metrics.syncs, { status: 'stopped' }), stopped.length);
    assert.equal(await metric(metrics.messages), 12 * 13);
    const stored = await store.db.selectFrom('messages').select('size').execute();
    assert.equal(await metric(metrics.bytes), stored.reduce((n, m) => n + m.size, 0));
    assert.equal(await observations(metrics.duration), runs.length);
    assert.equal(await metric(metrics.running), 0);
    assert.equal(await metric(metrics.queueDepth), scheduler.queueDepth());
    const text = await metrics.registry.getSingleMetricAsString('popwire_syncs_total');
    assert.match(text, new RegExp(`^popwire_syncs_total\\{status="ok"\\} ${runs.length - stopped.length}$`, 'm'));
  });

  it('enqueue gives the same job while one is queued or running, and a new one after', async () => {
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    await dovecot.setMailbox('gate', bulkMessages(3, 800));
    const { id } = await accounts.create(dovecotAccount(dovecot, 'gate'));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { sync, state } = countingSync();
    const metrics = new Metrics();
    const scheduler = new InProcessScheduler({ store, accounts, metrics, tickMs: 50, sync: async (request) => (await gate, sync(request)) });
    try {
      const queued = await Promise.all(Array.from({ length: 5 }, () => scheduler.enqueue(id, 'api')));
      assert.equal(new Set(queued.map((j) => j.id)).size, 1);
      assert.deepEqual([queued[0]!.status, queued[0]!.reason, queued[0]!.runId], ['queued', 'api', null]);
      assert.equal(scheduler.queueDepth(), 1);
      assert.equal(await store.jobs.countQueued(), 1);

      scheduler.start();
      await until(async () => (await scheduler.job(queued[0]!.id)).status === 'running', 'the job runs');
      assert.equal(scheduler.queueDepth(), 0);
      assert.equal(await metric(metrics.queueDepth), 0);
      const running = await scheduler.enqueue(id, 'api');
      assert.deepEqual([running.id, running.status], [queued[0]!.id, 'running']);

      open();
      await until(async () => (await scheduler.job(queued[0]!.id)).status === 'done', 'the job is done');
      const done = await scheduler.job(queued[0]!.id);
      const [run] = await store.runs.forAccount(id, 1);
      assert.deepEqual([done.runId, done.error, run?.status, run?.new_messages], [run?.id, null, 'ok', 3]);
      assert.ok(done.startedAt !== null && done.finishedAt !== null && done.finishedAt >= done.startedAt);

      const next = await scheduler.enqueue(id, 'api');
      assert.notEqual(next.id, done.id);
      await until(async () => (await scheduler.job(next.id)).status === 'done', 'the second job is done');
      assert.equal(state.runs.get(id), 2);
    } finally {
      open();
      await scheduler.stop(5_000);
    }
    await assert.rejects(scheduler.enqueue(9999, 'api'), (e) => e instanceof AccountError && e.code === 'ACCOUNT_NOT_FOUND');
    await assert.rejects(scheduler.job(9999), JobNotFoundError);
  });

  it('at start, runs the jobs an earlier process queued and fails those it left running', async () => {
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    await dovecot.setMailbox('gate', bulkMessages(2, 500));
    const { id } = await accounts.create(dovecotAccount(dovecot, 'gate'));
    const left = await store.jobs.insert(id, 'api', 1);
    await store.jobs.markRunning(left.id, 2);
    const waiting = await store.jobs.insert(id, 'api', 3);

    const scheduler = new InProcessScheduler({ store, accounts, metrics: new Metrics(), tickMs: 50 });
    // Queued before start: the waiting row is that request already.
    assert.equal((await scheduler.enqueue(id, 'api')).id, waiting.id);
    scheduler.start();
    try {
      await until(async () => (await scheduler.job(waiting.id)).status === 'done', 'the waiting job ran');
    } finally {
      await scheduler.stop(5_000);
    }
    const interrupted = await scheduler.job(left.id);
    assert.deepEqual([interrupted.status, interrupted.error], ['failed', 'interrupted: the service stopped while the sync ran']);
    assert.equal(await store.messages.count(id), 2);
  });
});
