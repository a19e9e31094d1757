/**
 * Interoperability with a real server: Dovecot from Debian's packages, started privately on
 * loopback ports for this file. Every command, both TLS modes, and retrieval byte-equal to the
 * fixture files (the 20 MB one included).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  Pop3AuthenticationError,
  Pop3Client,
  Pop3ConnectionError,
  Pop3ServerError,
  Pop3UsageError,
  type Pop3ClientOptions,
} from '../src/index.ts';
import { expectedListSize, expectedRetrBytes, startDovecot, type Dovecot } from '../../../support/dovecot.ts';
import { largeFixture, smallFixtures, type Fixture } from '../../../support/fixtures.ts';

let dovecot: Dovecot;
const fixtures: Fixture[] = smallFixtures();
const large = largeFixture();
const mailbox = [...fixtures.map((f) => f.bytes), large.bytes];

before(async () => {
  dovecot = await startDovecot();
});
after(async () => {
  await dovecot?.stop();
});
beforeEach(async () => {
  await dovecot.setMailbox('alice', mailbox);
});

function implicitTls(extra: Partial<Pop3ClientOptions> = {}): Pop3ClientOptions {
  return {
    host: dovecot.host,
    port: dovecot.tlsPort,
    tls: 'implicit',
    ca: dovecot.ca,
    user: 'alice',
    password: dovecot.users.alice!.password,
    timeout: 10_000,
    ...extra,
  };
}

function starttls(extra: Partial<Pop3ClientOptions> = {}): Pop3ClientOptions {
  return implicitTls({ port: dovecot.port, tls: 'starttls', ...extra });
}

async function drain(stream: AsyncIterable<Buffer>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('TLS', () => {
  it('logs in over implicit TLS (RFC 8314) with the certificate verified against the given CA', async () => {
    await using client = await Pop3Client.connect(implicitTls());
    assert.equal(client.secure, true);
    assert.equal(client.state, 'transaction');
  });

  it('upgrades with STLS (RFC 2595) straight after the greeting, and asks CAPA over TLS', async () => {
    const trace: string[] = [];
    await using client = await Pop3Client.connect(starttls({ trace: (e) => trace.push(`${e.direction} ${e.line}`) }));
    assert.equal(client.secure, true);
    const sent = trace.filter((l) => l.startsWith('client '));
    assert.deepEqual(sent.slice(0, 3), ['client STLS', 'client CAPA', 'client AUTH SCRAM-SHA-256 ***']);
    // Over TLS Dovecot no longer offers STLS: we see the post-TLS list.
    assert.equal(client.capabilities().stls, false);
  });

  it('accepts a pop3s:// URL with the rest of the options beside it', async () => {
    await using client = await Pop3Client.connect(`pop3s://alice@127.0.0.1:${dovecot.tlsPort}`, {
      ca: dovecot.ca,
      password: dovecot.users.alice!.password,
    });
    assert.equal((await client.stat()).count, mailbox.length);
  });

  it('refuses a certificate it cannot verify, without retrying and before sending credentials', async () => {
    await assert.rejects(Pop3Client.connect(implicitTls({ ca: undefined })), (error: unknown) => {
      assert.ok(error instanceof Pop3ConnectionError);
      assert.equal(error.code, 'POP3_TLS_FAILED');
      assert.equal(error.retryable, false);
      return true;
    });
    await assert.rejects(Pop3Client.connect(starttls({ ca: undefined })), (e: unknown) => e instanceof Pop3ConnectionError);
  });

  it('accepts any certificate only when told to by name (insecure)', async () => {
    await using client = await Pop3Client.connect(implicitTls({ ca: undefined, insecure: true }));
    assert.equal(client.state, 'transaction');
  });

  it('refuses a certificate issued for another name', async () => {
    await assert.rejects(
      Pop3Client.connect(implicitTls({ servername: 'mail.example.com' })),
      (e: unknown) => e instanceof Pop3ConnectionError && e.code === 'POP3_TLS_FAILED',
    );
  });

  it('sends a password over plain TCP only with allowPlaintextAuth', async () => {
    await assert.rejects(
      Pop3Client.connect(implicitTls({ port: dovecot.port, tls: 'none', auth: 'USER' })),
      (e: unknown) => e instanceof Pop3UsageError && e.code === 'POP3_PLAINTEXT_REFUSED',
    );
    await using client = await Pop3Client.connect(implicitTls({ port: dovecot.port, tls: 'none', auth: 'USER', allowPlaintextAuth: true }));
    assert.equal(client.secure, false);
    assert.equal((await client.stat()).count, mailbox.length);
  });
});

describe('authentication', () => {
  it('a wrong password is an authentication error carrying [AUTH], and not retryable', async () => {
    await assert.rejects(Pop3Client.connect(implicitTls({ password: 'wrong' })), (error: unknown) => {
      assert.ok(error instanceof Pop3AuthenticationError);
      assert.equal(error.code, 'POP3_AUTH_FAILED');
      assert.equal(error.responseCode, 'AUTH');
      assert.equal(error.retryable, false);
      assert.equal(error.command, 'AUTH SCRAM-SHA-256 ***');
      assert.doesNotMatch(error.message, /wrong/);
      return true;
    });
  });

  it('logs in later with login() when connect had no credentials', async () => {
    await using client = await Pop3Client.connect(implicitTls({ user: undefined, password: undefined }));
    assert.equal(client.state, 'authorization');
    await assert.rejects(client.stat(), (e: unknown) => e instanceof Pop3UsageError && e.code === 'POP3_INVALID_STATE');
    await client.login('alice', dovecot.users.alice!.password);
    assert.equal(client.state, 'transaction');
  });
});

describe('commands over STLS and implicit TLS', () => {
  for (const [mode, connectOptions] of [
    ['implicit TLS', () => implicitTls()],
    ['STLS', () => starttls()],
  ] as const) {
    it(`${mode}: CAPA lists what Dovecot offers`, async () => {
      await using client = await Pop3Client.connect(connectOptions());
      const caps = await client.capa();
      // After login Dovecot drops USER and SASL from the list: they only apply before it.
      for (const flag of ['top', 'uidl', 'pipelining', 'respCodes', 'authRespCode'] as const) {
        assert.equal(caps[flag], true, flag);
      }
      assert.ok(caps.has('UIDL'));
    });

    it(`${mode}: STAT and LIST agree with the fixture files`, async () => {
      await using client = await Pop3Client.connect(connectOptions());
      const sizes = mailbox.map(expectedListSize);
      assert.deepEqual(await client.stat(), { count: mailbox.length, size: sizes.reduce((a, b) => a + b, 0) });
      assert.deepEqual(
        await client.list(),
        sizes.map((size, i) => ({ n: i + 1, size })),
      );
      assert.deepEqual(await client.list(2), { n: 2, size: sizes[1] });
    });

    it(`${mode}: RETR gives every fixture byte for byte`, async () => {
      await using client = await Pop3Client.connect(connectOptions());
      for (const [i, fixture] of fixtures.entries()) {
        assert.deepEqual(await client.retrieve(i + 1), expectedRetrBytes(fixture.bytes), fixture.name);
      }
    });

    it(`${mode}: RETR streams the 20 MB message byte for byte`, async () => {
      await using client = await Pop3Client.connect(connectOptions());
      const body = await client.retrieveStream(mailbox.length);
      const expected = expectedRetrBytes(large.bytes);
      assert.deepEqual(await drain(body), { sha256: sha256(expected), size: expected.length });
      assert.ok(large.bytes.length >= 20 * 1024 * 1024);
    });
  }

  it('UIDL lists unique, stable ids, and UIDL n agrees', async () => {
    let first: Array<{ n: number; uid: string }>;
    {
      await using client = await Pop3Client.connect(implicitTls());
      first = await client.uidl();
      assert.equal(first.length, mailbox.length);
      assert.equal(new Set(first.map((u) => u.uid)).size, mailbox.length);
      assert.deepEqual(await client.uidl(3), first[2]);
    }
    await using again = await Pop3Client.connect(starttls());
    assert.deepEqual(await again.uidl(), first);
  });

  it('TOP n 0 gives the headers and the blank line; TOP n 1 one body line more', async () => {
    await using client = await Pop3Client.connect(implicitTls());
    const index = fixtures.findIndex((f) => f.name === 'plain.eml');
    const full = expectedRetrBytes(fixtures[index]!.bytes).toString('latin1');
    const headerEnd = full.indexOf('\r\n\r\n') + 4;
    assert.equal((await client.top(index + 1, 0)).toString('latin1'), full.slice(0, headerEnd));
    const oneLine = full.slice(0, full.indexOf('\r\n', headerEnd) + 2);
    const stream = await client.topStream(index + 1, 1);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).toString('latin1'), oneLine);
  });

  it('pipelined retrieval of the whole mailbox gives every message intact', async () => {
    await using client = await Pop3Client.connect(implicitTls());
    const bodies = await Promise.all(mailbox.map((_, i) => client.retrieve(i + 1)));
    bodies.forEach((body, i) => assert.equal(sha256(body), sha256(expectedRetrBytes(mailbox[i]!)), `message ${i + 1}`));
  });

  it('an -ERR (no such message) fails that command and the session goes on', async () => {
    await using client = await Pop3Client.connect(implicitTls());
    await assert.rejects(client.retrieve(999), (e: unknown) => e instanceof Pop3ServerError && e.connectionUsable);
    await client.noop();
    assert.equal((await client.stat()).count, mailbox.length);
  });
});

describe('deletion happens at QUIT and only then', () => {
  it('DELE then QUIT removes the message', async () => {
    const uids = await (async () => {
      await using client = await Pop3Client.connect(implicitTls());
      const before = await client.uidl();
      await client.delete(1);
      await assert.rejects(client.retrieve(1), (e: unknown) => e instanceof Pop3ServerError);
      assert.equal((await client.stat()).count, mailbox.length - 1);
      await client.quit();
      assert.equal(client.state, 'closed');
      return before;
    })();
    await using after = await Pop3Client.connect(implicitTls());
    assert.deepEqual(
      (await after.uidl()).map((u) => u.uid),
      uids.slice(1).map((u) => u.uid),
    );
  });

  it('DELE then a dropped connection (close without QUIT) deletes nothing', async () => {
    const client = await Pop3Client.connect(implicitTls());
    await client.delete(1);
    await client.delete(2);
    client.close();
    await using after = await Pop3Client.connect(implicitTls());
    assert.equal((await after.stat()).count, mailbox.length);
  });

  it('RSET unmarks what DELE marked', async () => {
    {
      await using client = await Pop3Client.connect(implicitTls());
      await client.delete(1);
      await client.reset();
      assert.equal((await client.stat()).count, mailbox.length);
    }
    await using after = await Pop3Client.connect(implicitTls());
    assert.equal((await after.stat()).count, mailbox.length);
  });

  it('commands after QUIT are refused locally', async () => {
    const client = await Pop3Client.connect(implicitTls());
    await client.quit();
    await assert.rejects(client.noop(), (e: unknown) => e instanceof Pop3UsageError);
  });
});
