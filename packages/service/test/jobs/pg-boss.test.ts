/**
 * The pg-boss scheduler: two schedulers ("processes", each with its own store connection and
 * pg-boss) on one real PostgreSQL database, a real Dovecot behind them. Ten accounts on one-second
 * intervals are never synced twice at once across both, every message is stored once, both do
 * some of the work; enqueue() gives one job across both while one is queued or running; stop()
 * lets a running sync end cleanly; a job left active by a process that is gone is failed and its
 * account synced again; a `popwire serve` SIGKILLed mid-sync has its run closed `interrupted` and
 * its account taken up by the other process once the (two-second) lease runs out.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { startFaultProxy } from '../../../../support/fault-proxy.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { testStores } from '../../../../support/stores.ts';
import { SecretBox } from '../../src/accounts/secrets.ts';
import { AccountService } from '../../src/accounts/service.ts';
import { PgBossScheduler } from '../../src/jobs/pg-boss.ts';
import type { SyncFunction } from '../../src/jobs/runner.ts';
import { Metrics } from '../../src/metrics.ts';
import type { StoreLocation } from '../../src/store/database.ts';
import { Store } from '../../src/store/store.ts';
import { syncAccount } from '../../src/sync/index.ts';
import { spawnPopwire } from '../cli/popwire.ts';
import { countingSync, dovecotAccount, metric, until } from './harness.ts';

const stores = testStores();
const MANY = Array.from({ length: 10 }, (_, i) => ({ user: `user${i}`, password: `password-${i}` }));
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ users: [...MANY, { user: 'gate', password: 'gate-secret' }, { user: 'big', password: 'big-secret' }, { user: 'crash', password: 'crash-secret' }] });
});
after(() => dovecot?.stop());

/** One "process": its own store connection, account service (over the shared key) and scheduler. */
interface Instance {
  readonly store: Store;
  readonly accounts: AccountService;
  readonly metrics: Metrics;
  readonly scheduler: PgBossScheduler;
}

/** `count` instances on one fresh database (or `location`), closed (scheduler, then store) when the test ends. */
async function instances(count: number, sync: (i: number) => SyncFunction | undefined, concurrency = 2, shared?: { location: StoreLocation; key: Buffer; leaseMs?: number }): Promise<Instance[] & AsyncDisposable> {
  const location = shared?.location ?? (await stores.location('postgres'));
  const box = new SecretBox([shared?.key ?? randomBytes(32)]);
  const list: Instance[] = [];
  for (let i = 0; i < count; i++) {
    const store = await Store.open(location);
    const accounts = new AccountService(store, box, { minInterval: 1 });
    const metrics = new Metrics();
    const scheduler = new PgBossScheduler({ store, accounts, metrics, concurrency, tickMs: 100, pollingSeconds: 0.5, sync: sync(i), leaseMs: shared?.leaseMs });
    list.push({ store, accounts, metrics, scheduler });
  }
  return Object.assign(list, {
    async [Symbol.asyncDispose]() {
      await Promise.all(list.map((x) => x.scheduler.stop(5_000)));
      await Promise.all(list.map((x) => x.store.close()));
    },
  });
}

const messageIds = (messages: Buffer[]) => messages.map((m) => /^Message-ID: (\S+)/im.exec(m.toString('latin1'))![1]!).sort();

async function storedIds(store: Store, accountId: number): Promise<string[]> {
  const page = await store.messages.list({ accountId, limit: 10_000 });
  return page.messages.map((m) => m.message_id_header ?? '').sort();
}

/**
 * After both stopped: one job per run, each done with its run (none queued twice, none refused by
 * the sync lock, none failed); the rest still queued, each with its pg-boss job waiting for the
 * next process. Returns the jobs.
 */
