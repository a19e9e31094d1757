/**
 * The job and outbox repositories on SQLite and PostgreSQL: a job's life from queued to done,
 * which accounts are due, and the outbox's claims (a claimed event is not claimed again until
 * its lease ends; a delivered or given-up one never).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accountFields, STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { GAVE_UP } from '../../src/store/webhook-events.ts';

const stores = testStores();

for (const kind of STORE_KINDS) {
  describe(`job store on ${kind}`, () => {
    it('takes a job from queued to running to done, and finds the active one of an account', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const job = await store.jobs.insert(account.id, 'api', 1000);
      assert.deepEqual([job.status, job.reason, job.queued_at, job.started_at], ['queued', 'api', 1000, null]);
      assert.equal((await store.jobs.active(account.id))?.id, job.id);
      assert.equal(await store.jobs.countQueued(), 1);

      await store.jobs.markRunning(job.id, 2000);
      await store.jobs.attachRun(job.id, 77);
      assert.equal(await store.jobs.countQueued(), 0);
      const running = await store.jobs.get(job.id);
      assert.deepEqual([running?.status, running?.started_at, running?.run_id], ['running', 2000, 77]);
      assert.equal((await store.jobs.active(account.id))?.id, job.id);

      await store.jobs.finish(job.id, { status: 'failed', runId: 77, error: 'the server rejected the credentials' }, 3000);
      const failed = await store.jobs.get(job.id);
      assert.deepEqual([failed?.status, failed?.finished_at, failed?.error], ['failed', 3000, 'the server rejected the credentials']);
      assert.equal(await store.jobs.active(account.id), undefined);
      assert.equal(await store.jobs.get(job.id + 1000), undefined);
    });

    it('marks failed the jobs a dead process left running, and lists the queued ones oldest first', async () => {
      await using store = await stores.open(kind);
      const a = await store.accounts.upsert(accountFields('a'), 1);
      const b = await store.accounts.upsert(accountFields('b'), 1);
      const left = await store.jobs.insert(a.id, 'schedule', 1);
      await store.jobs.markRunning(left.id, 2);
      const first = await store.jobs.insert(b.id, 'schedule', 3);
      const second = await store.jobs.insert(a.id, 'api', 4);
      assert.equal(await store.jobs.failRunning('interrupted', 5), 1);
      assert.equal((await store.jobs.get(left.id))?.status, 'failed');
      assert.deepEqual((await store.jobs.queued()).map((j) => j.id), [first.id, second.id]);
    });

    it('finds due accounts: with an interval, not paused, deleted or waiting for credentials, most overdue first', async () => {
      await using store = await stores.open(kind);
      const make = (key: string, fields: Parameters<typeof accountFields>[1]) => store.accounts.upsert(accountFields(key, { sync_interval: 60, next_sync_at: 100, ...fields }), 1);
      const later = await make('later', { next_sync_at: 500 });
      const overdue = await make('overdue', { next_sync_at: 10 });
      const due = await make('due', {});
      const never = await make('never', { next_sync_at: null });
      await make('on-request', { sync_interval: null });
      await make('paused', { paused: 1 });
      await make('attention', { needs_attention: 1 });
      await make('deleted', { deleted_at: 50 });
      const ids = (await store.jobs.dueAccounts(200, 10)).map((a) => a.id);
      // An interval with no next time yet is due; where NULL sorts differs by database.
      assert.deepEqual(ids.filter((id) => id !== never.id), [overdue.id, due.id]);
      assert.ok(ids.includes(never.id));
      assert.ok(!ids.includes(later.id));
      assert.equal((await store.jobs.dueAccounts(200, 1)).length, 1);
    });
  });

  describe(`webhook outbox on ${kind}`, () => {
    const event = (accountId: number, n: number) => ({ accountId, url: 'http://127.0.0.1:1/hook', type: 'message.new', body: `{"n":${n}}` });

    it('adds a batch in order and claims each due event once until its lease ends', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const ids = await store.webhookEvents.add(Array.from({ length: 1200 }, (_, n) => event(account.id, n)), 1000);
      assert.equal(ids.length, 1200);
      assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
      const first = await store.webhookEvents.claimDue(1000, 1000, 5000);
      assert.equal(first.length, 1000);
      assert.equal(first[0]!.body, '{"n":0}');
      const second = await store.webhookEvents.claimDue(1000, 1000, 5000);
      assert.deepEqual(second.map((e) => e.id), ids.slice(1000));
      assert.equal((await store.webhookEvents.claimDue(4999, 10, 9000)).length, 0, 'nothing is due while claimed');
      assert.equal((await store.webhookEvents.claimDue(5000, 2000, 9000)).length, 1200, 'all due again once the lease ends');
    });

    it('records delivery, a retry, a give-up and a release', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const [delivered, retried, abandoned, released] = await store.webhookEvents.add([0, 1, 2, 3].map((n) => event(account.id, n)), 0);
      await store.webhookEvents.claimDue(0, 10, 100);
      await store.webhookEvents.markDelivered(delivered!, 10);
      await store.webhookEvents.scheduleRetry(retried!, 50, 'HTTP 500');
      await store.webhookEvents.giveUp(abandoned!, 'HTTP 404');
      await store.webhookEvents.release(released!, 20);

      const row = (id: number) => store.webhookEvents.get(id);
      assert.deepEqual(pick(await row(delivered!)), { attempts: 1, delivered_at: 10, last_error: null });
      assert.deepEqual(pick(await row(retried!)), { attempts: 1, delivered_at: null, last_error: 'HTTP 500', next_attempt_at: 50 });
      assert.deepEqual(pick(await row(abandoned!)), { attempts: 1, delivered_at: null, last_error: 'HTTP 404', next_attempt_at: GAVE_UP });
      assert.deepEqual(pick(await row(released!)), { attempts: 0, delivered_at: null, last_error: null, next_attempt_at: 20 });
      assert.deepEqual((await store.webhookEvents.claimDue(20, 10, 30)).map((e) => e.id), [released]);
      assert.deepEqual((await store.webhookEvents.claimDue(10_000, 10, 20_000)).map((e) => e.id), [retried, released]);
    });
  });
}

function pick(row: { attempts: number; delivered_at: number | null; last_error: string | null; next_attempt_at: number } | undefined) {
  assert.ok(row);
  const { attempts, delivered_at, last_error, next_attempt_at } = row;
  return delivered_at === null ? { attempts, delivered_at, last_error, next_attempt_at } : { attempts, delivered_at, last_error };
}
