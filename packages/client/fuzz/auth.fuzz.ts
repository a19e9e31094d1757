/**
 * What a server says during login: SCRAM's server-first and server-final messages, the CRAM-MD5
 * challenge, SASL continuation lines, and the APOP timestamp in the greeting.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { apopTimestamp } from '../src/auth/apop.ts';
import { cramMd5 } from '../src/auth/cram-md5.ts';
import { runSasl, type SaslMechanism } from '../src/auth/sasl.ts';
import { scram } from '../src/auth/scram.ts';
import { Sensitive } from '../src/protocol/command.ts';
import { assertTyped, corpus, cuts, inputs, protocolish, scriptedEngine, timed, type FuzzTarget } from './harness.ts';

/** RFC 7677 section 3's exchange: user "user", password "pencil", this client nonce. */
const rfc7677 = () => scram('sha256', 'user', new Sensitive('pencil'), { nonce: 'rOprNGfwEbeRWgbNEkqO' });

const continuation = (message: Buffer) => Buffer.from(`+ ${message.toString('base64')}\r\n`, 'latin1');
/** A challenge line: usually a well-formed `+ base64` of a mutated message, sometimes a mutated line. */
const challengeLine = (seeds: Buffer[]) =>
  fc.oneof({ arbitrary: inputs(seeds).map(continuation), weight: 3 }, { arbitrary: inputs(seeds.map(continuation)), weight: 1 });
const finalLine = inputs([Buffer.from('+OK Logged in.\r\n'), Buffer.from('-ERR [AUTH] Authentication failed.\r\n')]);

/** A login ends logged in or in a typed error. */
async function login(engine: ReturnType<typeof scriptedEngine>, mechanism: SaslMechanism): Promise<void> {
  try {
    await runSasl(engine, mechanism);
    // Logged in; the connection may have failed since, on bytes after the +OK that answer nothing.
    assert.ok(engine.state === 'transaction' || engine.state === 'closed', engine.state);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assertTyped(error);
  }
}

const scramExchange = fc.asyncProperty(challengeLine(corpus('scram-first')), challengeLine(corpus('scram-final')), finalLine, cuts, async (first, final, ok, at) => {
  await login(scriptedEngine([first, final, ok], at, 'authorization'), rfc7677());
});

/** The mechanism alone, without the engine: each step resolves or rejects with a typed error. */
const scramSteps = fc.asyncProperty(inputs(corpus('scram-first')), inputs(corpus('scram-final')), async (first, final) => {
  const mechanism = rfc7677();
  await mechanism.start();
  try {
    await mechanism.step(first);
    await mechanism.step(final);
    mechanism.finish?.();
  } catch (error) {
    assertTyped(error);
  }
});

const cramExchange = fc.asyncProperty(challengeLine(corpus('cram')), finalLine, cuts, async (challenge, ok, at) => {
  await login(scriptedEngine([challenge, ok], at, 'authorization'), cramMd5('user', new Sensitive('tanstaaftanstaaf')));
});

/** Greetings, real and mutated, and long runs of '<', '@' and '>' (CVE-2018-1060 was quadratic on them). */
const greetings = fc.oneof(
  inputs(corpus('greeting')),
  fc.tuple(fc.constantFrom('<', '<@', '<a@', '@>', '<a', '>', ' '), fc.integer({ min: 1, max: 20_000 }), protocolish).map(([unit, n, tail]) =>
    Buffer.concat([Buffer.from(unit.repeat(n), 'latin1'), tail]),
  ),
);

const apop = fc.property(greetings, (bytes) => {
  const greeting = bytes.toString('utf8');
  const stamp = timed(1000, () => apopTimestamp(greeting));
  if (stamp === undefined) return;
  assert.ok(greeting.includes(stamp), 'the timestamp is taken from the greeting');
  assert.match(stamp, /^<[\x21-\x7e]*@[\x21-\x7e]*>$/);
  assert.ok(stamp.length <= 998);
});

export const targets: FuzzTarget[] = [
  { name: 'SCRAM-SHA-256 login: logged in or a typed error', property: scramExchange },
  { name: 'SCRAM steps: server-first and server-final parsed or refused', property: scramSteps },
  { name: 'CRAM-MD5 login: logged in or a typed error', property: cramExchange },
  { name: 'APOP timestamp: a printable <..@..> from the greeting, in bounded time', property: apop },
];
