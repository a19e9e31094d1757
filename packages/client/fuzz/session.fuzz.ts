/**
 * Whole sessions through the engine: the greeting, then STAT, RETR (buffered and streamed), TOP
 * and UIDL n, with and without pipelining, every reply cut into any chunks. The line reader and
 * the dot decoder are exercised here as the engine drives them, back to back in one chunk.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readGreeting } from '../src/commands/greeting.ts';
import { retrBuffer, retrStream } from '../src/commands/retr.ts';
import { stat } from '../src/commands/stat.ts';
import { topBuffer } from '../src/commands/top.ts';
import { uidlOne } from '../src/commands/uidl.ts';
import type { Engine } from '../src/engine.ts';
import { corpus, cuts, inputs, MESSAGES, outcome, scriptedEngine, type FuzzTarget } from './harness.ts';

/** What a server sends for a message: +OK, the dot-stuffed bytes (CRLF added if missing), `.`. */
function retrReply(body: Buffer): { wire: Buffer; decoded: Buffer } {
  const decoded = body.length === 0 || body.at(-1) === 0x0a ? body : Buffer.concat([body, Buffer.from('\r\n')]);
  const stuffed = decoded.toString('latin1').replace(/(^|\n)\./g, '$1..');
  return { wire: Buffer.from(`+OK message follows\r\n${stuffed}.\r\n`, 'latin1'), decoded };
}

async function streamed(engine: Engine, n: number): Promise<string> {
  const { body } = await retrStream(engine, n);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

/** The commands of one session, each as the outcome a caller sees; the session goes on after a failure. */
function session(engine: Engine, pipelining: boolean): Promise<string[]> {
  const steps: Array<() => Promise<unknown>> = [
    () => readGreeting(engine).then(() => {
      engine.state = 'transaction';
      engine.pipelining = pipelining;
    }),
    () => stat(engine),
    () => retrBuffer(engine, 1, 1 << 20).then((b) => b.toString('latin1')),
    () => streamed(engine, 2),
    () => topBuffer(engine, 1, 0, 1 << 20).then((b) => b.toString('latin1')),
    () => uidlOne(engine, 2),
  ];
  // The greeting first; then all commands at once, so that a pipelining engine has them in flight together.
  return outcome(steps[0]!()).then(async (greeting) => [greeting, ...(await Promise.all(steps.slice(1).map((step) => outcome(step()))))]);
}

const greetingSeeds = corpus('greeting');
const lineSeeds = [...corpus('stat'), ...corpus('uidl-one'), ...corpus('list-one')];

const retrieval = fc.asyncProperty(inputs(MESSAGES), inputs(MESSAGES), fc.boolean(), cuts, async (first, second, pipelining, at) => {
  const one = retrReply(first);
  const two = retrReply(second);
  const replies = [greetingSeeds[0]!, Buffer.from('+OK 2 320\r\n'), one.wire, two.wire, one.wire, Buffer.from('+OK 2 abc\r\n')];
  const result = await session(scriptedEngine(replies, at, 'authorization', true), pipelining);
  assert.deepEqual(result, [
    'value undefined',
    `value ${JSON.stringify({ count: 2, size: 320 })}`,
    `value ${JSON.stringify(one.decoded.toString('latin1'))}`,
    `value ${JSON.stringify(two.decoded.toString('latin1'))}`,
    `value ${JSON.stringify(one.decoded.toString('latin1'))}`,
    `value ${JSON.stringify({ n: 2, uid: 'abc' })}`,
  ]);
});

const messageReplies = MESSAGES.map((m) => retrReply(m).wire);

const garbage = fc.asyncProperty(
  inputs(greetingSeeds),
  fc.array(inputs([...lineSeeds, ...messageReplies]), { minLength: 5, maxLength: 5 }),
  fc.boolean(),
  cuts,
  async (greeting, replies, pipelining, at) => {
    const split = session(scriptedEngine([greeting, ...replies], at, 'authorization', true), pipelining);
    const whole = await session(scriptedEngine([greeting, ...replies], [], 'authorization', true), pipelining);
    assert.deepEqual(await split, whole, 'the same outcomes whatever the chunking');
  },
);

export const targets: FuzzTarget[] = [
  { name: 'session: retrieved bytes are the message, pipelined or not, any chunking', property: retrieval },
  { name: 'session: any replies end in values or typed errors, the same for any chunking', property: garbage },
];
