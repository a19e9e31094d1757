/**
 * The CAPA after login rides behind the login's last line when the server offered PIPELINING
 * (RFC 2449 section 6.6): one round trip fewer between connect and the first command. Against a
 * real Dovecot, every mechanism still logs in, and the trace shows CAPA written before the login's
 * +OK arrived; a wrong password still fails as POP3_AUTH_FAILED and leaves the session usable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pop3Client, type Pop3ClientOptions } from '../../src/index.ts';
import { Pop3AuthenticationError } from '../../src/errors.ts';
import type { AuthMechanism } from '../../src/auth/select.ts';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';

const PASSWORD = 'alice-secret';
/** Mechanisms whose last line is known to be last, so CAPA can follow it; the rest keep lock-step. */
const PIPELINED: readonly AuthMechanism[] = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5', 'LOGIN', 'USER'];
const LOCK_STEP: readonly AuthMechanism[] = ['PLAIN', 'APOP'];

let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ users: [{ user: 'alice', password: PASSWORD }] });
  await dovecot.setMailbox('alice', [Buffer.from('Subject: hi\r\n\r\nhello\r\n')]);
});
after(async () => {
  await dovecot?.stop();
});

function stls(extra: Partial<Pop3ClientOptions>): Pop3ClientOptions {
  return { host: dovecot.host, port: dovecot.port, ca: dovecot.ca, tls: 'starttls', user: 'alice', password: PASSWORD, timeout: 10_000, ...extra };
}

/** The trace from the login's first line on: what was written and read, in order. */
function afterLogin(lines: string[]): string[] {
  const start = lines.findIndex((l) => /^client: (AUTH|USER|APOP) /.test(l));
  return lines.slice(start);
}

/** Index of Dovecot's +OK to the login's last line. */
const loginOk = (lines: string[]) => lines.findIndex((l) => l.startsWith('server: +OK Logged in'));

describe('CAPA behind the login, against Dovecot over STLS', () => {
  for (const auth of PIPELINED) {
    it(`${auth}: CAPA is written before the login's +OK arrives, and the session has the post-login capabilities`, async () => {
      const lines: string[] = [];
      await using client = await Pop3Client.connect(stls({ auth, trace: (e) => lines.push(`${e.direction}: ${e.line}`) }));
      assert.equal(client.authMechanism, auth);
      const tail = afterLogin(lines);
      const capa = tail.indexOf('client: CAPA');
      assert.ok(capa !== -1 && capa < loginOk(tail), tail.join('\n'));
      assert.equal(tail.filter((l) => l === 'client: CAPA').length, 1, tail.join('\n'));
      assert.ok(!lines.join('\n').includes(PASSWORD), 'the password never reaches the trace');
      // Dovecot's CAPA after login no longer offers STLS: the answer read is the post-login one.
      assert.equal(client.capabilities().stls, false);
      assert.equal(client.state, 'transaction');
      assert.equal((await client.stat()).count, 1);
    });
  }

  for (const auth of LOCK_STEP) {
    it(`${auth}: CAPA waits for the login's +OK, and the session works`, async () => {
      const lines: string[] = [];
      await using client = await Pop3Client.connect(stls({ auth, trace: (e) => lines.push(`${e.direction}: ${e.line}`) }));
      const tail = afterLogin(lines);
      assert.ok(tail.indexOf('client: CAPA') > loginOk(tail), tail.join('\n'));
      assert.equal(client.capabilities().stls, false);
      assert.equal((await client.stat()).count, 1);
    });
  }

  it('pipelining turned off by the caller keeps CAPA after the +OK', async () => {
    const lines: string[] = [];
    await using client = await Pop3Client.connect(stls({ auth: 'SCRAM-SHA-256', pipelining: false, trace: (e) => lines.push(`${e.direction}: ${e.line}`) }));
    const tail = afterLogin(lines);
    assert.ok(tail.indexOf('client: CAPA') > loginOk(tail), tail.join('\n'));
  });

  for (const auth of ['USER', 'LOGIN', 'SCRAM-SHA-256'] as const) {
    it(`${auth}: a wrong password with CAPA behind it fails with POP3_AUTH_FAILED, and the session can log in again`, async () => {
      const lines: string[] = [];
      await using client = await Pop3Client.connect(stls({ user: undefined, password: undefined, trace: (e) => lines.push(`${e.direction}: ${e.line}`) }));
      await assert.rejects(client.login({ user: 'alice', password: 'wrong-guess', auth }), (error: unknown) => {
        assert.ok(error instanceof Pop3AuthenticationError, String(error));
        assert.equal(error.code, 'POP3_AUTH_FAILED');
        return true;
      });
      assert.equal(client.state, 'authorization');
      await client.login({ user: 'alice', password: PASSWORD, auth });
      assert.equal(client.state, 'transaction');
      assert.equal((await client.stat()).count, 1);
    });
  }
});
