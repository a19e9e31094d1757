/**
 * GET /v1/messages/{id} parses with bounded concurrency (issue 12): two parses at once, 32
 * requests waiting their turn in order, and a 503 BUSY past those, so a client asking for many
 * large messages at once cannot make the service hold many parses' memory.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../src/http/errors.ts';
import { ParseSlots } from '../../src/http/parse-slots.ts';

describe('ParseSlots', () => {
  it('runs two at once, queues 32 in order, refuses the next with 503, and hands each freed slot on', async () => {
    const slots = new ParseSlots();
    const first = await slots.acquire();
    const second = await slots.acquire();
    const order: number[] = [];
    const waiting = Array.from({ length: 32 }, (_, i) => slots.acquire().then((release) => (order.push(i), release)));
    assert.deepEqual(slots.load, { running: 2, waiting: 32 });
    await assert.rejects(slots.acquire(), (e: unknown) => e instanceof ApiError && e.statusCode === 503 && e.code === 'BUSY');
    first();
    first(); // a second call frees nothing more
    const next = await waiting[0]!;
    assert.deepEqual(order, [0]);
    assert.deepEqual(slots.load, { running: 2, waiting: 31 });
    second();
    next();
    for (const pending of waiting.slice(1)) (await pending)();
    assert.deepEqual(order, Array.from({ length: 32 }, (_, i) => i));
    assert.deepEqual(slots.load, { running: 0, waiting: 0 });
  });
});
