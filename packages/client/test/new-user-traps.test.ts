/**
 * Regressions: traps a new user fell into (issue 11), each as it was first met.
 *
 * 1. `connect({ user, password: process.env.POP3_PASSWORD })` with the variable unset connected
 *    without logging in, and the first command failed with POP3_INVALID_STATE, far from the cause.
 * 2. The wrong scheme for a port: pop3s:// to the clear-text port failed with OpenSSL's "wrong
 *    version number" alone; pop3:// to the implicit-TLS port waited out the whole timeout and said
 *    only "Timed out". Each now names the likely cause and the fix.
 * 10. --trace showed the server's SASL challenges (LOGIN's prompts, SCRAM's salt and nonce),
 *    though every SASL line was documented as `***`.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../support/dovecot.ts';
import { Pop3Client, Pop3TimeoutError, Pop3UsageError, Pop3ConnectionError, schemePortWarning, type Pop3ClientOptions } from '../src/index.ts';
import { b64, greet, loggedIn, quit, serve, tracer } from './auth/helpers.ts';

let dovecot: Dovecot;

before(async () => {
  dovecot = await startDovecot();
});

after(() => dovecot?.stop());

/** A listener that counts connections and never writes: connecting must not even reach it. */
async function countingListener(): Promise<{ server: Server; port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    socket.destroy();
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, port: address.port, accepted: () => accepted };
}

describe('a user without a password or token is refused before connecting', () => {
  for (const [name, secret] of [
    ['password: undefined (an unset environment variable)', { password: undefined }],
    ['no password and no accessToken at all', {}],
  ] as const) {
    it(`${name}: POP3_INVALID_ARGUMENT naming both, nothing connected`, async () => {
      const listener = await countingListener();
      try {
        const options: Pop3ClientOptions = { host: '127.0.0.1', port: listener.port, tls: 'none', user: 'alice', ...secret };
        await assert.rejects(Pop3Client.connect(options), (error: unknown) => {
          assert.ok(error instanceof Pop3UsageError, String(error));
          assert.equal(error.code, 'POP3_INVALID_ARGUMENT');
          assert.match(error.message, /"alice".*without a password or an accessToken/);
          assert.match(error.message, /password and accessToken are undefined/);
          return true;
        });
        assert.equal(listener.accepted(), 0);
      } finally {
        listener.server.close();
      }
    });
  }

  it('a URL with a user and no password is refused the same way', async () => {
    await assert.rejects(
      Pop3Client.connect(`pop3s://alice@127.0.0.1:${dovecot.tlsPort}`, { ca: dovecot.ca }),
      (error: unknown) => error instanceof Pop3UsageError && error.code === 'POP3_INVALID_ARGUMENT' && /without a password/.test(error.message),
    );
  });

  it('without a user, connect still opens a session without logging in (for CAPA)', async () => {
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: dovecot.tlsPort, ca: dovecot.ca, servername: 'localhost' });
    assert.equal(client.state, 'authorization');
    assert.ok(client.capabilities().lines.length > 0);
    await client.quit();
  });
});

