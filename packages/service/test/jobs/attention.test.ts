/**
 * Accounts the scheduler must not hammer: a rejected password marks the account as needing
 * attention after one login attempt, however short its interval, until its credentials change;
 * [IN-USE] defers the account until the time the run gave. Each runs beside a "clock" account
 * on a real Dovecot whose own runs show that many ticks went by.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { mailboxScript } from '../../../../support/mailbox-script.ts';
import { startScriptedServer, type ScriptedConnection } from '../../../../support/scripted-server.ts';
import { testStores } from '../../../../support/stores.ts';
import type { AccountInput, AccountService } from '../../src/accounts/service.ts';
import { InProcessScheduler } from '../../src/jobs/in-process.ts';
import { Metrics } from '../../src/metrics.ts';
import { AccountLock } from '../../src/sync/lock.ts';
import type { Store } from '../../src/store/store.ts';
import { message, startScriptedMailbox } from '../sync/scripted-mailbox.ts';
import { accountService, dovecotAccount, metric, until } from './harness.ts';

const stores = testStores();
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ users: [{ user: 'clock', password: 'clock-secret' }, { user: 'locked', password: 'locked-secret' }] });
  await dovecot.setMailbox('clock', bulkMessages(2, 500));
  await dovecot.setMailbox('locked', bulkMessages(4, 500));
});
after(() => dovecot?.stop());

const scripted = (port: number, password: string): AccountInput => ({
  name: 'scripted',
  host: '127.0.0.1',
  port,
  tls: 'none',
  allowPlaintextAuth: true,
  username: 'alice',
  credentials: { type: 'password', password },
  syncInterval: 1,
});

/** A scheduler ticking every 50 ms, with a clock account syncing every second. */
async function withClock(store: Store, accounts: AccountService) {
  const clock = await accounts.create(dovecotAccount(dovecot, 'clock', { syncInterval: 1 }));
  const metrics = new Metrics();
  const scheduler = new InProcessScheduler({ store, accounts, metrics, tickMs: 50 });
  const runs = async () => (await store.runs.forAccount(clock.id, 1000)).filter((r) => r.status === 'ok').length;
  /** Waits until the clock account has run `n` more times: at least n - 1 seconds of ticks. */
  const ticks = async (n: number) => {
    const start = await runs();
    await until(async () => (await runs()) >= start + n, `the clock account ran ${n} more times`);
  };
  return { scheduler, metrics, ticks };
}

