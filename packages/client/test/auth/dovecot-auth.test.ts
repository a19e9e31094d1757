/**
 * Every login mechanism against a real Dovecot (support/dovecot.ts enables PLAIN, LOGIN, CRAM-MD5,
 * SCRAM-SHA-1, SCRAM-SHA-256 and APOP, and has USER/PASS), over STLS, implicit TLS and plain TCP;
 * wrong passwords; and the automatic choice. XOAUTH2 and OAUTHBEARER would need Dovecot's oauth2
 * passdb and a token introspection server: they are tested against the scripted server instead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pop3Client, type Pop3ClientOptions } from '../../src/index.ts';
import { Pop3AuthenticationError, Pop3UsageError } from '../../src/errors.ts';
import type { AuthMechanism } from '../../src/auth/select.ts';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';

const USERS = [
  { user: 'alice', password: 'alice-secret' },
  // Non-ASCII: the UTF-8 bytes each mechanism hashes or sends must match what Dovecot computes.
  { user: 'dora', password: 'pässwörd-ü€' },
];
const MECHANISMS: readonly AuthMechanism[] = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5', 'PLAIN', 'LOGIN', 'APOP', 'USER'];
const message = Buffer.from('Subject: auth test\r\n\r\nhello\r\n');

let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ users: USERS });
  await dovecot.setMailbox('alice', [message]);
  await dovecot.setMailbox('dora', [message, message]);
});
after(async () => {
  await dovecot?.stop();
});

type Transport = 'STLS' | 'implicit TLS' | 'plain TCP';

function connectOptions(transport: Transport, extra: Partial<Pop3ClientOptions>): Pop3ClientOptions {
  const base = { host: dovecot.host, ca: dovecot.ca, user: 'alice', password: USERS[0]!.password, timeout: 10_000 };
  if (transport === 'implicit TLS') return { ...base, port: dovecot.tlsPort, tls: 'implicit', ...extra };
  if (transport === 'STLS') return { ...base, port: dovecot.port, tls: 'starttls', ...extra };
  return { ...base, port: dovecot.port, tls: 'none', ...extra };
}

/** The lines that present a credential: the start of a login attempt. */
const attempts = (lines: string[]) => lines.filter((l) => /^client: (AUTH|USER|APOP) /.test(l));

describe('every mechanism, over every transport', () => {
  for (const transport of ['STLS', 'implicit TLS', 'plain TCP'] as const) {
    for (const auth of MECHANISMS) {
      it(`${auth} over ${transport}`, async () => {
        const plain = transport === 'plain TCP' ? { allowPlaintextAuth: true } : {};
        await using client = await Pop3Client.connect(connectOptions(transport, { auth, ...plain }));
        assert.equal(client.authMechanism, auth);
        assert.equal(client.secure, transport !== 'plain TCP');
        assert.equal((await client.stat()).count, 1);
      });
    }
  }

  for (const auth of MECHANISMS) {
    it(`${auth} with a non-ASCII password`, async () => {
      await using client = await Pop3Client.connect(connectOptions('implicit TLS', { auth, user: 'dora', password: USERS[1]!.password }));
      assert.equal((await client.stat()).count, 2);
    });
  }
});

describe('a wrong password', () => {
  for (const auth of MECHANISMS) {
    it(`${auth}: Pop3AuthenticationError with the server's [AUTH], one attempt, no secret shown`, async () => {
      const lines: string[] = [];
      await assert.rejects(
        Pop3Client.connect(connectOptions('implicit TLS', { auth, password: 'wrong-guess', trace: (e) => lines.push(`${e.direction}: ${e.line}`) })),
        (error: unknown) => {
          assert.ok(error instanceof Pop3AuthenticationError, String(error));
          assert.equal(error.code, 'POP3_AUTH_FAILED');
          assert.equal(error.responseCode, 'AUTH');
          assert.equal(error.retryable, false);
          assert.doesNotMatch(`${error.message} ${error.command}`, /wrong-guess/);
          return true;
        },
      );
      assert.equal(attempts(lines).length, 1, lines.join('\n'));
      assert.doesNotMatch(lines.join('\n'), /wrong-guess/);
    });
  }

  it('chosen automatically: SCRAM-SHA-256 fails, and no other mechanism is tried', async () => {
    const lines: string[] = [];
    await assert.rejects(
      Pop3Client.connect(connectOptions('STLS', { password: 'wrong-guess', trace: (e) => lines.push(`${e.direction}: ${e.line}`) })),
      (e: unknown) => e instanceof Pop3AuthenticationError && e.responseCode === 'AUTH',
    );
    assert.deepEqual(attempts(lines), ['client: AUTH SCRAM-SHA-256 ***']);
  });
});

describe('automatic selection against Dovecot', () => {
  for (const transport of ['STLS', 'implicit TLS', 'plain TCP'] as const) {
    it(`picks SCRAM-SHA-256 over ${transport}${transport === 'plain TCP' ? ', without allowPlaintextAuth' : ''}`, async () => {
      await using client = await Pop3Client.connect(connectOptions(transport, {}));
      assert.equal(client.authMechanism, 'SCRAM-SHA-256');
    });
  }

  it('over plain TCP, PLAIN named without allowPlaintextAuth is refused before AUTH', async () => {
    const lines: string[] = [];
    await assert.rejects(
      Pop3Client.connect(connectOptions('plain TCP', { auth: 'PLAIN', trace: (e) => lines.push(`${e.direction}: ${e.line}`) })),
      (e: unknown) => e instanceof Pop3UsageError && e.code === 'POP3_PLAINTEXT_REFUSED' && /allowPlaintextAuth/.test(e.message),
    );
    assert.deepEqual(attempts(lines), []);
  });

  it('a URL\'s ;AUTH=CRAM-MD5 names the mechanism (RFC 2384)', async () => {
    await using client = await Pop3Client.connect(`pop3://alice;AUTH=CRAM-MD5@127.0.0.1:${dovecot.port}`, {
      ca: dovecot.ca,
      password: USERS[0]!.password,
    });
    assert.equal(client.authMechanism, 'CRAM-MD5');
    assert.equal(client.secure, true);
  });

  it('login() later, with a mechanism named there', async () => {
    await using client = await Pop3Client.connect(connectOptions('implicit TLS', { user: undefined, password: undefined }));
    assert.equal(client.authMechanism, undefined);
    await client.login({ user: 'alice', password: USERS[0]!.password, auth: 'LOGIN' });
    assert.equal(client.authMechanism, 'LOGIN');
    assert.equal(client.state, 'transaction');
  });
});
