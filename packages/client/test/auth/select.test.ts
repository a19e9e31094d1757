/**
 * Which mechanism is chosen, from what the server offers, the credentials and the TLS policy:
 * a pure function, tested without a socket.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCapabilities } from '../../src/capabilities.ts';
import {
  chooseMechanisms,
  parseAuthMechanism,
  PASSWORD_MECHANISMS,
  TOKEN_MECHANISMS,
  type AuthMechanism,
  type ServerOffer,
} from '../../src/auth/select.ts';
import { Pop3AuthenticationError, Pop3Error, Pop3UsageError } from '../../src/errors.ts';

const TLS = { secure: true, allowPlaintextAuth: false, host: 'pop.example.com' };
const CLEAR = { secure: false, allowPlaintextAuth: false, host: 'pop.example.com' };
const OPTED_IN = { secure: false, allowPlaintextAuth: true, host: 'pop.example.com' };

function offer(lines: string[], apop = false): ServerOffer {
  return { capabilities: parseCapabilities(lines), apopTimestamp: apop ? '<1.2@host>' : undefined };
}

const DOVECOT = offer(['USER', 'SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256', 'TOP'], true);

const password = (o: ServerOffer, channel = TLS, requested?: AuthMechanism) =>
  chooseMechanisms(PASSWORD_MECHANISMS, 'password', requested, o, channel);
const token = (o: ServerOffer, channel = TLS, requested?: AuthMechanism) =>
  chooseMechanisms(TOKEN_MECHANISMS, 'access token', requested, o, channel);

function isError(type: abstract new (...args: never[]) => Pop3Error, code: string, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof type, String(error));
    assert.equal(error.code, code);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

describe('automatic selection', () => {
  it('orders what the server offers strongest first', () => {
    assert.deepEqual(password(DOVECOT), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5', 'PLAIN', 'LOGIN', 'APOP', 'USER']);
    assert.deepEqual(password(offer(['SASL PLAIN CRAM-MD5', 'USER'])), ['CRAM-MD5', 'PLAIN', 'USER']);
    assert.deepEqual(password(offer(['TOP'], true)), ['APOP']);
  });

  it('falls back to USER for a server that does not answer CAPA (RFC 1939 has it)', () => {
    assert.deepEqual(password(offer([])), ['USER']);
    assert.deepEqual(password(offer([], true)), ['APOP', 'USER']);
  });

  it('with a token: OAUTHBEARER before XOAUTH2, and nothing a password needs', () => {
    assert.deepEqual(token(offer(['SASL PLAIN XOAUTH2 OAUTHBEARER', 'USER'])), ['OAUTHBEARER', 'XOAUTH2']);
    assert.deepEqual(token(offer(['SASL PLAIN XOAUTH2', 'USER'])), ['XOAUTH2']);
    assert.throws(() => token(DOVECOT), isError(Pop3AuthenticationError, 'POP3_AUTH_MECHANISM_UNAVAILABLE', /access token.*SCRAM-SHA-256/));
  });

  it('without TLS, keeps SCRAM and drops whatever exposes the password, unless opted in', () => {
    assert.deepEqual(password(DOVECOT, CLEAR), ['SCRAM-SHA-256', 'SCRAM-SHA-1']);
    assert.deepEqual(password(DOVECOT, OPTED_IN), password(DOVECOT, TLS));
  });

  it('without TLS and with nothing but exposing mechanisms, refuses and says how to opt in', () => {
    assert.throws(
      () => password(offer(['SASL PLAIN CRAM-MD5', 'USER'], true), CLEAR),
      isError(Pop3UsageError, 'POP3_PLAINTEXT_REFUSED', /PLAIN, USER would send the password readable; CRAM-MD5, APOP .* offline.*allowPlaintextAuth/),
    );
    assert.throws(() => token(offer(['SASL XOAUTH2']), CLEAR), isError(Pop3UsageError, 'POP3_PLAINTEXT_REFUSED', /access token/));
  });

  it('with nothing offered that fits, says what the server offers', () => {
    assert.throws(
      () => password(offer(['SASL GSSAPI EXTERNAL', 'TOP'])),
      isError(Pop3AuthenticationError, 'POP3_AUTH_MECHANISM_UNAVAILABLE', /offers GSSAPI, EXTERNAL/),
    );
  });
});

describe('a mechanism named by the caller', () => {
  it('is the only one tried', () => {
    assert.deepEqual(password(DOVECOT, TLS, 'PLAIN'), ['PLAIN']);
    assert.deepEqual(password(DOVECOT, TLS, 'USER'), ['USER']);
  });

  it('must be offered: otherwise a typed error before anything is sent', () => {
    assert.throws(
      () => password(offer(['SASL PLAIN', 'USER']), TLS, 'CRAM-MD5'),
      isError(Pop3AuthenticationError, 'POP3_AUTH_MECHANISM_UNAVAILABLE', /does not offer CRAM-MD5; it offers PLAIN, USER/),
    );
    assert.throws(() => password(offer(['USER']), TLS, 'APOP'), isError(Pop3AuthenticationError, 'POP3_AUTH_MECHANISM_UNAVAILABLE'));
  });

  it('is tried on a server that does not answer CAPA, which may still have AUTH (RFC 1734)', () => {
    assert.deepEqual(password(offer([]), TLS, 'CRAM-MD5'), ['CRAM-MD5']);
  });

  it('must fit the credentials', () => {
    assert.throws(() => password(DOVECOT, TLS, 'XOAUTH2'), isError(Pop3UsageError, 'POP3_INVALID_ARGUMENT', /needs an access token/));
    assert.throws(() => token(DOVECOT, TLS, 'PLAIN'), isError(Pop3UsageError, 'POP3_INVALID_ARGUMENT', /needs a password/));
  });

  it('obeys the TLS policy: SCRAM goes without TLS, CRAM-MD5 does not', () => {
    assert.deepEqual(password(DOVECOT, CLEAR, 'SCRAM-SHA-1'), ['SCRAM-SHA-1']);
    assert.throws(() => password(DOVECOT, CLEAR, 'CRAM-MD5'), isError(Pop3UsageError, 'POP3_PLAINTEXT_REFUSED', /MD5 digest/));
    assert.deepEqual(password(DOVECOT, OPTED_IN, 'CRAM-MD5'), ['CRAM-MD5']);
  });
});

describe('mechanism names', () => {
  it('are read in any case, with +APOP as RFC 2384 writes APOP in a URL', () => {
    assert.equal(parseAuthMechanism('scram-sha-256'), 'SCRAM-SHA-256');
    assert.equal(parseAuthMechanism('+APOP'), 'APOP');
    assert.equal(parseAuthMechanism('user'), 'USER');
  });

  it('an unknown one is a usage error listing the known ones', () => {
    assert.throws(() => parseAuthMechanism('GSSAPI'), isError(Pop3UsageError, 'POP3_INVALID_ARGUMENT', /GSSAPI.*SCRAM-SHA-256/));
  });
});