describe('InProcessScheduler and troubled accounts', () => {
  it('a rejected password: one login, the account needs attention, and new credentials bring it back', async () => {
    const { script, log } = mailboxScript();
    const server = await startScriptedServer(script);
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const { id } = await accounts.create(scripted(server.port, 'wrong-password'));
    const { scheduler, metrics, ticks } = await withClock(store, accounts);
    scheduler.start();
    try {
      await until(async () => (await accounts.get(id)).needsAttention, 'the account needs attention');
      await ticks(3);
      assert.equal(log.sessions.length, 1, 'exactly one login attempt');
      const [run] = await store.runs.forAccount(id);
      assert.deepEqual([run?.status, run?.error_code], ['failed', 'POP3_AUTH_FAILED']);
      const view = await accounts.get(id);
      assert.match(view.statusNote ?? '', /rejected the credentials/);
      const job = await store.db.selectFrom('sync_jobs').selectAll().where('account_id', '=', id).executeTakeFirstOrThrow();
      assert.deepEqual([job.status, job.run_id], ['failed', run?.id]);
      assert.equal(await metric(metrics.errors, { kind: 'authentication' }), 1);
      assert.equal(await metric(metrics.syncs, { status: 'failed' }), 1);

      await accounts.update(id, { credentials: { type: 'password', password: 'secret' } });
      await until(() => log.sessions.length === 2, 'the account is tried again with its new credentials');
      await until(() => log.sessions[1]?.user === 'alice', 'the new credentials log in');
    } finally {
      await scheduler.stop(5_000);
      await server.close();
    }
  });

  it("a server's LOGIN-DELAY from CAPA (Gmail: 300 s) spaces the scheduled syncs, however short the interval", async () => {
    const mailbox = await startScriptedMailbox([message('u1', 'one')], { capabilities: ['LOGIN-DELAY 300'] });
    const server = mailbox.server;
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const { id } = await accounts.create(scripted(server.port, 'secret'));
    const { scheduler, ticks } = await withClock(store, accounts);
    scheduler.start();
    try {
      await until(async () => (await store.runs.forAccount(id))[0]?.status === 'ok', 'the first sync ran');
      await until(async () => (await accounts.get(id)).loginDelay === 300, 'the LOGIN-DELAY is recorded');
      await ticks(3);
      assert.equal(mailbox.sessions.length, 1, 'one login, not one a second');
      const row = await store.accounts.get(id);
      const [run] = await store.runs.forAccount(id);
      assert.ok(row.next_sync_at !== null && row.next_sync_at >= run!.finished_at! + 300_000, `next_sync_at ${row.next_sync_at}`);
    } finally {
      await scheduler.stop(5_000);
      await server.close();
    }
  });

  it('[IN-USE]: the run is deferred and the account is not tried before the time it gave', async () => {
    const server = await startScriptedServer(async (conn: ScriptedConnection) => {
      conn.reply('+OK scripted ready');
      await conn.expect('CAPA');
      conn.send('+OK\r\nUSER\r\nUIDL\r\n.\r\n');
      await conn.expect('USER alice');
      conn.reply('+OK');
      await conn.expect('PASS secret');
      conn.reply('-ERR [IN-USE] the maildrop is locked by another session');
      // After a refused login the client may QUIT or just hang up: either ends the session.
      const next = await conn.lineOrClose();
      if (next === undefined) return;
      assert.equal(next, 'QUIT', 'nothing but QUIT after a refused login');
      conn.reply('+OK');
      conn.socket.end();
    });
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const { id } = await accounts.create(scripted(server.port, 'secret'));
    const { scheduler, metrics, ticks } = await withClock(store, accounts);
    scheduler.start();
    try {
      await until(async () => (await store.runs.forAccount(id))[0]?.status === 'deferred', 'the run is deferred');
      await ticks(3);
      assert.equal(server.connections, 1, 'not tried again before the time it gave');
      const row = await store.accounts.get(id);
      const [run] = await store.runs.forAccount(id);
      assert.ok(row.retry_after !== null && row.retry_after >= run!.started_at + 60_000, `retry_after ${row.retry_after}`);
      assert.equal(row.next_sync_at, row.retry_after);
      assert.equal(row.needs_attention, 0);
      const job = await store.db.selectFrom('sync_jobs').selectAll().where('account_id', '=', id).executeTakeFirstOrThrow();
      assert.equal(job.status, 'done');
      assert.ok(job.error?.startsWith(`deferred until ${new Date(row.retry_after).toISOString()}: `), job.error ?? '');
      assert.equal(await metric(metrics.syncs, { status: 'deferred' }), 1);
      assert.equal(await metric(metrics.errors, { kind: 'authentication' }), 1);
    } finally {
      await scheduler.stop(5_000);
      await server.close();
    }
  });

  it('an account another process is syncing (its lock held) is tried again an interval later, not counted as a failed run', async () => {
    await using store = await stores.open('sqlite');
    const accounts = accountService(store);
    const { id } = await accounts.create(dovecotAccount(dovecot, 'locked', { syncInterval: 1 }));
    const lock = await AccountLock.acquire(store.db, id);
    const { scheduler, metrics } = await withClock(store, accounts);
    scheduler.start();
    try {
      const lockedJobs = () => store.db.selectFrom('sync_jobs').selectAll().where('account_id', '=', id).orderBy('id').execute();
      await until(async () => (await lockedJobs()).length >= 2, 'two jobs found the lock held');
      const [first, second] = await lockedJobs();
      assert.deepEqual([first?.status, first?.error], ['failed', 'another sync of this account was running; it is tried again later']);
      assert.ok(second!.queued_at >= first!.finished_at! + 1000, 'the next job waited an interval, not a tick');
      assert.equal(second?.reason, 'schedule', 'a held lock is no failure to retry');
      assert.equal((await store.runs.forAccount(id)).length, 0);
      assert.equal(await metric(metrics.syncs, { status: 'failed' }), 0);

      await lock.release();
      await until(async () => (await store.messages.count(id)) === 4, 'the account syncs once the lock is free');
    } finally {
      await lock.release();
      await scheduler.stop(5_000);
    }
  });
});