describe('the wrong scheme for the port', () => {
  it("pop3s:// to Dovecot's clear-text port: POP3_TLS_FAILED saying the server spoke clear text, and to use pop3:// or 995", async () => {
    await assert.rejects(
      Pop3Client.connect(`pop3s://127.0.0.1:${dovecot.port}`, { ca: dovecot.ca, timeout: 10_000 }),
      (error: unknown) => {
        assert.ok(error instanceof Pop3ConnectionError, String(error));
        assert.equal(error.code, 'POP3_TLS_FAILED');
        assert.match(error.message, /wrong version number/);
        assert.match(error.message, /answered in clear text.*clear-text POP3 port.*pop3:\/\/.*995/);
        return true;
      },
    );
  });

  it("pop3:// to Dovecot's implicit-TLS port: a timeout that says no greeting came and to try pop3s://", async () => {
    await assert.rejects(
      Pop3Client.connect(`pop3://127.0.0.1:${dovecot.tlsPort}`, { timeout: 300 }),
      (error: unknown) => {
        assert.ok(error instanceof Pop3TimeoutError, String(error));
        assert.equal(error.code, 'POP3_TIMEOUT');
        assert.match(error.message, new RegExp(`no greeting from 127\\.0\\.0\\.1:${dovecot.tlsPort}; is it an implicit-TLS port\\? Try implicit TLS \\(pop3s://`));
        return true;
      },
    );
  });

  it('the same hint when the connect deadline, not the reply timeout, ends the wait', async () => {
    await assert.rejects(
      Pop3Client.connect(`pop3://127.0.0.1:${dovecot.tlsPort}`, { timeout: 60_000, connectTimeout: 300 }),
      (error: unknown) => error instanceof Pop3TimeoutError && /^Timed out: no greeting.*pop3s:\/\//.test(error.message),
    );
  });

  it('a clear-text server that greets and then stalls gets no such hint: the greeting came', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('+OK ready');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect({ host: srv.host, port: srv.port, tls: 'none', timeout: 300 }),
      (error: unknown) => error instanceof Pop3TimeoutError && !/greeting/.test(error.message),
    );
  });

  it('over implicit TLS, a server that never greets gets no scheme hint: the scheme was right', async () => {
    await assert.rejects(
      Pop3Client.connect({ host: '127.0.0.1', port: (await silentPort()).port, tls: 'implicit', timeout: 300 }),
      (error: unknown) => error instanceof Pop3TimeoutError && !/pop3s/.test(error.message),
    );
  });

  it('schemePortWarning: 995 with clear text and 110 with implicit TLS get a warning, other pairs none', () => {
    assert.match(schemePortWarning({ port: 995, tls: 'starttls' }) ?? '', /pop3s:\/\/HOST:995/);
    assert.match(schemePortWarning({ port: 995, tls: 'none' }) ?? '', /implicit-TLS port/);
    assert.match(schemePortWarning({ port: 110, tls: 'implicit' }) ?? '', /pop3:\/\/HOST:110/);
    assert.match(schemePortWarning({ port: 110 }) ?? '', /clear-text POP3 port/);
    assert.equal(schemePortWarning({ port: 995, tls: 'implicit' }), undefined);
    assert.equal(schemePortWarning({ port: 110, tls: 'starttls' }), undefined);
    assert.equal(schemePortWarning({ port: 1100, tls: 'starttls' }), undefined);
  });
});

/** A TCP listener that accepts and says nothing, as a TLS server waiting for a ClientHello. */
let silent: { port: number } | undefined;
async function silentPort(): Promise<{ port: number }> {
  if (silent !== undefined) return silent;
  const server = createServer(() => {}).listen(0, '127.0.0.1');
  server.unref();
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  silent = { port: address.port };
  return silent;
}

describe('--trace hides every SASL line, both directions', () => {
  it("LOGIN: the server's prompts are '+ ***', the answers '***', the mechanism's name shown", async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL LOGIN']);
      await conn.expect('AUTH LOGIN');
      conn.reply(`+ ${b64('Username:')}`);
      await conn.expect(b64('alice'));
      conn.reply(`+ ${b64('Password:')}`);
      await conn.expect(b64('secret'));
      await loggedIn(conn);
      await quit(conn);
    });
    const { lines, trace } = tracer();
    const client = await Pop3Client.connect({ host: srv.host, port: srv.port, tls: 'none', user: 'alice', password: 'secret', allowPlaintextAuth: true, trace });
    await client.quit();
    const auth = lines.indexOf('client: AUTH LOGIN');
    assert.deepEqual(lines.slice(auth, auth + 6), ['client: AUTH LOGIN', 'server: + ***', 'client: ***', 'server: + ***', 'client: ***', 'server: +OK logged in']);
    assert.ok(!lines.some((line) => line.includes(b64('Username:')) || line.includes(b64('alice'))), lines.join('\n'));
  });

  it("SCRAM-SHA-256 against Dovecot: no challenge (salt, nonce, server signature) reaches the trace", async () => {
    const { lines, trace } = tracer();
    const client = await Pop3Client.connect({
      host: '127.0.0.1',
      port: dovecot.tlsPort,
      ca: dovecot.ca,
      servername: 'localhost',
      user: 'alice',
      password: dovecot.users.alice!.password,
      auth: 'SCRAM-SHA-256',
      trace,
    });
    await client.quit();
    const auth = lines.findIndex((line) => line.startsWith('client: AUTH SCRAM-SHA-256'));
    assert.equal(lines[auth], 'client: AUTH SCRAM-SHA-256 ***');
    const exchange = lines.slice(auth + 1, lines.findIndex((line, index) => index > auth && line.startsWith('server: +OK')));
    assert.ok(exchange.length >= 2, lines.join('\n'));
    // CAPA rides behind the last SASL line (Dovecot offers PIPELINING): shown, as it carries nothing secret.
    for (const line of exchange) assert.ok(line === 'server: + ***' || line === 'client: ***' || line === 'client: CAPA', line);
    assert.ok(!lines.some((line) => /r=|s=|v=/.test(Buffer.from(line.split(' ').at(-1) ?? '', 'base64').toString('latin1'))), lines.join('\n'));
  });
});
