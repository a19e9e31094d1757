/**
 * The MIME summary path (parseMessage, parseHeaders): never throws on what a message contains,
 * in memory and streamed through temp files alike.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { parseHeaders, parseMessage } from '../src/message.ts';
import { cuts, chunked, inputs, MESSAGES, timed, type FuzzTarget } from './harness.ts';

const inMemory = fc.asyncProperty(inputs(MESSAGES), async (bytes) => {
  const parsed = await parseMessage(bytes);
  assert.equal(parsed.size, bytes.length);
  assert.ok(Array.isArray(parsed.headers) && Array.isArray(parsed.attachments));
});

const streamed = fc.asyncProperty(inputs(MESSAGES), cuts, async (bytes, at) => {
  await using parsed = await parseMessage(Readable.from(chunked(bytes, at)), { maxInMemoryBytes: Math.max(1, Math.floor(bytes.length / 2)) });
  assert.equal(parsed.size, bytes.length);
  assert.ok(Array.isArray(parsed.attachments));
});

const headers = fc.property(inputs(MESSAGES), (bytes) => {
  const parsed = timed(1000, () => parseHeaders(bytes));
  assert.ok(Array.isArray(parsed.headers));
});

export const targets: FuzzTarget[] = [
  { name: 'parseMessage in memory: never throws on content', property: inMemory },
  { name: 'parseMessage streamed: never throws on content', property: streamed },
  { name: 'parseHeaders: never throws on content', property: headers },
];
