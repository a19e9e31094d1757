/**
 * XOAUTH2 and OAUTHBEARER against a scripted server that plays Gmail and Office 365: the token
 * after the `+`, the error document and the client's answer to it, the token function.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3Client } from '../../src/index.ts';
import { Pop3AuthenticationError, Pop3UsageError } from '../../src/errors.ts';
import { b64, greet, isError, loggedIn, options, quit, serve, tracer, unb64 } from './helpers.ts';

const TOKEN = 'ya29.a0AfH6SMBx-token_value~with+allowed/chars==';
const oauth = { password: undefined, accessToken: TOKEN, allowPlaintextAuth: true };

describe('XOAUTH2', () => {
  it('logs in with the token sent after the "+", never on the AUTH line, and shown as *** in the trace', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN XOAUTH2', 'USER']);
      await conn.expect('AUTH XOAUTH2');
      conn.reply('+ ');
      assert.equal(unb64(await conn.line()), `user=alice\x01auth=Bearer ${TOKEN}\x01\x01`);
      await loggedIn(conn);
      await quit(conn);
    });
    const { lines, trace } = tracer();
    const client = await Pop3Client.connect(options(srv, { ...oauth, trace }));
    assert.equal(client.authMechanism, 'XOAUTH2');
    await client.quit();
    assert.deepEqual(lines.filter((l) => l.startsWith('client: ')).slice(1, 3), ['client: AUTH XOAUTH2', 'client: ***']);
    assert.ok(!lines.join('\n').includes(TOKEN.slice(0, 10)));
  });

  it('a refused token: the error document is answered with an empty line, and the -ERR is an authentication error', async () => {
    const error = '{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}';
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL XOAUTH2', 'USER', 'RESP-CODES', 'AUTH-RESP-CODE']);
      await conn.expect('AUTH XOAUTH2');
      conn.reply('+');
      await conn.line();
      conn.reply(`+ ${b64(error)}`);
      await conn.expect('');
      conn.reply('-ERR [AUTH] Invalid credentials');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, oauth)),
      isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED', (e) => {
        assert.equal(e.responseCode, 'AUTH');
        assert.equal(e.retryable, false);
        assert.equal(e.command, 'AUTH XOAUTH2');
        assert.match(e.message, /status "400"/);
      }),
    );
    // One AUTH, and no fallback to USER/PASS (there is no password anyway).
    assert.equal(srv.received.filter((l) => l.startsWith('AUTH')).length, 1);
  });
});

describe('OAUTHBEARER (RFC 7628)', () => {
  it('is preferred to XOAUTH2 when both are offered, and names the host and port', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN XOAUTH2 OAUTHBEARER', 'USER']);
      await conn.expect('AUTH OAUTHBEARER');
      conn.reply('+ ');
      const message = unb64(await conn.line());
      assert.equal(message, `n,a=alice,\x01host=127.0.0.1\x01port=${srv.port}\x01auth=Bearer ${TOKEN}\x01\x01`);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, oauth));
    assert.equal(client.authMechanism, 'OAUTHBEARER');
  });

  it('a refused token: the error document is answered with the dummy ^A, then the -ERR is reported with its status', async () => {
    const error = '{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}';
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL OAUTHBEARER']);
      await conn.expect('AUTH OAUTHBEARER');
      conn.reply('+ ');
      await conn.line();
      conn.reply(`+ ${b64(error)}`);
      await conn.expect(b64('\x01'));
      conn.reply('-ERR [AUTH] Authentication failed');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, oauth)),
      isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED', (e) => {
        assert.match(e.message, /status "invalid_token", scope "example_scope"/);
        assert.equal(e.responseCode, 'AUTH');
      }),
    );
  });

  it('offered, then refused outright: the next token mechanism is tried, as nothing of the token was sent', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL OAUTHBEARER XOAUTH2']);
      await conn.expect('AUTH OAUTHBEARER');
      conn.reply('-ERR Unsupported authentication mechanism');
      await conn.expect('AUTH XOAUTH2');
      conn.reply('+ ');
      await conn.line();
      await loggedIn(conn);
      await quit(conn);
    });
    let calls = 0;
    await using client = await Pop3Client.connect(options(srv, { ...oauth, accessToken: () => (calls++, TOKEN) }));
    assert.equal(client.authMechanism, 'XOAUTH2');
    assert.equal(calls, 1, 'one token per login, even across mechanisms');
  });

  it('named by the caller and refused outright: a typed error, and nothing else is tried', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL OAUTHBEARER XOAUTH2']);
      await conn.expect('AUTH OAUTHBEARER');
      conn.reply('-ERR Unsupported authentication mechanism');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, { ...oauth, auth: 'OAUTHBEARER' })),
      isError(Pop3AuthenticationError, 'POP3_AUTH_MECHANISM_UNAVAILABLE'),
    );
    assert.deepEqual(srv.received, ['CAPA', 'AUTH OAUTHBEARER']);
  });
});

describe('the access token function', () => {
  it('is called at each login, and may be async: a refreshed token is used', async () => {
    const seen: string[] = [];
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL XOAUTH2']);
      await conn.expect('AUTH XOAUTH2');
      conn.reply('+ ');
      seen.push(unb64(await conn.line()));
      await loggedIn(conn);
      await quit(conn);
    });
    let n = 0;
    const accessToken = async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      n += 1;
      return `token-${n}`;
    };
    for (let i = 0; i < 2; i++) {
      await using _client = await Pop3Client.connect(options(srv, { ...oauth, accessToken }));
    }
    assert.deepEqual(seen, ['user=alice\x01auth=Bearer token-1\x01\x01', 'user=alice\x01auth=Bearer token-2\x01\x01']);
  });

  it('throws: the login fails with its error as the cause, before AUTH is sent', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL XOAUTH2']);
      await conn.closed();
    });
    const cause = new Error('invalid_grant: refresh token expired');
    await assert.rejects(
      Pop3Client.connect(options(srv, { ...oauth, accessToken: async () => Promise.reject(cause) })),
      isError(Pop3AuthenticationError, 'POP3_AUTH_TOKEN_FAILED', (e) => {
        assert.equal(e.cause, cause);
        assert.match(e.message, /invalid_grant/);
      }),
    );
    assert.deepEqual(srv.received, ['CAPA']);
  });

  it('returns something that is not a bearer token: refused, and the token is not echoed', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL XOAUTH2']);
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, { ...oauth, accessToken: 'abc\x01auth=Bearer evil' })),
      isError(Pop3UsageError, 'POP3_INVALID_ARGUMENT', (e) => assert.doesNotMatch(e.message, /evil/)),
    );
    assert.deepEqual(srv.received, ['CAPA']);
  });
});

describe('tokens and TLS', () => {
  it('a token is not sent over plain TCP unless the caller opts in', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL XOAUTH2 OAUTHBEARER']);
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, { ...oauth, allowPlaintextAuth: false })),
      isError(Pop3UsageError, 'POP3_PLAINTEXT_REFUSED', (e) => assert.match(e.message, /access token.*allowPlaintextAuth/)),
    );
    assert.deepEqual(srv.received, ['CAPA']);
  });
});
