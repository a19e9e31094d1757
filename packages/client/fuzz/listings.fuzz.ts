/**
 * CAPA, LIST, UIDL and STAT through the engine: a server's reply, mutated and cut into any
 * chunks, gives a well-formed value or a typed error, and the same one whatever the chunking.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Capabilities } from '../src/capabilities.ts';
import { capa } from '../src/commands/capa.ts';
import { listAll, listOne, type MessageSize } from '../src/commands/list.ts';
import { stat } from '../src/commands/stat.ts';
import { uidlAll, uidlOne, type MessageUid } from '../src/commands/uidl.ts';
import type { Engine } from '../src/engine.ts';
import { corpus, cuts, inputs, outcome, scriptedEngine, type FuzzTarget } from './harness.ts';

/** Small, so that the too-many-entries bound is reached by some inputs. */
const MAX_ENTRIES = 16;

const count = (n: number) => Number.isSafeInteger(n) && n >= 0;

function checkSize(value: MessageSize): void {
  assert.ok(count(value.n) && count(value.size), JSON.stringify(value));
}

function checkUid(value: MessageUid): void {
  assert.ok(count(value.n) && /^[\x21-\x7e]{1,512}$/.test(value.uid), JSON.stringify(value));
}

function checkCapabilities(value: Capabilities): void {
  assert.ok(value.sasl.every((m) => m.length > 0 && m === m.toUpperCase()));
  assert.ok(value.loginDelay === undefined || count(value.loginDelay));
  assert.ok(value.expire === undefined || value.expire === 'never' || count(value.expire));
}

/** A command's reply: a value checked by `check`, or a typed error; the same for two chunkings. */
function listing<T>(seeds: Buffer[], run: (engine: Engine) => Promise<T>, check: (value: T) => void) {
  return fc.asyncProperty(inputs(seeds), cuts, async (reply, at) => {
    const split = run(scriptedEngine([reply], at));
    const splitOutcome = outcome(split);
    const whole = await outcome(run(scriptedEngine([reply], [])));
    assert.equal(await splitOutcome, whole, 'the same outcome whatever the chunking');
    try {
      check(await split);
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
    }
  });
}

export const targets: FuzzTarget[] = [
  { name: 'CAPA: capabilities or a typed error', property: listing(corpus('capa'), capa, checkCapabilities) },
  { name: 'LIST: sizes or a typed error', property: listing(corpus('list'), async (engine) => [...(await listAll(engine, MAX_ENTRIES))], (all) => all.forEach(checkSize)) },
  { name: 'LIST n: a size or a typed error', property: listing(corpus('list-one'), (engine) => listOne(engine, 2), checkSize) },
  { name: 'UIDL: unique ids or a typed error', property: listing(corpus('uidl'), async (engine) => [...(await uidlAll(engine, MAX_ENTRIES))], (all) => all.forEach(checkUid)) },
  { name: 'UIDL n: a unique id or a typed error', property: listing(corpus('uidl-one'), (engine) => uidlOne(engine, 2), checkUid) },
  { name: 'STAT: counts or a typed error', property: listing(corpus('stat'), stat, (s) => assert.ok(count(s.count) && count(s.size))) },
];
