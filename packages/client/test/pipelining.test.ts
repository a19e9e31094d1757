/**
 * Bulk retrieval: pipelined against the real Dovecot (byte-equal, mixed sizes, lock-step too),
 * and against scripted servers for what Dovecot will not do: an -ERR mid-batch, a slow server,
 * a connection dropped mid-batch, a server that breaks when pipelined, a slow reader.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pop3Client, Pop3ConnectionError, Pop3ServerError, type Pop3ClientOptions } from '../src/index.ts';
import { expectedRetrBytes, startDovecot, type Dovecot } from '../../../support/dovecot.ts';
import { bulkMessages, smallFixtures } from '../../../support/fixtures.ts';
import { acceptLogin } from '../../../support/scripted-server.ts';
import { dotStuff } from '../../../support/dot-stuff.ts';
import { isError, plainOptions, useScriptedServer } from './scripted.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('against Dovecot', () => {
  let dovecot: Dovecot;
  // Sizes from a few hundred octets to 300 KB, and every hard-case fixture, interleaved.
  const mailbox = [
    ...bulkMessages(200, 600),
    ...smallFixtures().map((f) => f.bytes),
    ...bulkMessages(20, 300_000),
    ...bulkMessages(100, 5000),
  ];
  const expected = mailbox.map((m) => sha256(expectedRetrBytes(m)));

  before(async () => {
    dovecot = await startDovecot();
    await dovecot.setMailbox('alice', mailbox);
  });
  after(() => dovecot?.stop());

  const connect = (extra: Partial<Pop3ClientOptions> = {}) =>
    Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.tlsPort,
      ca: dovecot.ca,
      user: 'alice',
      password: dovecot.users.alice!.password,
      ...extra,
    });

  for (const [name, extra] of [
    ['pipelined, default window', {}],
    ['pipelined, a window of 3', { pipelineDepth: 3 }],
    ['lock-step (pipelining turned off)', { pipelining: false }],
  ] as const) {
    it(`${name}: every message arrives intact and in order`, async () => {
      await using client = await connect(extra);
      assert.equal(client.pipelining, !('pipelining' in extra));
      const seen: number[] = [];
      for await (const { n, body } of client.retrieveMany()) {
        assert.equal(sha256(await collect(body)), expected[n - 1], `message ${n}`);
        seen.push(n);
      }
      assert.deepEqual(
        seen,
        mailbox.map((_, i) => i + 1),
      );
    });
  }

  it('breaking out of the loop leaves the session usable', async () => {
    await using client = await connect();
    let read = 0;
    for await (const { body } of client.retrieveMany()) {
      await collect(body);
      if (++read === 5) break;
    }
    assert.equal((await client.stat()).count, mailbox.length);
    const again = client.retrieveMany([7, 3]);
    const first = await again.next();
    assert.ok(!first.done);
    assert.equal(first.value.n, 7);
    assert.equal(sha256(await collect(first.value.body)), expected[6]);
    await again.return(undefined);
    await client.noop();
  });

  it('a body the loop body did not read is drained, not mixed into the next message', async () => {
    await using client = await connect();
    const hashes: string[] = [];
    let i = 0;
    for await (const { body } of client.retrieveMany([221, 222, 223, 1])) {
      // Skip every other body entirely.
      if (i++ % 2 === 0) hashes.push(sha256(await collect(body)));
    }
    assert.deepEqual(hashes, [expected[220], expected[222]]);
  });
});

describe('against scripted servers', () => {
  const serve = useScriptedServer();
  const message = (n: number) => Buffer.from(`Subject: ${n}\r\n\r\n.${'x'.repeat(n * 10)}\r\n..\r\n`);

  it('an -ERR in the middle of a pipelined batch fails that message; those before are intact', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn, ['USER', 'PIPELINING']);
      for (const n of [1, 2, 3, 4]) await conn.expect(`RETR ${n}`);
      conn.send(Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(message(1))]));
      conn.send('-ERR [SYS/TEMP] Message 2 expunged\r\n');
      conn.send(Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(message(3)), Buffer.from('+OK\r\n'), dotStuff(message(4))]));
      await conn.expect('NOOP');
      conn.reply('+OK');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(plainOptions(srv));
    const got: Buffer[] = [];
    await assert.rejects(async () => {
      for await (const { body } of client.retrieveMany([1, 2, 3, 4])) got.push(await collect(body));
    }, (error: unknown) => error instanceof Pop3ServerError && error.responseCode === 'SYS/TEMP' && error.command === 'RETR 2');
    assert.deepEqual(got, [message(1)]);
    await client.noop(); // messages 3 and 4 were drained behind the error
    await client.quit();
  });

  it('a server that advertises PIPELINING but answers slowly still gets every message right', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn, ['USER', 'PIPELINING']);
      for (let n = 1; n <= 10; n++) {
        await conn.expect(`RETR ${n}`);
        await new Promise((resolve) => setTimeout(resolve, 15));
        // Dribble the reply a few octets at a time: every chunk boundary is a test of the reader.
        const reply = Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(message(n))]);
        for (let i = 0; i < reply.length; i += 7) conn.send(reply.subarray(i, i + 7));
      }
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(plainOptions(srv));
    let n = 0;
    for await (const item of client.retrieveMany([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])) {
      assert.deepEqual(await collect(item.body), message(++n));
    }
    assert.equal(n, 10);
    await client.quit();
  });

  it('a connection dropped mid-batch is a connection error; messages already delivered are intact', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn, ['USER', 'PIPELINING']);
      for (const n of [1, 2, 3]) await conn.expect(`RETR ${n}`);
      const all = Buffer.concat([1, 2, 3].map((n) => Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(message(n))])));
      conn.send(all.subarray(0, all.length - 40));
      conn.socket.destroy();
    });
    const client = await Pop3Client.connect(plainOptions(srv));
    const got: Buffer[] = [];
    await assert.rejects(async () => {
      for await (const { body } of client.retrieveMany([1, 2, 3])) got.push(await collect(body));
    }, isError(Pop3ConnectionError, 'POP3_CONNECTION_CLOSED'));
    assert.deepEqual(got, [message(1), message(2)]);
  });

  it('a server that breaks the protocol while pipelined is spoken to in lock-step from then on', async () => {
    let connection = 0;
    const srv = await serve(async (conn) => {
      connection += 1;
      await acceptLogin(conn, ['USER', 'PIPELINING']);
      if (connection === 1) {
        await conn.expect('RETR 1');
        await conn.expect('RETR 2');
        conn.send('+OK\r\none\r\n.\r\ngarbage instead of a status line\r\n');
        await conn.closed();
        return;
      }
      await conn.expect('RETR 1');
      // In lock-step, RETR 2 must not arrive before RETR 1 is answered.
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(conn.hasInput(), false, 'a second command arrived before the first was answered');
      conn.send('+OK\r\none\r\n.\r\n');
      await conn.expect('RETR 2');
      conn.send('+OK\r\ntwo\r\n.\r\n');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const first = await Pop3Client.connect(plainOptions(srv));
    assert.equal(first.pipelining, true);
    await assert.rejects(Promise.all([first.retrieve(1), first.retrieve(2)]));
    const second = await Pop3Client.connect(plainOptions(srv));
    assert.equal(second.pipelining, false);
    const bodies = await Promise.all([second.retrieve(1), second.retrieve(2)]);
    assert.deepEqual(bodies.map(String), ['one\r\n', 'two\r\n']);
    await second.quit();
  });

  it('never frames a body by the size LIST or the +OK line claims', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('LIST');
      conn.send('+OK\r\n1 5\r\n.\r\n');
      await conn.expect('RETR 1');
      conn.send(Buffer.concat([Buffer.from('+OK 5 octets\r\n'), dotStuff(message(9))]));
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(plainOptions(srv));
    for await (const { body } of client.retrieveMany()) assert.deepEqual(await collect(body), message(9));
    await client.quit();
  });

  it('a slow reader pauses the socket: the server cannot push more than the budget into our memory', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let serverWrote = 0;
    const srv = await serve(async (conn) => {
      await acceptLogin(conn, ['USER', 'PIPELINING']);
      await conn.expect('RETR 1');
      conn.send('+OK\r\n');
      // Offer 64 MiB; count what the kernel actually accepted from us after a while.
      for (let i = 0; i < 1024; i++) conn.send(chunk);
      await new Promise((resolve) => setTimeout(resolve, 400));
      serverWrote = conn.socket.bytesWritten - conn.socket.writableLength;
      conn.send('\r\n.\r\n');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(plainOptions(srv, { maxBufferedBytes: 1024 * 1024, timeout: 5000 }));
    const body = await client.retrieveStream(1);
    await new Promise((resolve) => setTimeout(resolve, 600)); // the reader is busy elsewhere
    // Budget (1 MiB) + one socket chunk + both kernels' socket buffers: far below 64 MiB.
    assert.ok(serverWrote < 24 * 1024 * 1024, `server pushed ${serverWrote} octets at a paused client`);
    const size = (await collect(body)).length;
    assert.equal(size, 64 * 1024 * 1024 + 2);
    await client.quit();
  });
});
