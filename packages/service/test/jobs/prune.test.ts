/**
 * The service's history does not grow for ever (issue 12): finished jobs, finished runs and
 * delivered webhook events older than `history.keepDays` are deleted. What is still useful
 * stays: anything newer, a running run or a queued job, each account's newest run (how its last
 * sync went, however long ago), and events not delivered yet or given up.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accountFields, STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { pruneHistory } from '../../src/jobs/prune.ts';
import { GAVE_UP } from '../../src/store/webhook-events.ts';

const stores = testStores();
const DAY = 86_400_000;
const NOW = 1_800_000_000_000;
const OLD = NOW - 40 * DAY;
const RECENT = NOW - 2 * DAY;

for (const kind of STORE_KINDS) {
  describe(`pruning on ${kind}`, () => {
    it('deletes finished jobs, finished runs and delivered events past the age, and keeps the rest', async () => {
      await using store = await stores.open(kind);
      const a = await store.accounts.upsert(accountFields('a'), 1);
      const b = await store.accounts.upsert(accountFields('b'), 1);
      const run = (account: number, finished: number | null, status: 'ok' | 'failed' | 'running') =>
        store.db.insertInto('sync_runs').values({ account_id: account, started_at: (finished ?? NOW) - 1000, finished_at: finished, status }).returning('id').executeTakeFirstOrThrow();
      const oldRunA = await run(a.id, OLD, 'ok');
      const oldRunA2 = await run(a.id, OLD + 1, 'failed');
      const recentRunA = await run(a.id, RECENT, 'ok');
      const onlyRunB = await run(b.id, OLD, 'failed');
      const job = (status: 'done' | 'failed' | 'queued', finished: number | null) =>
        store.db.insertInto('sync_jobs').values({ account_id: a.id, status, reason: 'schedule', queued_at: (finished ?? NOW) - 1000, finished_at: finished }).returning('id').executeTakeFirstOrThrow();
      await job('done', OLD);
      await job('failed', OLD);
      const recentJob = await job('done', RECENT);
      const queued = await job('queued', null);
      const event = (delivered: number | null, next: number) =>
        store.db.insertInto('webhook_events').values({ account_id: a.id, url: 'https://r.test/h', type: 'message.new', body: '{}', next_attempt_at: next, delivered_at: delivered }).returning('id').executeTakeFirstOrThrow();
      await event(OLD, OLD);
      const recentEvent = await event(RECENT, RECENT);
      const pending = await event(null, OLD);
      const givenUp = await event(null, GAVE_UP);

      const counts = await pruneHistory(store, NOW - 30 * DAY);
      assert.deepEqual(counts, { jobs: 2, runs: 2, events: 1 });
      const ids = async (table: 'sync_runs' | 'sync_jobs' | 'webhook_events') => (await store.db.selectFrom(table).select('id').orderBy('id').execute()).map((r) => r.id);
      assert.deepEqual(await ids('sync_runs'), [recentRunA.id, onlyRunB.id], "each account's newest run stays, however old");
      assert.deepEqual(await ids('sync_jobs'), [recentJob.id, queued.id]);
      assert.deepEqual(await ids('webhook_events'), [recentEvent.id, pending.id, givenUp.id]);
      assert.ok(![oldRunA.id, oldRunA2.id].some((id) => id === recentRunA.id));
    });
  });
}
