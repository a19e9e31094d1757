/**
 * retrieveMany's read path as a whole (engine framing, status lines, dot decoder, body iterator),
 * fed a stream of pipelined RETR replies split at every offset. Each split puts a seam somewhere
 * else: inside a status line or its CRLF, inside a stuffed `..`, between the `.` and the CR of a
 * terminator, between one reply's terminator and the next reply's `+OK`. Whatever the seams, every
 * body must come out byte for byte, in order, and nothing else may leak into it.
 *
 * No socket: the engine reads from a stand-in that records what is written and hands the test's
 * chunks to the engine as 'data', the way net.Socket does.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { once } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { retrMany } from '../src/commands/retr.ts';
import { Engine } from '../src/engine.ts';
import { Pop3ServerError } from '../src/errors.ts';
import { dotStuff } from '../../../support/dot-stuff.ts';
import { splitAt } from '../../../support/chunks.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

/** Bodies chosen for their seams; what RETR must give back for each (dotStuff adds a final CRLF when missing). */
const BODIES = [
  b('Subject: one\r\n\r\n.leading dot\r\n..two dots\r\nplain\r\n'),
  b(''),
  b('.\r\n..\r\n.\rx\r\n'), // lines that are only dots, and a dot then CR then not LF
  b('bare\nLF\n.dot after LF\n'), // a sloppy server's bare LFs stay as they are
  b('no final line ending'),
  b('\xff\x00\x80 8-bit bytes\r\n.\xfe\r\n'),
];
const EXPECTED = BODIES.map((body) => (body.length > 0 && body[body.length - 1] !== 0x0a ? Buffer.concat([body, b('\r\n')]) : body));
/** Status lines vary too: text or none, a bare LF, another case. */
const STATUS = ['+OK 54 octets\r\n', '+OK\r\n', '+OK message follows\n', '+ok\r\n', '+OK [SOME-CODE] text\r\n', '+OK 40\r\n'];
const STREAM = Buffer.concat(BODIES.map((body, i) => Buffer.concat([b(STATUS[i] as string), dotStuff(body)])));

/** What the engine needs of a net.Socket. */
class StandInSocket extends EventEmitter {
  destroyed = false;
  readonly written: string[] = [];
  setTimeout(): void {}
  cork(): void {}
  uncork(): void {}
  pause(): void {}
  resume(): void {}
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    queueMicrotask(() => this.emit('close'));
  }
  write(bytes: Buffer): boolean {
    this.written.push(bytes.toString('latin1'));
    return true;
  }
}

function engineOn(socket: StandInSocket, maxBufferedBytes = 1 << 20): Engine {
  const engine = new Engine(socket as never, { timeout: 60_000, maxLineLength: 512, pipelineDepth: 8, maxBufferedBytes });
  engine.state = 'transaction';
  engine.pipelining = true;
  return engine;
}

/**
 * Retrieves messages 1..BODIES.length while `chunks` arrive one per turn of the event loop, and
 * returns each body as read: by `for await`, or (`readable`) through the Readable's 'data'.
 */
async function retrieveAll(chunks: Buffer[], { readable = false, maxBufferedBytes = 1 << 20 } = {}): Promise<Buffer[]> {
  const socket = new StandInSocket();
  const engine = engineOn(socket, maxBufferedBytes);
  const messages = retrMany(engine, () => ({ numbers: BODIES.map((_, i) => i + 1), ahead: 8 }));
  const feeding = (async () => {
    await tick(); // the first next() has made its plan and written the RETRs
    for (const chunk of chunks) {
      if (chunk.length > 0) socket.emit('data', chunk);
      await tick();
    }
  })();
  const bodies: Buffer[] = [];
  for await (const { n, body } of messages) {
    assert.equal(n, bodies.length + 1);
    const parts: Buffer[] = [];
    if (readable) {
      body.on('data', (part: Buffer) => parts.push(Buffer.from(part)));
      await once(body, 'end');
    } else {
      // Copied: a chunk is a view of the socket's chunk, and the test's chunks are views of STREAM.
      for await (const part of body) parts.push(Buffer.from(part as Buffer));
    }
    bodies.push(Buffer.concat(parts));
  }
  await feeding;
  assert.equal(socket.written.join(''), BODIES.map((_, i) => `RETR ${i + 1}\r\n`).join(''));
  return bodies;
}

describe('retrieveMany framing', { timeout: 120_000 }, () => {
  it('gives every body byte for byte when the replies arrive in one chunk', async () => {
    assert.deepEqual(await retrieveAll([STREAM]), EXPECTED);
  });

  it('gives every body byte for byte whichever offset the replies are split at', async () => {
    for (let cut = 1; cut < STREAM.length; cut++) {
      const bodies = await retrieveAll([STREAM.subarray(0, cut), STREAM.subarray(cut)]);
      assert.deepEqual(bodies, EXPECTED, `split at ${cut}: ${JSON.stringify(STREAM.subarray(Math.max(0, cut - 4), cut + 4).toString('latin1'))}`);
    }
  });

  it('gives every body byte for byte with every octet in a chunk of its own, read through "data" too', async () => {
    const octets = Array.from(STREAM, (_, i) => STREAM.subarray(i, i + 1));
    assert.deepEqual(await retrieveAll(octets), EXPECTED);
    assert.deepEqual(await retrieveAll(octets, { readable: true }), EXPECTED);
  });

  it('gives every body byte for byte for any chunking, read either way, with a memory bound smaller than a body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), async (cuts, readable) => {
        assert.deepEqual(await retrieveAll(splitAt(STREAM, cuts), { readable, maxBufferedBytes: 8 }), EXPECTED);
      }),
      { numRuns: 200 },
    );
  });

  it('an -ERR at its turn ends the loop with a server error; the bodies before it are whole', async () => {
    const socket = new StandInSocket();
    const engine = engineOn(socket);
    const messages = retrMany(engine, () => ({ numbers: [1, 2, 3], ahead: 3 }));
    const first = messages.next();
    await tick();
    socket.emit('data', Buffer.concat([b('+OK\r\n'), dotStuff(BODIES[0] as Buffer), b('-ERR no such message\r\n+OK\r\n'), dotStuff(BODIES[2] as Buffer)]));
    const one = await first;
    assert.equal(one.done, false);
    const parts: Buffer[] = [];
    for await (const part of (one.value as { body: AsyncIterable<Buffer> }).body) parts.push(part);
    assert.deepEqual(Buffer.concat(parts), EXPECTED[0]);
    await assert.rejects(messages.next(), (error: unknown) => error instanceof Pop3ServerError && error.code === 'POP3_ERR_REPLY');
    assert.deepEqual(await messages.next(), { value: undefined, done: true });
    // Message 3's reply was drained, not left in the way: the session reads on from a line start.
    assert.equal(engine.closed, false);
  });

  it('next() called again before the first settled answers both, in order', async () => {
    const socket = new StandInSocket();
    const engine = engineOn(socket);
    const messages = retrMany(engine, () => ({ numbers: [1, 2], ahead: 2 }));
    const first = messages.next();
    const second = messages.next();
    await tick();
    socket.emit('data', Buffer.concat([b('+OK\r\n'), dotStuff(BODIES[0] as Buffer), b('+OK\r\n'), dotStuff(BODIES[1] as Buffer)]));
    assert.equal((await first).value?.n, 1);
    assert.equal((await second).value?.n, 2);
    assert.equal((await messages.next()).done, true);
  });
});