async function settledJobs(store: Store, runs: number) {
  const jobs = await store.db.selectFrom('sync_jobs').selectAll().orderBy('id').execute();
  const waiting = jobs.filter((j) => j.status === 'queued');
  const ended = jobs.filter((j) => j.status !== 'queued');
  assert.ok(ended.every((j) => j.status === 'done' && j.run_id !== null), JSON.stringify(ended.filter((j) => j.status !== 'done')));
  assert.equal(ended.length, runs, 'one job per run');
  const { rows } = await sql<{ job_id: number }>`select (data->>'jobId')::int as job_id from pgboss.job where name = 'popwire-sync' and state = 'created' order by 1`.execute(store.db);
  assert.deepEqual(rows.map((r) => r.job_id), waiting.map((j) => j.id), 'the queued jobs wait in the queue');
  return jobs;
}

describe('PgBossScheduler', () => {
  it('two schedulers on one database sync 10 accounts on 1 s intervals: never two runs of one account at once across both, all mail stored once, both did work', async () => {
    // One counter across both instances: runs in flight per account, wherever they run.
    const { sync, state } = countingSync();
    const ranBy = [0, 0];
    await using both = await instances(2, (i) => async (request) => (ranBy[i]!++, sync(request)));
    const [a, b] = [both[0]!, both[1]!];
    const mailboxes = new Map<number, Buffer[]>();
    for (const { user } of MANY) {
      const messages = bulkMessages(10, 1500);
      await dovecot.setMailbox(user, messages);
      const { id } = await a.accounts.create(dovecotAccount(dovecot, user, { syncInterval: 1 }));
      mailboxes.set(id, messages);
    }
    a.scheduler.start();
    b.scheduler.start();
    const ids = [...mailboxes.keys()];
    await until(() => ids.every((id) => (state.runs.get(id) ?? 0) >= 1), 'every account ran once');
    for (const [i, { user }] of MANY.entries()) {
      const extra = Buffer.from(`Message-ID: <late-${i}@popwire.test>\r\nSubject: late\r\n\r\nlate mail\r\n`);
      await dovecot.deliver(user, extra);
      mailboxes.get(ids[i]!)!.push(extra);
    }
    await until(async () => (await a.store.messages.count()) === 10 * 11, 'the late mail is stored');
    await until(() => ids.every((id) => (state.runs.get(id) ?? 0) >= 3), 'every account ran three times');
    await Promise.all([a.scheduler.stop(10_000), b.scheduler.stop(10_000)]);

    assert.equal(state.mostPerAccount, 1, 'never two syncs of one account at once, across both schedulers');
    assert.ok(state.most <= 4, `at most 2 x concurrency at once; saw ${state.most}`);
    assert.ok(ranBy[0]! > 0 && ranBy[1]! > 0, `both schedulers ran syncs: ${ranBy.join(' and ')}`);
    for (const [id, messages] of mailboxes) assert.deepEqual(await storedIds(a.store, id), messageIds(messages));

    const runs = await a.store.db.selectFrom('sync_runs').selectAll().orderBy('id').execute();
    assert.ok(runs.every((r) => r.status === 'ok' || r.status === 'stopped'), JSON.stringify(runs.filter((r) => r.status !== 'ok')));
    for (const id of ids) {
      const mine = runs.filter((r) => r.account_id === id);
      for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.started_at >= mine[i - 1]!.finished_at!, `runs of account ${id} overlap`);
    }
    // One job row per run: no job was queued twice, none failed or was left behind.
    const jobs = await settledJobs(a.store, runs.length);
    assert.ok(jobs.every((j) => j.reason === 'schedule'));
    assert.equal((await metric(a.metrics.syncs, { status: 'ok' })) + (await metric(b.metrics.syncs, { status: 'ok' })), runs.filter((r) => r.status === 'ok').length);
    assert.equal((await metric(a.metrics.messages)) + (await metric(b.metrics.messages)), 10 * 11);
  });

  it('shares the work with a real `popwire serve` child (POPWIRE_JOBS_ENGINE=pg-boss) on the same database: runs never overlap, all mail stored once', async () => {
    const location = await stores.location('postgres');
    assert.equal(location.kind, 'postgres');
    const key = randomBytes(32);
    const { sync, state } = countingSync();
    await using one = await instances(1, () => sync, 2, { location, key });
    const a = one[0]!;
    const ids: number[] = [];
    for (const { user } of MANY) {
      await dovecot.setMailbox(user, bulkMessages(8, 1200));
      ids.push((await a.accounts.create(dovecotAccount(dovecot, user, { syncInterval: 1 }))).id);
    }
    const env = { POPWIRE_STORE: location.kind === 'postgres' ? location.url : '', POPWIRE_JOBS_ENGINE: 'pg-boss', POPWIRE_SECRET_KEY: key.toString('hex'), POPWIRE_HTTP_PORT: '0', POPWIRE_NETWORK_ALLOW: '127.0.0.1', POPWIRE_LOG_LEVEL: 'warn', POPWIRE_SYNC_MIN_INTERVAL: '1' };
    const child = spawnPopwire(['serve'], { env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    try {
      await until(() => /listening on http/.test(stderr) || child.exitCode !== null, 'popwire serve listens');
      assert.equal(child.exitCode, null, stderr);
      a.scheduler.start();
      const runsOf = async () => a.store.db.selectFrom('sync_runs').selectAll().orderBy('id').execute();
      await until(async () => {
        const runs = await runsOf();
        return ids.every((id) => runs.filter((r) => r.account_id === id).length >= 3) && runs.length > [...state.runs.values()].reduce((n, k) => n + k, 0);
      }, 'every account ran three times, some of them in the child', 60_000);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0, stderr);
      await a.scheduler.stop(10_000);
    }
    const runs = await a.store.db.selectFrom('sync_runs').selectAll().orderBy('id').execute();
    const here = [...state.runs.values()].reduce((n, k) => n + k, 0);
    assert.ok(here > 0 && runs.length > here, `both processes ran syncs: ${here} of ${runs.length} here`);
    assert.equal(state.mostPerAccount, 1);
    assert.ok(runs.every((r) => r.status === 'ok' || r.status === 'stopped'), JSON.stringify(runs.filter((r) => r.status !== 'ok')));
    for (const id of ids) {
      const mine = runs.filter((r) => r.account_id === id);
      for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.started_at >= mine[i - 1]!.finished_at!, `runs of account ${id} overlap`);
    }
    await settledJobs(a.store, runs.length);
    assert.equal(await a.store.messages.count(), 10 * 8);
    const distinct = await a.store.db.selectFrom('messages').select(['account_id', 'message_id_header']).distinct().execute();
    assert.equal(distinct.length, 10 * 8, 'nothing stored twice');
  });

  it('enqueue from either scheduler gives the same job while one is queued or running, and a new one after', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { sync, state } = countingSync();
    await using both = await instances(2, () => async (request) => (await gate, sync(request)));
    const [a, b] = [both[0]!, both[1]!];
    await dovecot.setMailbox('gate', bulkMessages(3, 800));
    const { id } = await a.accounts.create(dovecotAccount(dovecot, 'gate'));
    try {
      const queued = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).scheduler.enqueue(id, 'api')));
      assert.equal(new Set(queued.map((j) => j.id)).size, 1, 'one job from six enqueues on two schedulers');
      assert.deepEqual([queued[0]!.status, queued[0]!.reason, queued[0]!.runId], ['queued', 'api', null]);
      assert.equal(await a.store.jobs.countQueued(), 1);
      assert.equal(b.scheduler.queueDepth(), 1);

      b.scheduler.start();
      await until(async () => (await a.scheduler.job(queued[0]!.id)).status === 'running', 'the job runs');
      const running = await a.scheduler.enqueue(id, 'api');
      assert.deepEqual([running.id, running.status], [queued[0]!.id, 'running']);
      assert.equal(a.scheduler.queueDepth(), 0);

      open();
      await until(async () => (await b.scheduler.job(queued[0]!.id)).status === 'done', 'the job is done');
      const done = await a.scheduler.job(queued[0]!.id);
      const [run] = await a.store.runs.forAccount(id, 1);
      assert.deepEqual([done.runId, done.error, run?.status, run?.new_messages], [run?.id, null, 'ok', 3]);
      // Done, and its pg-boss job complete: the next request is a new job.
      await until(async () => (await a.scheduler.enqueue(id, 'api')).id !== done.id, 'a new job is queued');
      const next = await b.scheduler.enqueue(id, 'api');
      assert.notEqual(next.id, done.id);
      await until(async () => (await a.scheduler.job(next.id)).status === 'done', 'the second job is done');
      assert.equal(state.runs.get(id), 2);
      assert.equal(state.mostPerAccount, 1);
    } finally {
      open();
    }
  });

  it('stop() lets a running sync stop at a message boundary, completes its pg-boss job, and the other scheduler goes on later', async () => {
    const TOTAL = 2000;
    await dovecot.setMailbox('big', bulkMessages(TOTAL, 600));
    let stopping: Promise<void> | undefined;
    let first!: PgBossScheduler;
    await using both = await instances(2, (i) =>
      i === 0
        ? (request) => syncAccount({ ...request, writer: { batchMessages: 10 }, onCommit: (m) => (request.onCommit?.(m), (stopping ??= first.stop(30_000))) })
        : undefined,
    );
    const [a, b] = [both[0]!, both[1]!];
    first = a.scheduler;
    const { id } = await a.accounts.create(dovecotAccount(dovecot, 'big', { policy: { retention: 'delete' } }));
    a.scheduler.start();
    const job = await a.scheduler.enqueue(id, 'api');
    await until(() => stopping !== undefined, 'the first commit');
    await stopping;

    const [run] = await a.store.runs.forAccount(id);
    const stored = await a.store.messages.count(id);
    assert.equal(run?.status, 'stopped');
    assert.ok(stored > 0 && stored < TOTAL, `stored ${stored}`);
    const ended = await a.scheduler.job(job.id);
    assert.deepEqual([ended.status, ended.runId, ended.error], ['done', run?.id, 'stopped early at shutdown; the next run goes on']);
    const { rows } = await sql<{ state: string }>`select state from pgboss.job where name = 'popwire-sync'`.execute(b.store.db);
    assert.deepEqual(rows.map((r) => r.state), ['completed']);
    assert.equal(await metric(a.metrics.running), 0);

    b.scheduler.start();
    const rest = await b.scheduler.enqueue(id, 'api');
    await until(async () => (await b.scheduler.job(rest.id)).status === 'done', 'the other scheduler synced the rest');
    assert.equal(await b.store.messages.count(id), TOTAL);
  });

  it('fails a job left active by a process that is gone, once the account holds no lease, and syncs the account again', async () => {
    await using one = await instances(1, () => undefined);
    const a = one[0]!;
    await dovecot.setMailbox('gate', bulkMessages(2, 500));
    const { id } = await a.accounts.create(dovecotAccount(dovecot, 'gate', { syncInterval: 1 }));
    const left = await a.scheduler.enqueue(id, 'schedule');
    // As a process that died mid-sync leaves it: active for long, its row running, no lease on the account.
    await a.store.jobs.markRunning(left.id, Date.now());
    await sql`update pgboss.job set state = 'active', started_on = now() - interval '1 hour' where name = 'popwire-sync'`.execute(a.store.db);
    assert.equal((await a.scheduler.enqueue(id, 'api')).id, left.id, 'the active job is the live one');

    a.scheduler.start();
    await until(async () => (await a.scheduler.job(left.id)).status === 'failed', 'the orphaned job is failed');
    assert.equal((await a.scheduler.job(left.id)).error, 'interrupted: the process running it stopped');
    await until(async () => (await a.store.messages.count(id)) === 2, 'the account is synced again');
  });

  it('a `popwire serve` SIGKILLed mid-sync: once its lease runs out the other process closes the run as interrupted, fails the job, and syncs the account again unasked; every message stored once', async () => {
    const TOTAL = 60;
    const location = await stores.location('postgres');
    assert.equal(location.kind, 'postgres');
    const key = randomBytes(32);
    await using one = await instances(1, () => undefined, 2, { location, key, leaseMs: 2_000 });
    const a = one[0]!;
    // 400 kB each: the writer's first commit (at 16 MB) comes after about 40 messages, before the hold.
    const messages = bulkMessages(TOTAL, 400_000);
    await dovecot.setMailbox('crash', messages);
    await using proxy = Object.assign(await startFaultProxy({ host: dovecot.host, port: dovecot.port }), { [Symbol.asyncDispose]: () => proxy.close() });
    let retrs = 0;
    // Never settles: the child's session stops at its 50th RETR, mid-sync with a commit behind it, and dies there.
    const held = new Promise<void>(() => {});
    let holding = false;
    proxy.onClientLine = ({ command, connection }) => {
      if (connection !== 1 || command !== 'RETR' || ++retrs !== 50) return;
      holding = true;
      return held;
    };
    // No interval: synced only on request, so nothing but the recovery can sync it again.
    const { id } = await a.accounts.create(dovecotAccount(dovecot, 'crash', { host: proxy.host, port: proxy.port }));
    const env = { POPWIRE_STORE: location.kind === 'postgres' ? location.url : '', POPWIRE_JOBS_ENGINE: 'pg-boss', POPWIRE_JOBS_LEASE_SECONDS: '2', POPWIRE_SECRET_KEY: key.toString('hex'), POPWIRE_HTTP_PORT: '0', POPWIRE_NETWORK_ALLOW: '127.0.0.1', POPWIRE_LOG_LEVEL: 'warn', POPWIRE_SYNC_MIN_INTERVAL: '1' };
    const child = spawnPopwire(['serve'], { env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    let job;
    try {
      await until(() => /listening on http/.test(stderr) || child.exitCode !== null, 'popwire serve listens');
      assert.equal(child.exitCode, null, stderr);
      job = await a.scheduler.enqueue(id, 'api');
      await until(async () => holding && (await a.store.messages.count(id)) > 0, 'the child is mid-sync with a commit behind it');
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    const stored = await a.store.messages.count(id);
    const [killed] = await a.store.runs.forAccount(id, 1);
    assert.equal(killed?.status, 'running');
    assert.equal((await a.scheduler.job(job.id)).status, 'running');

    a.scheduler.start();
    await until(async () => (await a.store.messages.count(id)) === TOTAL, 'the account is synced again with no one asking');
    const finished = async () => (await a.store.db.selectFrom('sync_jobs').select('status').where('account_id', '=', id).where('reason', '=', 'retry').execute()).some((j) => j.status === 'done');
    await until(finished, 'the job that took the account up is done');
    const [interrupted] = await a.store.db.selectFrom('sync_runs').selectAll().where('id', '=', killed!.id).execute();
    assert.deepEqual([interrupted?.status, interrupted?.error_code], ['interrupted', 'SYNC_INTERRUPTED']);
    assert.ok(interrupted?.finished_at !== null);
    const ended = await a.scheduler.job(job.id);
    assert.deepEqual([ended.status, ended.error], ['failed', 'interrupted: the process running it stopped']);
    const jobs = await a.store.db.selectFrom('sync_jobs').selectAll().where('account_id', '=', id).orderBy('id').execute();
    assert.deepEqual(jobs.map((j) => [j.reason, j.status]), [['api', 'failed'], ['retry', 'done']]);
    const [again] = await a.store.runs.forAccount(id, 1);
    assert.deepEqual([again?.new_messages, again?.already_had], [TOTAL - stored, stored]);
    const distinct = await a.store.db.selectFrom('messages').select('message_id_header').distinct().where('account_id', '=', id).execute();
    assert.equal(distinct.length, TOTAL, 'nothing stored twice');
    await until(async () => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pgboss.job where name = 'popwire-sync' and state in ('created', 'retry', 'active')`.execute(a.store.db);
      return rows[0]!.n === 0;
    }, 'no job is left waiting or active');
    const account = await a.store.db.selectFrom('accounts').select(['lock_owner']).where('id', '=', id).executeTakeFirstOrThrow();
    assert.equal(account.lock_owner, null, 'the lease is released');
  });
});
