/** readInto: a message stream read to its end, every way it can fail reported, the body destroyed on failure. */
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { readInto } from '../../src/delivery/read.ts';

const chunks = ['one', 'two', 'three'].map((text) => Buffer.from(text));

describe('readInto', () => {
  it('hands over every chunk in order and resolves at the end', async () => {
    const seen: string[] = [];
    await readInto(Readable.from(chunks), (chunk) => void seen.push(chunk.toString()));
    assert.deepEqual(seen, ['one', 'two', 'three']);
  });

  it('with an asynchronous onChunk, waits for each before the next: one at a time', async () => {
    let busy = false;
    const seen: string[] = [];
    await readInto(Readable.from(chunks), async (chunk) => {
      assert.equal(busy, false, 'onChunk called while the previous one was pending');
      busy = true;
      await delay(10);
      seen.push(chunk.toString());
      busy = false;
    });
    assert.deepEqual(seen, ['one', 'two', 'three']);
  });

  it('rejects with the body\'s error (the connection dropped)', async () => {
    const body = new PassThrough();
    const reading = readInto(body, () => {});
    body.write('part');
    body.destroy(new Error('connection lost'));
    await assert.rejects(reading, /connection lost/);
  });

  it('rejects with the body\'s error when it failed before reading began', async () => {
    const body = new PassThrough();
    body.on('error', () => {});
    body.destroy(new Error('failed early'));
    await delay(1);
    await assert.rejects(readInto(body, () => {}), /failed early/);
  });

  it('rejects when the body closes before its end, without an error', async () => {
    const body = new PassThrough();
    const reading = readInto(body, () => {});
    body.write('part');
    body.destroy();
    await assert.rejects(reading, /closed before its end/);
  });

  it("reads through the body's own async iterator, never a 'data' listener (the library's bodies stay off Node's stream machinery that way)", async () => {
    const body = new PassThrough();
    let iterated = false;
    body[Symbol.asyncIterator] = async function* () {
      iterated = true;
      yield* chunks;
    } as unknown as PassThrough[typeof Symbol.asyncIterator];
    const onData = body.on.bind(body);
    body.on = ((event: string, listener: (...args: unknown[]) => void) => {
      assert.notEqual(event, 'data', "a 'data' listener would switch the body to Node's flowing mode");
      return onData(event, listener);
    }) as typeof body.on;
    const seen: string[] = [];
    await readInto(body, (chunk) => void seen.push(chunk.toString()));
    assert.equal(iterated, true);
    assert.deepEqual(seen, ['one', 'two', 'three']);
  });

  for (const kind of ['throws', 'rejects'] as const) {
    it(`when onChunk ${kind} (a failed write), rejects with that error and destroys the body`, async () => {
      const body = new PassThrough();
      const failure = Object.assign(new Error('EFBIG: file too large'), { code: 'EFBIG' });
      const reading = readInto(body, () => {
        if (kind === 'throws') throw failure;
        return Promise.reject(failure);
      });
      body.write('part');
      await assert.rejects(reading, { code: 'EFBIG' });
      assert.equal(body.destroyed, true);
    });
  }
});
