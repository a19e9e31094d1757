/**
 * Regression (found by `npm run fuzz`, target "CAPA"): `LOGIN-DELAY 9999999999999999930` gave
 * `loginDelay: 10000000000000000000`, a number that is not the one the server sent (past 2^53 a
 * JS number is not exact), and that a caller adding it to a date turns into an Invalid Date.
 * LIST and STAT already refuse counts of more than 15 digits; LOGIN-DELAY and EXPIRE now ignore
 * them like any other malformed argument.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCapabilities } from '../src/capabilities.ts';

describe('CAPA arguments that are numbers', () => {
  it('reads LOGIN-DELAY and EXPIRE of up to 15 digits', () => {
    const caps = parseCapabilities(['LOGIN-DELAY 900', 'EXPIRE 999999999999999']);
    assert.equal(caps.loginDelay, 900);
    assert.equal(caps.expire, 999_999_999_999_999);
  });

  it('ignores a LOGIN-DELAY or EXPIRE too long to be exact, keeping the line', () => {
    const caps = parseCapabilities(['LOGIN-DELAY 9999999999999999930', 'EXPIRE 12345678901234567']);
    assert.equal(caps.loginDelay, undefined);
    assert.equal(caps.expire, undefined);
    assert.ok(caps.has('LOGIN-DELAY') && caps.has('EXPIRE'));
  });
});
