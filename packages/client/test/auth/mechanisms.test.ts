/**
 * Each SASL mechanism on its own, fed bytes and checked byte for byte against the examples in its
 * RFC: no socket. The exchange around them is tested against the scripted server and Dovecot.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cramMd5 } from '../../src/auth/cram-md5.ts';
import { login } from '../../src/auth/login.ts';
import { oauthBearer } from '../../src/auth/oauthbearer.ts';
import { plain } from '../../src/auth/plain.ts';
import { escapeSaslName } from '../../src/auth/sasl.ts';
import { saslPrep } from '../../src/auth/saslprep.ts';
import { scram } from '../../src/auth/scram.ts';
import { xoauth2 } from '../../src/auth/xoauth2.ts';
import { Pop3Error, Pop3ProtocolError, Pop3UsageError } from '../../src/errors.ts';
import { Sensitive } from '../../src/protocol/command.ts';

const secret = (text: string) => new Sensitive(text);
const token = (text: string) => async () => new Sensitive(text);
const bytes = (text: string) => Buffer.from(text, 'utf8');

function isError(code: string) {
  return (error: unknown) => error instanceof Pop3Error && error.code === code;
}

describe('PLAIN (RFC 4616)', () => {
  it('sends NUL user NUL password, with an empty authzid', async () => {
    const mechanism = plain('tim', secret('tanstaaf'));
    assert.deepEqual(await mechanism.start(), bytes('\0tim\0tanstaaf'));
  });

  it('refuses a NUL in the password before anything is sent', async () => {
    await assert.rejects(plain('tim', secret('a\0b')).start(), (e: unknown) => e instanceof Pop3UsageError);
  });

  it('refuses a challenge after the credentials', async () => {
    await assert.rejects(plain('tim', secret('x')).step(Buffer.alloc(0)), isError('POP3_BAD_REPLY'));
  });
});

describe('LOGIN', () => {
  it('answers the first prompt with the user name and the second with the password, whatever their text', async () => {
    const mechanism = login('tim', secret('tanstaaf'));
    assert.equal(await mechanism.start(), undefined);
    assert.deepEqual(await mechanism.step(bytes('User Name\0')), bytes('tim'));
    assert.deepEqual(await mechanism.step(bytes('Password:')), bytes('tanstaaf'));
    await assert.rejects(mechanism.step(bytes('Anything else?')), isError('POP3_BAD_REPLY'));
  });
});

describe('CRAM-MD5 (RFC 2195)', () => {
  it('gives the answer of RFC 2195 section 2', async () => {
    const mechanism = cramMd5('tim', secret('tanstaaftanstaaf'));
    assert.equal(await mechanism.start(), undefined);
    const answer = await mechanism.step(bytes('<1896.697170952@postoffice.reston.mci.net>'));
    assert.equal(answer.toString(), 'tim b913a602c7eda7a495b4e6e7334d3890');
    await assert.rejects(mechanism.step(bytes('<again@there>')), isError('POP3_BAD_REPLY'));
  });
});

describe('SCRAM (RFC 5802, RFC 7677)', () => {
  it('SCRAM-SHA-1 reproduces the exchange of RFC 5802 section 5 and verifies its server signature', async () => {
    const mechanism = scram('sha1', 'user', secret('pencil'), { nonce: 'fyko+d2lbbFgONRv9qkxdawL' });
    assert.equal((await mechanism.start())?.toString(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    const final = await mechanism.step(bytes('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
    assert.equal(final.toString(), 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    assert.equal((await mechanism.step(bytes('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='))).length, 0);
    mechanism.finish?.();
  });

  it('SCRAM-SHA-256 reproduces the exchange of RFC 7677 section 3', async () => {
    const mechanism = scram('sha256', 'user', secret('pencil'), { nonce: 'rOprNGfwEbeRWgbNEkqO' });
    assert.equal((await mechanism.start())?.toString(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
    const final = await mechanism.step(bytes(serverFirst));
    assert.equal(
      final.toString(),
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    assert.equal((await mechanism.step(bytes('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='))).length, 0);
    mechanism.finish?.();
  });

  const serverFirst = 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096';
  const started = async () => {
    const mechanism = scram('sha1', 'user', secret('pencil'), { nonce: 'fyko+d2lbbFgONRv9qkxdawL' });
    await mechanism.start();
    return mechanism;
  };

  it('a wrong server signature is an error, not a login', async () => {
    const mechanism = await started();
    await mechanism.step(bytes(serverFirst));
    await assert.rejects(mechanism.step(bytes('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=')), (error: unknown) => {
      assert.ok(error instanceof Pop3ProtocolError);
      assert.equal(error.code, 'POP3_SASL_SERVER_SIGNATURE');
      return true;
    });
  });

  it('+OK before the server signature is an error', async () => {
    const mechanism = await started();
    await mechanism.step(bytes(serverFirst));
    assert.throws(() => mechanism.finish?.(), isError('POP3_SASL_SERVER_SIGNATURE'));
  });

  it('e= in the server-final message is answered empty and kept for the error message', async () => {
    const mechanism = await started();
    await mechanism.step(bytes(serverFirst));
    assert.equal((await mechanism.step(bytes('e=invalid-proof'))).length, 0);
    assert.equal(mechanism.failureDetail, 'server says invalid-proof');
  });

  for (const [what, message] of [
    ['a nonce that does not extend ours', 'r=someone-else,s=QSXCR+Q6sek8bf92,i=4096'],
    ['the bare client nonce', 'r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096'],
    ['a mandatory extension', 'm=ext,r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096'],
    ['fewer than 4096 iterations (RFC 7677 section 4)', 'r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=1'],
    ['an iteration count that would keep PBKDF2 busy for hours', 'r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=2000000000'],
    ['a salt that is not base64', 'r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=not base64!,i=4096'],
    ['attributes out of order', 's=QSXCR+Q6sek8bf92,r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096'],
  ] as const) {
    it(`refuses a server-first message with ${what}`, async () => {
      await assert.rejects((await started()).step(bytes(message)), isError('POP3_BAD_REPLY'));
    });
  }

  it('escapes "=" and "," in the user name (RFC 5802 section 5.1)', async () => {
    const mechanism = scram('sha256', 'a=b,c', secret('x'), { nonce: 'abc' });
    assert.equal((await mechanism.start())?.toString(), 'n,,n=a=3Db=2Cc,r=abc');
    assert.equal(escapeSaslName('=,='), '=3D=2C=3D');
  });

  it('SASLpreps the user name and password before use', async () => {
    const mechanism = scram('sha256', 'I\u00adX', secret('pass'), { nonce: 'abc' });
    assert.equal((await mechanism.start())?.toString(), 'n,,n=IX,r=abc');
    await assert.rejects(scram('sha256', 'user', secret('bell\u0007'), { nonce: 'abc' }).start(), isError('POP3_INVALID_ARGUMENT'));
  });
});

describe('SASLprep (RFC 4013)', () => {
  it('gives the results of RFC 4013 section 3', () => {
    assert.equal(saslPrep('I\u00adX', 'x'), 'IX');
    assert.equal(saslPrep('user', 'x'), 'user');
    assert.equal(saslPrep('USER', 'x'), 'USER');
    assert.equal(saslPrep('\u00aa', 'x'), 'a');
    assert.equal(saslPrep('\u2168', 'x'), 'IX');
    assert.throws(() => saslPrep('\u0007', 'x'), isError('POP3_INVALID_ARGUMENT'));
  });

  it('maps non-ASCII spaces to SPACE and refuses private-use and non-characters', () => {
    assert.equal(saslPrep('a\u00a0b\u3000c', 'x'), 'a b c');
    assert.throws(() => saslPrep('a\ue000', 'x'), isError('POP3_INVALID_ARGUMENT'));
    assert.throws(() => saslPrep('a\ufdd0', 'x'), isError('POP3_INVALID_ARGUMENT'));
    assert.throws(() => saslPrep('a\ud800', 'x'), isError('POP3_INVALID_ARGUMENT'));
  });

  it('leaves printable ASCII as it is', () => {
    const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)).join('');
    assert.equal(saslPrep(ascii, 'x'), ascii);
  });
});

describe('XOAUTH2', () => {
  it('sends user, ^A, auth=Bearer token, ^A^A, never on the AUTH line', async () => {
    const mechanism = xoauth2('someuser@example.com', token('ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg'));
    assert.equal(mechanism.deferInitialResponse, true);
    assert.equal(
      (await mechanism.start())?.toString(),
      'user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01',
    );
  });

  it('answers the error challenge with an empty line and keeps what it says', async () => {
    const mechanism = xoauth2('u', token('t'));
    await mechanism.start();
    const answer = await mechanism.step(bytes('{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}'));
    assert.equal(answer.length, 0);
    assert.equal(mechanism.failureDetail, 'server says status "400", schemes "Bearer", scope "https://mail.google.com/"');
  });

  it('refuses a control character in the user name', async () => {
    await assert.rejects(xoauth2('a\x01auth=x', token('t')).start(), isError('POP3_INVALID_ARGUMENT'));
  });
});

describe('OAUTHBEARER (RFC 7628)', () => {
  it('sends the GS2 header, host, port and the bearer token as in RFC 7628 section 4.1', async () => {
    const mechanism = oauthBearer('user@example.com', token('vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=='), 'server.example.com', 143);
    assert.equal(mechanism.deferInitialResponse, true);
    assert.equal(
      (await mechanism.start())?.toString(),
      'n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01',
    );
  });

  it('answers the error document with the single ^A of section 3.2.3', async () => {
    const mechanism = oauthBearer('u', token('t'), 'h', 1);
    await mechanism.start();
    const answer = await mechanism.step(bytes('{"status":"invalid_token","scope":"mail","openid-configuration":"https://x/"}'));
    assert.deepEqual(answer, Buffer.from([0x01]));
    assert.equal(mechanism.failureDetail, 'server says status "invalid_token", scope "mail"');
    await assert.rejects(mechanism.step(bytes('{}')), isError('POP3_BAD_REPLY'));
  });

  it('shows an error challenge that is not JSON as a short printable excerpt', async () => {
    const mechanism = oauthBearer('u', token('t'), 'h', 1);
    await mechanism.start();
    await mechanism.step(Buffer.from(`\x00\x1b[31m${'x'.repeat(500)}`));
    assert.match(mechanism.failureDetail ?? '', /^server says "\?\?\[31mx+\.\.\."$/);
  });
});
