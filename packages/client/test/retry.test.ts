/**
 * Retry: only what can succeed later, with backoff and jitter, waiting at least what a
 * [LOGIN-DELAY] server asks; never a rejected password. Scripted servers count the attempts;
 * delays are read from the onAttempt callback, never timed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3AuthenticationError, Pop3Client, Pop3ConnectionError, Pop3Error, retry, type RetriedError, type RetryAttempt } from '../src/index.ts';
import { Pop3ServerError } from '../src/errors.ts';
import { acceptLogin, type ScriptedConnection } from '../../../support/scripted-server.ts';
import { plainOptions, useScriptedServer } from './scripted.ts';

const serve = useScriptedServer();

/** Greeting and CAPA, then the USER command answered; PASS is left to the test. */
async function upToPass(conn: ScriptedConnection, caps = ['USER']): Promise<void> {
  conn.reply('+OK scripted ready');
  await conn.expect('CAPA');
  conn.send(`+OK\r\n${caps.map((c) => `${c}\r\n`).join('')}.\r\n`);
  await conn.expect('USER alice');
  conn.reply('+OK');
  await conn.expect('PASS secret');
}

describe('retry on connect', () => {
  it('[SYS/TEMP] twice, then +OK: three attempts, with growing, jittered delays', async () => {
    let connection = 0;
    const srv = await serve(async (conn) => {
      connection += 1;
      if (connection <= 2) {
        await upToPass(conn);
        conn.reply('-ERR [SYS/TEMP] Try again later');
        await conn.closed();
        return;
      }
      await acceptLogin(conn);
      await conn.expect('QUIT');
      conn.reply('+OK');
      conn.socket.end();
    });
    const attempts: RetryAttempt[] = [];
    const client = await Pop3Client.connect(plainOptions(srv, { retry: { attempts: 3, baseDelay: 20, jitter: 0.5, onAttempt: (a) => attempts.push(a) } }));
    assert.equal(client.state, 'transaction');
    await client.quit();
    assert.equal(srv.connections, 3);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.error.responseCode]), [[1, 'SYS/TEMP'], [2, 'SYS/TEMP']]);
    const [first, second] = attempts.map((a) => a.delay as number);
    // Backoff doubles (20, then 40 ms), and jitter takes up to half of each off.
    assert.ok(first! >= 10 && first! <= 20, `first delay ${first}`);
    assert.ok(second! >= 20 && second! <= 40, `second delay ${second}`);
  });

  it('a rejected password is tried exactly once', async () => {
    const srv = await serve(async (conn) => {
      await upToPass(conn);
      conn.reply('-ERR [AUTH] Authentication failed');
      await conn.closed();
    });
    const attempts: RetryAttempt[] = [];
    await assert.rejects(Pop3Client.connect(plainOptions(srv, { retry: { attempts: 5, baseDelay: 1, onAttempt: (a) => attempts.push(a) } })), (error: unknown) => {
      assert.ok(error instanceof Pop3AuthenticationError);
      assert.equal((error as RetriedError).attempts.length, 1);
      return true;
    });
    assert.equal(srv.connections, 1);
    assert.deepEqual(attempts.map((a) => a.delay), [undefined]);
  });

  it('a plain -ERR to PASS (no response code) is a rejected password too', async () => {
    const srv = await serve(async (conn) => {
      await upToPass(conn);
      conn.reply('-ERR invalid login');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(plainOptions(srv, { retry: { attempts: 5, baseDelay: 1 } })), Pop3AuthenticationError);
    assert.equal(srv.connections, 1);
  });

  it('gives up after the last attempt, throwing the last error with every attempt attached', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('-ERR [IN-USE] Mailbox locked');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(plainOptions(srv, { retry: { attempts: 3, baseDelay: 1 } })), (error: unknown) => {
      assert.ok(error instanceof Pop3ConnectionError);
      assert.equal(error.responseCode, 'IN-USE');
      assert.deepEqual((error as RetriedError).attempts.map((a) => a.attempt), [1, 2, 3]);
      return true;
    });
    assert.equal(srv.connections, 3);
  });

  it('[LOGIN-DELAY] waits at least what CAPA announces, learnt without logging in', async () => {
    let logins = 0;
    const srv = await serve(async (conn) => {
      conn.reply('+OK ready');
      await conn.expect('CAPA');
      conn.send('+OK\r\nUSER\r\nLOGIN-DELAY 1\r\n.\r\n');
      const next = await conn.line();
      if (next === 'QUIT') {
        conn.reply('+OK'); // the probe: greeting and CAPA only
        conn.socket.end();
        return;
      }
      logins += 1;
      conn.reply('+OK');
      await conn.expect('PASS secret');
      if (logins === 1) {
        conn.reply('-ERR [LOGIN-DELAY] Logged in too recently');
        await conn.closed();
        return;
      }
      conn.reply('+OK');
      await conn.expect('CAPA');
      conn.send('+OK\r\nUSER\r\n.\r\n');
      await conn.expect('QUIT');
      conn.reply('+OK');
      conn.socket.end();
    });
    const attempts: RetryAttempt[] = [];
    const client = await Pop3Client.connect(plainOptions(srv, { retry: { attempts: 2, baseDelay: 5, onAttempt: (a) => attempts.push(a) } }));
    await client.quit();
    assert.equal(attempts[0]?.error.responseCode, 'LOGIN-DELAY');
    assert.equal(attempts[0]?.delay, 1000);
    assert.equal(srv.connections, 3); // the failed login, the probe, the login that worked
  });

  it('an AbortSignal ends the wait between attempts', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('-ERR [SYS/TEMP] busy');
      await conn.closed();
    });
    const controller = new AbortController();
    const pending = Pop3Client.connect(
      plainOptions(srv, { retry: { attempts: 5, baseDelay: 60_000, onAttempt: () => setImmediate(() => controller.abort()) }, signal: controller.signal }),
    );
    await assert.rejects(pending, (error: unknown) => error instanceof Pop3Error && error.kind === 'aborted' && (error as RetriedError).attempts.length === 1);
  });
});

describe('retry(fn, policy)', () => {
  it('does not retry what is not a Pop3Error, nor a usage error', async () => {
    let calls = 0;
    await assert.rejects(retry(async () => { calls += 1; throw new TypeError('bug'); }, { attempts: 3, baseDelay: 1 }), TypeError);
    assert.equal(calls, 1);
  });

  it('retries a retryable server error and returns the result', async () => {
    let calls = 0;
    const result = await retry(async () => {
      calls += 1;
      if (calls < 3) throw new Pop3ServerError('busy', { code: 'POP3_ERR_REPLY', responseCode: 'SYS/TEMP' });
      return 'done';
    }, { attempts: 3, baseDelay: 1 });
    assert.equal(result, 'done');
    assert.equal(calls, 3);
  });

  it('refuses a policy out of range', async () => {
    await assert.rejects(retry(async () => 1, { attempts: 0 }), (e: unknown) => e instanceof Pop3Error && e.code === 'POP3_INVALID_ARGUMENT');
  });
});
