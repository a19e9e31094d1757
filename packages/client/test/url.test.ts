import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePop3Url } from '../src/url.ts';
import { Pop3UsageError } from '../src/errors.ts';

describe('parsePop3Url', () => {
  it('reads pop3:// with STLS on port 110 by default', () => {
    assert.deepEqual(parsePop3Url('pop3://mail.example.com'), { host: 'mail.example.com', port: 110, tls: 'starttls' });
  });

  it('reads pop3s:// with implicit TLS on port 995 by default', () => {
    assert.deepEqual(parsePop3Url('pop3s://alice@mail.example.com'), {
      host: 'mail.example.com',
      port: 995,
      tls: 'implicit',
      user: 'alice',
    });
  });

  it('percent-decodes the user and reads ;AUTH= (RFC 2384)', () => {
    assert.deepEqual(parsePop3Url('pop3://alice%40example.com;AUTH=cram-md5@127.0.0.1:1100'), {
      host: '127.0.0.1',
      port: 1100,
      tls: 'starttls',
      user: 'alice@example.com',
      auth: 'CRAM-MD5',
    });
  });

  it('treats ;AUTH=* as no preference', () => {
    assert.equal(parsePop3Url('pop3://bob;AUTH=*@h').auth, undefined);
  });

  it('accepts IPv6 literals', () => {
    assert.deepEqual(parsePop3Url('pop3s://[::1]:9950'), { host: '::1', port: 9950, tls: 'implicit' });
  });

  it('refuses a password in the URL, other schemes, bad ports and unknown parameters', () => {
    for (const url of [
      'pop3://alice:secret@host',
      'imap://host',
      'pop3://host:0',
      'pop3://host:70000',
      'pop3://alice;X=1@host',
      'pop3://host/path',
      'pop3://',
      'pop3://a%zz@host',
    ]) {
      assert.throws(() => parsePop3Url(url), (e: unknown) => e instanceof Pop3UsageError && e.code === 'POP3_INVALID_ARGUMENT', url);
    }
  });

  it('does not echo a password it refuses', () => {
    assert.throws(() => parsePop3Url('pop3://alice:hunter2@host'), (e: unknown) => e instanceof Error && !/hunter2/.test(e.message));
  });
});
