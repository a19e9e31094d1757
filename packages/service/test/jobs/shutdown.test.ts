/**
 * stop(graceMs): a running sync is asked to stop at the next message boundary and ends
 * cleanly (commit, DELE what is committed, QUIT), losing nothing; one that cannot stop within
 * the grace time (a server stalled mid-message) is abandoned: its connection is dropped without
 * QUIT, so the server deletes nothing, and the run and job are still recorded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pop3Client } from 'popwire';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { acceptLogin, startScriptedServer } from '../../../../support/scripted-server.ts';
import { testStores } from '../../../../support/stores.ts';
import { InProcessScheduler } from '../../src/jobs/in-process.ts';
import { Metrics } from '../../src/metrics.ts';
import { syncAccount } from '../../src/sync/index.ts';
import { accountService, dovecotAccount, metric, until } from './harness.ts';

const stores = testStores();
const TOTAL = 3000;
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ users: [{ user: 'big', password: 'big-secret' }] });
});
after(() => dovecot?.stop());

async function serverCount(): Promise<number> {
  await using client = await Pop3Client.connect({ host: dovecot.host, port: dovecot.port, tls: 'none', user: 'big', password: 'big-secret', allowPlaintextAuth: true });
  return (await client.stat()).count;
}

describe('InProcessScheduler.stop', () => {
  it('lets a running sync stop at a message boundary: what it stored is deleted from the server, the rest stays, the run is recorded', async () => {
    await dovecot.setMailbox('big', bulkMessages(TOTAL, 600));
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const { id } = await accounts.create(dovecotAccount(dovecot, 'big', { policy: { retention: 'delete' } }));
    const metrics = new Metrics();
    let stopping: Promise<void> | undefined;
    const scheduler: InProcessScheduler = new InProcessScheduler({
      store,
      accounts,
      metrics,
      // Small commits, and the stop asked for right after the first one: the sync is surely mid-mailbox.
      sync: (request) =>
        syncAccount({
          ...request,
          writer: { batchMessages: 10 },
          onCommit: (messages) => {
            request.onCommit?.(messages);
            stopping ??= scheduler.stop(30_000);
          },
        }),
    });
    scheduler.start();
    const job = await scheduler.enqueue(id, 'api');
    await until(() => stopping !== undefined, 'the first commit');
    await stopping;

    const [run] = await store.runs.forAccount(id);
    const stored = await store.messages.count(id);
    assert.equal(run?.status, 'stopped');
    assert.ok(stored > 0 && stored < TOTAL, `stored ${stored}`);
    assert.deepEqual([run?.new_messages, run?.deleted], [stored, stored]);
    assert.equal(await serverCount(), TOTAL - stored, 'the server kept exactly what was not stored');
    const distinct = await store.db.selectFrom('messages').select('sha256').distinct().execute();
    assert.equal(distinct.length, stored, 'nothing stored twice');
    const done = await scheduler.job(job.id);
    assert.deepEqual([done.status, done.runId, done.error], ['done', run?.id, 'stopped early at shutdown; the next run goes on']);
    assert.equal(await metric(metrics.syncs, { status: 'stopped' }), 1);
    assert.equal(await metric(metrics.messages), stored);
    assert.equal(await metric(metrics.deleted), stored);
    assert.equal(await metric(metrics.running), 0);
    assert.equal((await store.accounts.get(id)).lock_owner, null, 'the sync lock is released');
  });

  it('abandons a sync that cannot stop within the grace time: the connection drops without QUIT and the job says so', async () => {
    const server = await startScriptedServer(async (conn) => {
      // PIPELINING advertised: otherwise the client first probes whether the server pipelines anyway.
      await acceptLogin(conn, ['USER', 'UIDL', 'TOP', 'PIPELINING']);
      await conn.expect('UIDL');
      conn.send('+OK\r\n1 uid-1\r\n2 uid-2\r\n.\r\n');
      await conn.expect('LIST');
      conn.send('+OK\r\n1 120\r\n2 120\r\n.\r\n');
      await conn.expect('RETR 1');
      // Half a message, then nothing: the sync waits inside a body, where it cannot stop.
      conn.send('+OK 120 octets\r\nSubject: stalled\r\n');
      await conn.closed();
    });
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const { id } = await accounts.create({
      name: 'stalled',
      host: '127.0.0.1',
      port: server.port,
      tls: 'none',
      allowPlaintextAuth: true,
      username: 'alice',
      credentials: { type: 'password', password: 'secret' },
      syncInterval: null,
      policy: { retention: 'delete' },
    });
    const metrics = new Metrics();
    const scheduler = new InProcessScheduler({ store, accounts, metrics });
    scheduler.start();
    const job = await scheduler.enqueue(id, 'api');
    await until(() => server.received.includes('RETR 1'), 'the sync is inside the message');
    await scheduler.stop(200);

    const ended = await scheduler.job(job.id);
    assert.equal(ended.status, 'failed');
    assert.match(ended.error ?? '', /^abandoned at shutdown/);
    const [run] = await store.runs.forAccount(id);
    assert.deepEqual([run?.status, run?.error_code, ended.runId], ['failed', 'POP3_ABORTED', run?.id]);
    assert.ok(!server.received.includes('QUIT') && !server.received.some((l) => l.startsWith('DELE')), server.received.join(' | '));
    assert.equal(await store.messages.count(id), 0);
    assert.equal(await metric(metrics.errors, { kind: 'aborted' }), 1);
    assert.equal(await metric(metrics.running), 0);
    await server.close();
  });
});
