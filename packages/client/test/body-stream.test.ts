/**
 * A message body is a Readable, read in two ways: `for await`, which takes the decoder's chunks
 * straight from the body (no stream machinery per chunk), and every other way (pipe, 'data',
 * read(), an encoding), which goes through Node's Readable. Both must give the exact bytes, end
 * the stream as Node does, and report what they hold to the engine's memory bound.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Pop3Client } from '../src/index.ts';
import { acceptLogin as login } from '../../../support/scripted-server.ts';
import { plainOptions, useScriptedServer } from './scripted.ts';

const serve = useScriptedServer();

/** A body with stuffed dot lines, in CRLF lines; `stuffed` is what the server sends for it. */
function message(i: number): { bytes: string; stuffed: string } {
  const bytes = `Subject: ${i}\r\n\r\n.leading dot\r\nline ${i}\r\n..two\r\n${'x'.repeat(i % 97)}\r\n`;
  const stuffed = bytes.replace(/^\./gm, '..');
  return { bytes, stuffed };
}

/** Serves RETR 1..count, each reply as the client asks (pipelined), then QUIT. */
function retrServer(count: number, { split = false } = {}) {
  return serve(async (conn) => {
    await login(conn, ['USER', 'UIDL', 'PIPELINING']);
    for (let n = 1; n <= count; n++) {
      await conn.expect(`RETR ${n}`);
      const reply = `+OK\r\n${message(n).stuffed}.\r\n`;
      if (!split) conn.send(reply);
      // One octet at a time: every seam, the terminator's and the stuffed dots' included.
      else for (const octet of reply) conn.send(octet);
    }
    await conn.expect('QUIT');
    conn.reply('+OK');
  });
}

// A lost count or a missed wake-up shows as a hang: each test fails at its timeout instead.
describe('a message body', { timeout: 30_000 }, () => {
  it('read with for await ends as Node ends a stream read to its end: readableEnded, then close', async () => {
    const srv = await retrServer(1);
    const client = await Pop3Client.connect(plainOptions(srv));
    const body = await client.retrieveStream(1);
    const closed = once(body, 'close');
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString('latin1'), message(1).bytes);
    assert.equal(body.readableEnded, true);
    await closed;
    await client.quit();
  });

  it('read with for await and nobody listening, reports itself ended and closed the moment the loop exits', async () => {
    const srv = await retrServer(1);
    const client = await Pop3Client.connect(plainOptions(srv));
    const body = await client.retrieveStream(1);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString('latin1'), message(1).bytes);
    // What Node's own iterator leaves behind (its loop exits after 'close').
    assert.deepEqual([body.readableEnded, body.destroyed, body.closed, body.readable], [true, true, true, false]);
    // Destroying a closed stream does nothing: no error surfaces, and the session goes on.
    body.destroy(new Error('too late'));
    assert.equal(body.errored, null);
    await client.quit();
  });

  it('read with for await and nobody listening, still tells stream.finished and late readers it ended', async () => {
    const srv = await retrServer(2);
    const client = await Pop3Client.connect(plainOptions(srv));
    const bodies: Readable[] = [];
    for await (const { body } of client.retrieveMany([1, 2])) {
      for await (const chunk of body) assert.ok(chunk.length > 0);
      bodies.push(body);
    }
    // finished() on an ended, closed stream calls back at once, without an error.
    await finished(bodies[0] as Readable);
    // A read, or a second for await, finds the end, not a hang.
    assert.equal((bodies[1] as Readable).read(), null);
    for await (const chunk of bodies[1] as Readable) assert.fail(`read ${String(chunk)} after the end`);
    await client.quit();
  });

  it('read through "data" after the whole body arrived gets every byte, in order', async () => {
    const srv = serve(async (conn) => {
      await login(conn);
      await conn.expect('RETR 1');
      conn.send(`+OK\r\n${message(7).stuffed}.\r\n`);
      await conn.expect('NOOP');
      conn.reply('+OK');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(plainOptions(await srv));
    const body = await client.retrieveStream(1);
    // Lock-step: NOOP's reply is read after the body's terminator, so the body is all held now.
    await client.noop();
    const chunks: Buffer[] = [];
    body.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(body, 'end');
    assert.equal(Buffer.concat(chunks).toString('latin1'), message(7).bytes);
    await client.quit();
  });

  it('with an encoding set, for await yields strings, as Node streams do', async () => {
    const srv = await retrServer(1);
    const client = await Pop3Client.connect(plainOptions(srv));
    const body = await client.retrieveStream(1);
    body.setEncoding('latin1');
    let text = '';
    for await (const chunk of body) {
      assert.equal(typeof chunk, 'string');
      text += chunk;
    }
    assert.equal(text, message(1).bytes);
    await client.quit();
  });

  it('arriving one octet at a time, read by a slow for await, comes out byte for byte', async () => {
    const srv = await retrServer(3, { split: true });
    const client = await Pop3Client.connect(plainOptions(srv));
    for await (const { n, body } of client.retrieveMany([1, 2, 3])) {
      const chunks: Buffer[] = [];
      for await (const chunk of body) {
        chunks.push(chunk as Buffer);
        await tick();
      }
      assert.equal(Buffer.concat(chunks).toString('latin1'), message(n).bytes);
    }
    await client.quit();
  });

  it('under a memory bound smaller than one body, pipelined bodies read either way all arrive', async () => {
    // Octets held for a reader count against maxBufferedBytes until read: if a way of reading
    // forgot to give them back, the socket would stay paused and this would never finish.
    const count = 200;
    const srv = await retrServer(count);
    const client = await Pop3Client.connect(plainOptions(srv, { maxBufferedBytes: 64, timeout: 5000 }));
    for await (const { n, body } of client.retrieveMany(Array.from({ length: count }, (_, i) => i + 1))) {
      const chunks: Buffer[] = [];
      if (n % 2 === 0) for await (const chunk of body) chunks.push(chunk as Buffer);
      else {
        body.on('data', (chunk: Buffer) => chunks.push(chunk));
        await once(body, 'end');
      }
      assert.equal(Buffer.concat(chunks).toString('latin1'), message(n).bytes, `message ${n}`);
    }
    await client.quit();
  });
});
