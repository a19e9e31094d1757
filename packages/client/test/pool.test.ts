/**
 * Pop3Pool: one session per mailbox, queued users, limits per host and in total, idle reuse
 * after NOOP, fresh logins, broken sessions dropped, deletions applied or rolled back as the
 * user's outcome says, and close(). A scripted mailbox counts the sessions; the last part runs
 * against Dovecot with pop3_lock_session, where a second session on a mailbox is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Pop3Client, Pop3Pool, Pop3ServerError, Pop3UsageError, type Pop3Account, type Pop3ClientOptions } from '../src/index.ts';
import { mailboxScript } from '../../../support/mailbox-script.ts';
import { startScriptedServer } from '../../../support/scripted-server.ts';
import { startDovecot, type Dovecot } from '../../../support/dovecot.ts';
import { bulkMessages } from '../../../support/fixtures.ts';
import { useScriptedServer } from './scripted.ts';

const serve = useScriptedServer();

function account(port: number, user: string, extra: Partial<Pop3ClientOptions> = {}): Pop3ClientOptions & { user: string } {
  return { host: '127.0.0.1', port, tls: 'none', user, password: 'secret', allowPlaintextAuth: true, timeout: 2000, ...extra };
}

describe('one session per mailbox', () => {
  it('queues the second user of a mailbox until the first is done, first come first served', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    await using pool = new Pop3Pool();
    const order: string[] = [];
    const job = (name: string, ms: number) =>
      pool.use(account(srv.port, 'alice'), async (client) => {
        order.push(`${name} start (${log.open()} open)`);
        await client.noop();
        await delay(ms);
        order.push(`${name} end`);
      });
    await Promise.all([job('first', 40), job('second', 0), job('third', 0)]);
    assert.deepEqual(order, ['first start (1 open)', 'first end', 'second start (1 open)', 'second end', 'third start (1 open)', 'third end']);
    // The idle session was reused (NOOP-checked) rather than a new login for each user.
    assert.equal(log.sessions.length, 1);
  });

  it('opens sessions to different mailboxes side by side', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    await using pool = new Pop3Pool();
    let most = 0;
    await Promise.all(
      ['alice', 'bob', 'carol'].map((user) =>
        pool.use(account(srv.port, user), async () => {
          await delay(30);
          most = Math.max(most, log.open());
        }),
      ),
    );
    assert.equal(most, 3);
  });
});

describe('limits', () => {
  it('holds at most maxSessionsPerHost sessions to one host; the next waits for a slot', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    await using pool = new Pop3Pool({ maxSessionsPerHost: 2, idleTimeout: 60_000 });
    let most = 0;
    await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((user) =>
        pool.use(account(srv.port, user), async () => {
          most = Math.max(most, log.open());
          await delay(20);
        }),
      ),
    );
    assert.equal(most, 2);
    // Idle sessions of other mailboxes were QUIT to make room, never more than two at once.
    assert.equal(log.sessions.length, 5);
    assert.ok(pool.stats().sessions <= 2);
  });

  it('holds at most maxSessions in total, across hosts', async () => {
    const { script, log } = mailboxScript();
    const one = await serve(script);
    const { script: script2, log: log2 } = mailboxScript();
    // A second server (useScriptedServer keeps one per test): closed here.
    const two = await startScriptedServer(script2);
    after(() => two.close());
    // Two host names, each its own server: `connect` puts them both on loopback.
    const ports: Record<string, number> = { 'pop.one.test': one.port, 'pop.two.test': two.port };
    await using pool = new Pop3Pool({
      maxSessions: 3,
      maxSessionsPerHost: 3,
      connect: (options) => Pop3Client.connect({ ...options, host: '127.0.0.1', port: ports[options.host] }),
    });
    let most = 0;
    await Promise.all(
      ['a', 'b', 'c', 'd'].flatMap((user) => Object.keys(ports).map((host) =>
        pool.use({ ...account(0, user), host }, async () => {
          most = Math.max(most, log.open() + log2.open());
          await delay(15);
        }),
      )),
    );
    assert.equal(most, 3);
  });
});

describe('reuse', () => {
  it('reuses an idle session after NOOP, but logs in anew with fresh: true', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    await using pool = new Pop3Pool();
    await pool.use(account(srv.port, 'alice'), (c) => c.stat());
    await pool.use(account(srv.port, 'alice'), (c) => c.stat());
    assert.equal(log.sessions.length, 1);
    assert.ok(srv.received.includes('NOOP'));
    await pool.use(account(srv.port, 'alice'), (c) => c.stat(), { fresh: true });
    assert.equal(log.sessions.length, 2);
    // The stale session was QUIT before the fresh login: never two sessions on one mailbox.
    assert.equal(log.sessions[0]?.ended, 'quit');
  });

  it('QUITs an idle session after idleTimeout, so the next use logs in anew', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    await using pool = new Pop3Pool({ idleTimeout: 30 });
    await pool.use(account(srv.port, 'alice'), (c) => c.noop());
    // The server logs the QUIT on receipt; the pool forgets the session once its +OK is back.
    await until(() => log.sessions[0]?.ended === 'quit' && pool.stats().sessions === 0);
    await pool.use(account(srv.port, 'alice'), (c) => c.noop());
    assert.equal(log.sessions.length, 2);
  });

  it('drops a session whose NOOP fails and hands out a new one', async () => {
    let first = true;
    const { script, log } = mailboxScript({
      onConnect: async (conn) => {
        if (!first) return true;
        first = false;
        // This server hangs up on the first session as soon as it is idle: NOOP finds it dead.
        conn.socket.setTimeout(50, () => conn.socket.destroy());
        return true;
      },
    });
    const srv = await serve(script);
    await using pool = new Pop3Pool();
    await pool.use(account(srv.port, 'alice'), (c) => c.noop());
    await delay(150);
    const count = await pool.use(account(srv.port, 'alice'), async (c) => (await c.stat()).count);
    assert.equal(count, 2);
    assert.equal(log.sessions.length, 2);
  });
});

describe('broken sessions and deletions', () => {
  it('never hands out a session whose connection broke during use', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    await using pool = new Pop3Pool();
    await assert.rejects(pool.use(account(srv.port, 'alice'), async (client) => {
      client.close(); // as a fatal error would
      await client.noop();
    }));
    assert.equal(pool.stats().sessions, 0);
    await pool.use(account(srv.port, 'alice'), (c) => c.noop());
    assert.equal(log.sessions.length, 2);
  });

  it('a user that throws is closed without QUIT: its deletions are rolled back', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    await using pool = new Pop3Pool();
    await assert.rejects(
      pool.use(account(srv.port, 'alice'), async (client) => {
        await client.delete(1);
        throw new Error('storing message 1 failed');
      }),
      /storing message 1 failed/,
    );
    await until(() => log.sessions[0]?.ended !== undefined);
    assert.deepEqual(log.sessions[0], { user: 'alice', ended: 'dropped', applied: 0 });
  });

  it('a session handed back with messages marked is QUIT at once, so the deletions are applied', async () => {
    const { script, log } = mailboxScript({ count: 3 });
    const srv = await serve(script);
    await using pool = new Pop3Pool();
    await pool.use(account(srv.port, 'alice'), (client) => client.deleteMany([1, 2]));
    assert.deepEqual(log.sessions[0], { user: 'alice', ended: 'quit', applied: 2 });
    assert.equal(pool.stats().sessions, 0);
  });
});

describe('close()', () => {
  it('QUITs idle sessions, waits for busy ones, and refuses new users', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    const pool = new Pop3Pool();
    await pool.use(account(srv.port, 'alice'), (c) => c.noop());
    let finished = false;
    let onLent!: () => void;
    const lent = new Promise<void>((resolve) => (onLent = resolve));
    const busy = pool.use(account(srv.port, 'bob'), async (c) => {
      onLent(); // close() must come while the session is lent, not while it is still opening
      await delay(50);
      await c.noop();
      finished = true;
    });
    await lent;
    await pool.close();
    await busy;
    assert.equal(finished, true);
    assert.deepEqual(log.sessions.map((s) => s.ended), ['quit', 'quit']);
    await assert.rejects(pool.use(account(srv.port, 'alice'), (c) => c.noop()), (e: unknown) => e instanceof Pop3UsageError && e.code === 'POP3_POOL_CLOSED');
  });

  it('closes a session still busy at the deadline, without QUIT', async () => {
    const { script, log } = mailboxScript();
    const srv = await serve(script);
    const pool = new Pop3Pool({ closeTimeout: 30 });
    let onLent!: () => void;
    const lent = new Promise<void>((resolve) => (onLent = resolve));
    const busy = pool.use(account(srv.port, 'alice'), async (c) => {
      onLent();
      await delay(150);
      await c.noop();
    });
    await lent;
    await pool.close();
    await assert.rejects(busy, (e: unknown) => e instanceof Pop3UsageError && e.code === 'POP3_CLOSED');
    await until(() => log.sessions[0]?.ended !== undefined);
    assert.equal(log.sessions[0]?.ended, 'dropped');
  });
});

describe('the maildrop lock', () => {
  it('a raw second login to a locked mailbox gets -ERR [IN-USE]; two pool users of that mailbox share one session and never meet it', async () => {
    // What a server with RFC 2449 codes answers while another session holds the maildrop
    // (Dovecot with pop3_lock_session does the same after a 12 s wait; see below for the real one).
    let holders = 0;
    let refused = 0;
    const { script, log } = mailboxScript({
      onConnect: (conn) => {
        if (holders === 0) {
          holders += 1;
          void conn.closed().then(() => (holders -= 1));
          return true;
        }
        refused += 1;
        conn.reply('+OK ready');
        void (async () => {
          await conn.expect('CAPA');
          conn.send('+OK\r\nUSER\r\n.\r\n');
          await conn.expect('USER alice');
          conn.reply('+OK');
          await conn.expect('PASS secret');
          conn.reply('-ERR [IN-USE] Mailbox is locked by another session');
        })();
        return conn.closed().then(() => false);
      },
    });
    const srv = await serve(script);
    const first = await Pop3Client.connect(account(srv.port, 'alice'));
    await assert.rejects(Pop3Client.connect(account(srv.port, 'alice')), (error: unknown) => {
      assert.ok(error instanceof Pop3ServerError);
      assert.equal(error.responseCode, 'IN-USE');
      assert.equal(error.retryable, true);
      return true;
    });
    await first.quit();
    await until(() => holders === 0);
    assert.equal(refused, 1);

    await using pool = new Pop3Pool();
    const counts = await Promise.all([1, 2].map(() => pool.use(account(srv.port, 'alice'), async (c) => {
      const { count } = await c.stat();
      await delay(20);
      return count;
    })));
    assert.deepEqual(counts, [2, 2], 'both users got the mailbox');
    assert.equal(refused, 1, 'the pool never made a second login while its session held the mailbox');
    assert.equal(log.sessions.length, 3, 'the raw session, the refused one, and one pool session');
  });

  describe('against Dovecot with pop3_lock_session', () => {
    let dovecot: Dovecot;
    before(async () => {
      dovecot = await startDovecot({ lockSession: true });
      await dovecot.setMailbox('alice', bulkMessages(3, 500));
    });
    after(() => dovecot?.stop());

    it('two concurrent users of one mailbox both succeed, one after the other, on one session', async () => {
      await using pool = new Pop3Pool();
      const acct: Pop3Account = { host: dovecot.host, port: dovecot.tlsPort, ca: dovecot.ca, user: 'alice', password: dovecot.users.alice!.password, timeout: 20_000 };
      const started = Date.now();
      const spans: Array<[number, number]> = [];
      const job = () =>
        pool.use(acct, async (client) => {
          const from = Date.now();
          const { count } = await client.stat();
          await delay(50);
          spans.push([from, Date.now()]);
          return count;
        });
      assert.deepEqual(await Promise.all([job(), job()]), [3, 3]);
      const [a, b] = spans as [[number, number], [number, number]];
      assert.ok(b[0] >= a[1], 'the second user started after the first released the mailbox');
      // A second login would have waited for the lock for about 12 s, then failed [IN-USE].
      assert.ok(Date.now() - started < 5_000);
      assert.equal(pool.stats().sessions, 1);
    });
  });
});

/** Waits for what the server logs asynchronously, polling, instead of guessing a sleep. */
async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await delay(5);
  }
}
