/**
 * Credentials at rest: AES-256-GCM under a key ring. A sealed value opens only with a key of the
 * ring and only where it belongs; a changed byte fails; rotation moves everything to the new key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { keyId, loadKeyRing, parseKeyRing, SecretBox, SecretKeyError } from '../../src/accounts/secrets.ts';

const isKeyError = (e: unknown) => e instanceof SecretKeyError;

describe('SecretBox', () => {
  const key = randomBytes(32);

  it('opens what it sealed, and the sealed text holds no trace of the secret', () => {
    const box = new SecretBox([key]);
    const sealed = box.seal('hunter2-password', 'account:a');
    assert.equal(box.open(sealed, 'account:a'), 'hunter2-password');
    assert.equal(sealed.includes('hunter2'), false);
    assert.notEqual(box.seal('hunter2-password', 'account:a'), sealed, 'a fresh IV each time');
  });

  it('refuses a sealed value moved to another context (another account)', () => {
    const box = new SecretBox([key]);
    assert.throws(() => box.open(box.seal('x', 'account:a'), 'account:b'), isKeyError);
  });

  it('refuses a sealed value with any byte changed', () => {
    const box = new SecretBox([key]);
    const parts = box.seal('secret', 'c').split('.');
    const body = Buffer.from(parts[4]!, 'base64url');
    body[0]! ^= 1;
    parts[4] = body.toString('base64url');
    assert.throws(() => box.open(parts.join('.'), 'c'), isKeyError);
  });

  it('refuses a sealed value whose tag was cut short, though the short tag is a true prefix (GCM truncation)', () => {
    const box = new SecretBox([key]);
    const parts = box.seal('secret', 'c').split('.');
    for (const bytes of [4, 8, 12, 15]) {
      const short = [...parts];
      short[3] = Buffer.from(parts[3]!, 'base64url').subarray(0, bytes).toString('base64url');
      assert.throws(() => box.open(short.join('.'), 'c'), isKeyError, `a ${bytes}-byte tag`);
    }
    assert.equal(Buffer.from(parts[3]!, 'base64url').length, 16, 'seals with a 16-byte tag');
  });

  it('opens with an older key of the ring, seals with the first, and says which need re-sealing', () => {
    const old = new SecretBox([key]);
    const sealed = old.seal('secret', 'c');
    const fresh = randomBytes(32);
    const rotated = new SecretBox([fresh, key]);
    assert.equal(rotated.open(sealed, 'c'), 'secret');
    assert.equal(rotated.isCurrent(sealed), false);
    assert.equal(rotated.isCurrent(rotated.seal('secret', 'c')), true);
    assert.equal(rotated.currentKeyId, keyId(fresh));
    assert.throws(() => new SecretBox([fresh]).open(sealed, 'c'), (e: unknown) => isKeyError(e) && /not in the key ring/.test((e as Error).message));
  });

  it('refuses an empty ring and keys that are not 32 bytes', () => {
    assert.throws(() => new SecretBox([]), isKeyError);
    assert.throws(() => new SecretBox([randomBytes(16)]), isKeyError);
  });
});

describe('key rings', () => {
  it('reads base64 and hex keys, comma or line separated, comments skipped, first one first', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const ring = parseKeyRing(`# current\n${a.toString('base64')}\n${b.toString('hex')}`);
    assert.deepEqual(ring, [a, b]);
    assert.deepEqual(parseKeyRing(`${a.toString('base64')},${b.toString('base64')}`), [a, b]);
  });

  it('refuses a key of the wrong length, naming the rule', () => {
    assert.throws(() => parseKeyRing('c2hvcnQ='), (e: unknown) => isKeyError(e) && /32 bytes/.test((e as Error).message));
  });

  it('takes POPWIRE_SECRET_KEY over the file, and names a file it cannot read', () => {
    const a = randomBytes(32).toString('base64');
    assert.equal(loadKeyRing({ env: a, file: '/nonexistent' }).length, 1);
    assert.throws(() => loadKeyRing({ file: '/nonexistent/key' }), (e: unknown) => isKeyError(e) && /\/nonexistent\/key/.test((e as Error).message));
    assert.deepEqual(loadKeyRing({}), []);
  });
});
