/**
 * `popwire serve` with `sync.workers`: the syncs run in worker threads, each with its own
 * connection to the store, on SQLite and PostgreSQL, against a real Dovecot. What must hold is
 * what holds in the main thread: every message stored once (a second sync finds nothing new),
 * the accounts list and the metrics count them, a rejected password is the run's typed error and
 * marks the account, closing drains the workers, and no secret reaches the log.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { generateKey } from '../../src/accounts/secrets.ts';
import { WORKER_NICE } from '../../src/jobs/worker-pool.ts';
import { loadConfig } from '../../src/config.ts';
import { startService, type Service } from '../../src/serve.ts';
import { Store } from '../../src/store/store.ts';
import { eventually } from '../../../../support/eventually.ts';

const USERS = [
  { user: 'w1', password: 'worker-secret-one-7c1' },
  { user: 'w2', password: 'worker-secret-two-9d2' },
  { user: 'w3', password: 'worker-secret-three-4e3' },
];
const MESSAGES = 30;
const stores = testStores();
let dovecot: Dovecot;
let dir: string;

before(async () => {
  [dovecot, dir] = await Promise.all([startDovecot({ users: USERS, authFailureDelayMs: 0 }), mkdtemp(join(tmpdir(), 'popwire-jobs-workers-'))]);
  await Promise.all(USERS.map(({ user }) => dovecot.setMailbox(user, bulkMessages(MESSAGES, 2000))));
});
after(() => Promise.all([dovecot?.stop(), dir && rm(dir, { recursive: true, force: true })]));

interface Running {
  service: Service;
  logs: () => string;
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }>;
  metric(name: string): Promise<number>;
}

async function serve(location: string, workers: number): Promise<Running> {
  const configFile = join(await mkdtemp(join(dir, 'config-')), 'popwire.json');
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
  await writeFile(configFile, JSON.stringify({ store: location, http: { port: 0 }, tls: { caFile }, network: { allow: ['127.0.0.1'] }, sync: { workers }, log: { level: 'debug' } }));
  let logs = '';
  const logDestination = new Writable({
    write(chunk, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  const key = generateKey();
  const service = await startService(loadConfig({ file: configFile, env: {} }), { init: true, env: { POPWIRE_SECRET_KEY: key }, logDestination });
  const store = service.store;
  const { token } = await store.tokens.create('test');
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
  };
  const metric = async (name: string) => {
    const response = await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(await response.text());
    return Number(match?.[1] ?? Number.NaN);
  };
  return { service, logs: () => logs, api, metric };
}


async function syncAll(running: Running, ids: number[]): Promise<Array<{ status: string; error: string | null; runId: number | null }>> {
  const jobs: number[] = [];
  for (const id of ids) {
    const queued = await running.api('POST', `/v1/accounts/${id}/sync`);
    assert.equal(queued.status, 202, JSON.stringify(queued.json));
    jobs.push(queued.json.id);
  }
  return Promise.all(
    jobs.map((job) =>
      eventually(`job ${job} to end`, async () => {
        const view = (await running.api('GET', `/v1/jobs/${job}`)).json;
        return view.status === 'queued' || view.status === 'running' ? undefined : view;
      }, 60_000),
    ),
  );
}

function account(user: string, password: string) {
  return { name: user, host: dovecot.host, port: dovecot.port, tls: 'starttls', username: user, credentials: { type: 'password', password }, syncInterval: null };
}

for (const kind of STORE_KINDS) {
  describe(`popwire serve with sync workers on ${kind}`, () => {
    let running: Running;
    let location: string;
    const ids: number[] = [];
    before(async () => {
      const where = await stores.location(kind);
      location = where.kind === 'sqlite' ? where.dir : where.url;
      running = await serve(location, 2);
      for (const { user, password } of USERS) {
        const created = await running.api('POST', '/v1/accounts', account(user, password));
        assert.equal(created.status, 201, JSON.stringify(created.json));
        ids.push(created.json.id);
      }
    });
    after(() => running?.service.close());

    it('stores every message of every account once, and the accounts, runs and metrics say so', async () => {
      const jobs = await syncAll(running, ids);
      assert.deepEqual(
        jobs.map((j) => [j.status, j.error]),
        ids.map(() => ['done', null]),
      );
      for (const id of ids) {
        const runs = (await running.api('GET', `/v1/accounts/${id}/runs?limit=1`)).json.runs;
        assert.equal(runs[0].status, 'ok');
        assert.equal(runs[0].newMessages, MESSAGES);
        const listed = (await running.api('GET', `/v1/accounts/${id}/messages?limit=200`)).json.messages;
        assert.equal(listed.length, MESSAGES);
      }
      const accounts = (await running.api('GET', '/v1/accounts')).json.accounts;
      assert.deepEqual(accounts.map((a: { id: number }) => a.id), ids);
      assert.equal(await running.metric('popwire_messages_stored_total'), USERS.length * MESSAGES);
      assert.equal(await running.metric('popwire_syncs_total\\{status="ok"\\}'), USERS.length);
      assert.equal(await running.metric('popwire_syncs_running'), 0);
    });

    it('runs the workers at a lower CPU priority than the main thread, which serves the API', () => {
      // Field 19 of /proc/PID/task/TID/stat is the thread's nice value.
      const nice = (tid: string) => Number(readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
      const main = nice(String(process.pid));
      const niced = readdirSync(`/proc/${process.pid}/task`).filter((tid) => nice(tid) === Math.min(19, main + WORKER_NICE));
      assert.equal(niced.length, 2, 'one lowered thread per worker');
    });

    it('finds nothing new on a second sync: exactly once across worker connections', async () => {
      const jobs = await syncAll(running, ids);
      assert.deepEqual(
        jobs.map((j) => j.status),
        ids.map(() => 'done'),
      );
      for (const id of ids) {
        const runs = (await running.api('GET', `/v1/accounts/${id}/runs?limit=1`)).json.runs;
        assert.equal(runs[0].newMessages, 0);
      }
      assert.equal(await running.metric('popwire_messages_stored_total'), USERS.length * MESSAGES);
    });

    it('reports a rejected password as the run\'s typed error, fails the job and marks the account', async () => {
      // The same mailbox under another host name, so that the account is a new one.
      const created = await running.api('POST', '/v1/accounts', { ...account('w1', 'not-the-password'), name: 'wrong', host: 'localhost' });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const [job] = await syncAll(running, [created.json.id]);
      assert.equal(job!.status, 'failed');
      assert.match(String(job!.error), /password|authentication|credentials/i);
      const runs = (await running.api('GET', `/v1/accounts/${created.json.id}/runs?limit=1`)).json.runs;
      assert.equal(runs[0].status, 'failed');
      assert.equal(runs[0].error.code, 'POP3_AUTH_FAILED');
      const view = await eventually('the account to be marked', async () => {
        const got = (await running.api('GET', `/v1/accounts/${created.json.id}`)).json;
        return got.needsAttention ? got : undefined;
      });
      assert.equal(view.needsAttention, true);
      assert.equal(await running.metric('popwire_sync_errors_total\\{kind="authentication"\\}'), 1);
    });

    it('closes after the workers drain, leaving no job or run marked running, and logs no password', async () => {
      await Promise.all(USERS.map(({ user }) => dovecot.setMailbox(user, bulkMessages(MESSAGES, 2000))));
      for (const id of ids) assert.equal((await running.api('POST', `/v1/accounts/${id}/sync`)).status, 202);
      await running.service.close();
      const logs = running.logs();
      assert.match(logs, /"part":"sync-worker"/, 'the workers log through the service');
      for (const { password } of USERS) assert.equal(logs.includes(password), false);
      assert.equal(logs.includes('not-the-password'), false);
      const store = await Store.open(kind === 'sqlite' ? { kind, dir: location } : { kind, url: location });
      try {
        const jobs = await store.db.selectFrom('sync_jobs').select(['status']).where('status', '=', 'running').execute();
        const runs = await store.db.selectFrom('sync_runs').select(['status']).where('status', '=', 'running').execute();
        assert.deepEqual([jobs.length, runs.length], [0, 0]);
      } finally {
        await store.close();
      }
    });
  });
}
