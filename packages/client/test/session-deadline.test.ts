/**
 * A session deadline (issue 16, "Slow drip"): a server that sends one byte every few seconds
 * never timed out, because `timeout` is per reply and every byte restarts it. `deadline` bounds
 * the whole session, connect included. The scripted servers here drip one byte every 50 ms
 * under a per-reply timeout of 5 s, so only the deadline can end the session.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3Client } from '../src/client.ts';
import { Pop3TimeoutError, Pop3UsageError } from '../src/errors.ts';
import { acceptLogin, drip, type ScriptedConnection } from '../../../support/scripted-server.ts';
import { isError, plainOptions, useScriptedServer } from './scripted.ts';

const serve = useScriptedServer();


function namesTheDeadline(error: unknown): boolean {
  isError(Pop3TimeoutError, 'POP3_TIMEOUT')(error);
  assert.match((error as Error).message, /session's deadline passed \(\d{4}-\d\d-\d\dT/);
  assert.equal((error as Pop3TimeoutError).retryable, false);
  assert.ok((error as Pop3TimeoutError).deadline instanceof Date);
  return true;
}

describe('the session deadline', { timeout: 30_000 }, () => {
  it('fails a listing that drips one byte at a time with POP3_TIMEOUT naming the deadline, and closes the session', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('LIST');
      conn.send('+OK\r\n');
      await drip(conn, '1 100\r\n');
    });
    const client = await Pop3Client.connect(plainOptions(srv, { timeout: 5000, deadline: 400 }));
    await assert.rejects(client.list(), namesTheDeadline);
    assert.equal(client.state, 'closed');
  });

  it('setDeadline() bounds what follows, one command, on a session connected without a deadline', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('STAT');
      conn.reply('+OK 2 200');
      await conn.expect('UIDL');
      conn.send('+OK\r\n');
      await drip(conn, '1 abc\r\n');
    });
    const client = await Pop3Client.connect(plainOptions(srv, { timeout: 5000 }));
    client.setDeadline(60_000);
    assert.deepEqual(await client.stat(), { count: 2, size: 200 });
    client.setDeadline(new Date(Date.now() + 300));
    await assert.rejects(client.uidl(), namesTheDeadline);
  });

  it('setDeadline(undefined) removes the deadline it set', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('NOOP');
      // Answered only after the removed deadline would have passed.
      await new Promise((resolve) => setTimeout(resolve, 300));
      conn.reply('+OK');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(plainOptions(srv, { timeout: 5000 }));
    client.setDeadline(100);
    client.setDeadline(undefined);
    await client.noop();
    await client.quit();
  });

  it('bounds the connect too: a greeting dripped a byte at a time fails the connect', async () => {
    const srv = await serve(async (conn) => {
      await drip(conn, '+OK slow greeting ');
    });
    await assert.rejects(Pop3Client.connect(plainOptions(srv, { timeout: 5000, deadline: 300 })), namesTheDeadline);
  });

  it('takes a Date; a Date already past fails the connect with POP3_TIMEOUT', async () => {
    const srv = await serve(async (conn) => {
      // The connect may be failed before or after the server accepted it.
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(plainOptions(srv, { deadline: new Date(Date.now() - 1000) })), namesTheDeadline);
  });

  it('a session that ends in time is not disturbed by its deadline', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('STAT');
      conn.reply('+OK 1 100');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(plainOptions(srv, { deadline: new Date(Date.now() + 60_000) }));
    assert.deepEqual(await client.stat(), { count: 1, size: 100 });
    await client.quit();
  });

  for (const bad of [0, -5, Number.NaN, new Date(Number.NaN)]) {
    it(`refuses deadline ${String(bad)} with POP3_INVALID_ARGUMENT before connecting`, async () => {
      await assert.rejects(
        Pop3Client.connect({ host: '127.0.0.1', port: 1, tls: 'none', deadline: bad }),
        isError(Pop3UsageError, 'POP3_INVALID_ARGUMENT'),
      );
    });
  }
});
