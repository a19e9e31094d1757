/**
 * The SASL exchange (RFC 5034) against a scripted server: SCRAM with an honest server and with an
 * impostor, the initial response and the 255-octet line, long challenges, cancelling with "*",
 * and what a refusal leads to: never the same password through a second mechanism.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { Pop3Client } from '../../src/index.ts';
import { Pop3AuthenticationError, Pop3ProtocolError } from '../../src/errors.ts';
import { scramServer } from '../../../../support/scram-server.ts';
import type { ScriptedConnection } from '../../../../support/scripted-server.ts';
import { b64, greet, isError, loggedIn, options, quit, serve, tracer, unb64 } from './helpers.ts';

const PASSWORD = 'correct horse battery staple';
const withPassword = { password: PASSWORD, allowPlaintextAuth: true };

/** The server's side of SCRAM, after the client's AUTH line; returns what it said last. */
async function scramExchange(conn: ScriptedConnection, authLine: string, signature: 'right' | 'wrong' = 'right'): Promise<string> {
  const [, name, initial] = authLine.split(' ') as [string, string, string];
  const server = scramServer({ hash: name === 'SCRAM-SHA-1' ? 'sha1' : 'sha256', password: PASSWORD, signature });
  conn.reply(`+ ${b64(server.first(unb64(initial)))}`);
  const final = server.final(unb64(await conn.line()));
  conn.reply(`+ ${b64(final)}`);
  return final;
}

describe('SCRAM against a server that checks the proof', () => {
  for (const name of ['SCRAM-SHA-256', 'SCRAM-SHA-1'] as const) {
    it(`${name}: logs in, answers the server-final message with an empty line, every response shown as ***`, async () => {
      const srv = await serve(async (conn) => {
        await greet(conn, [`SASL ${name}`]);
        await scramExchange(conn, await conn.expect(new RegExp(`^AUTH ${name} `)));
        await conn.expect('');
        await loggedIn(conn);
        await quit(conn);
      });
      const { lines, trace } = tracer();
      const client = await Pop3Client.connect(options(srv, { password: PASSWORD, trace }));
      assert.equal(client.authMechanism, name);
      await client.quit();
      const sent = lines.filter((l) => l.startsWith('client: '));
      assert.deepEqual(sent.slice(1, 4), [`client: AUTH ${name} ***`, 'client: ***', 'client: ***']);
    });
  }

  it('is used over plain TCP without allowPlaintextAuth: the password never crosses the wire', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256 PLAIN', 'USER']);
      await scramExchange(conn, await conn.expect(/^AUTH SCRAM-SHA-256 /));
      await conn.expect('');
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, { password: PASSWORD }));
    assert.equal(client.secure, false);
    assert.ok(!srv.received.join('\n').includes(PASSWORD));
  });

  it('a wrong password: the server\'s e= is answered empty, and its -ERR [AUTH] is an authentication error', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256', 'USER', 'RESP-CODES']);
      const server = scramServer({ hash: 'sha256', password: 'the real one' });
      const authLine = await conn.expect(/^AUTH SCRAM-SHA-256 /);
      conn.reply(`+ ${b64(server.first(unb64(authLine.split(' ')[2] as string)))}`);
      conn.reply(`+ ${b64(server.final(unb64(await conn.line())))}`);
      await conn.expect('');
      conn.reply('-ERR [AUTH] Authentication failed.');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, { password: PASSWORD })),
      isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED', (e) => {
        assert.equal(e.responseCode, 'AUTH');
        assert.match(e.message, /invalid-proof/);
      }),
    );
    // USER is offered too, but the password was rejected: it is not tried again.
    assert.equal(srv.received.filter((l) => /^(AUTH|USER|PASS|APOP)/.test(l)).length, 1);
  });

  it('an impostor with a wrong server signature: "*" cancels, and the connection is closed', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256']);
      await scramExchange(conn, await conn.expect(/^AUTH SCRAM-SHA-256 /), 'wrong');
      await conn.expect('*');
      conn.reply('-ERR Authentication cancelled');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, { password: PASSWORD })), isError(Pop3ProtocolError, 'POP3_SASL_SERVER_SIGNATURE'));
    assert.equal(srv.received.at(-1), '*');
  });

  it('an impostor that says +OK to the cancel is still refused', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256']);
      await scramExchange(conn, await conn.expect(/^AUTH SCRAM-SHA-256 /), 'wrong');
      await conn.expect('*');
      conn.reply('+OK welcome anyway');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, { password: PASSWORD })), isError(Pop3ProtocolError, 'POP3_SASL_SERVER_SIGNATURE'));
  });

  it('a server that says +OK without a server signature is refused, and the connection closed', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256']);
      const server = scramServer({ hash: 'sha256', password: PASSWORD });
      const authLine = await conn.expect(/^AUTH SCRAM-SHA-256 /);
      conn.reply(`+ ${b64(server.first(unb64(authLine.split(' ')[2] as string)))}`);
      server.final(unb64(await conn.line()));
      conn.reply('+OK logged in');
      await conn.closed();
    });
    const { lines, trace } = tracer();
    await assert.rejects(Pop3Client.connect(options(srv, { password: PASSWORD, trace })), isError(Pop3ProtocolError, 'POP3_SASL_SERVER_SIGNATURE'));
    // Not a single command after the unproven +OK.
    assert.equal(lines.at(-1), 'server: +OK logged in');
  });
});

describe('the AUTH line and its initial response (RFC 5034 section 4)', () => {
  it('goes on the AUTH line when the line stays within 255 octets', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN']);
      const line = await conn.expect(/^AUTH PLAIN /);
      assert.equal(unb64(line.slice('AUTH PLAIN '.length)), `\0alice\0${PASSWORD}`);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, withPassword));
    assert.equal(client.authMechanism, 'PLAIN');
  });

  it('waits for the "+" when it would make the line longer than 255 octets', async () => {
    const user = `${'a'.repeat(170)}@example.com`;
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN']);
      await conn.expect('AUTH PLAIN');
      conn.reply('+ ');
      assert.equal(unb64(await conn.line()), `\0${user}\0${PASSWORD}`);
      await loggedIn(conn);
      await quit(conn);
    });
    await using _client = await Pop3Client.connect(options(srv, { ...withPassword, user }));
  });

  it('CRAM-MD5 answers the server\'s challenge, and its line is *** in the trace', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL LOGIN CRAM-MD5']);
      await conn.expect('AUTH CRAM-MD5');
      const challenge = '<1896.697170952@postoffice.example.net>';
      conn.reply(`+ ${b64(challenge)}`);
      const digest = createHmac('md5', PASSWORD).update(challenge).digest('hex');
      await conn.expect(b64(`alice ${digest}`));
      await loggedIn(conn);
      await quit(conn);
    });
    const { lines, trace } = tracer();
    const client = await Pop3Client.connect(options(srv, { ...withPassword, trace }));
    await client.quit();
    assert.deepEqual(lines.filter((l) => l.startsWith('client: ')).slice(1, 3), ['client: AUTH CRAM-MD5', 'client: ***']);
  });

  it('LOGIN answers the user-name prompt, then the password prompt', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL LOGIN']);
      await conn.expect('AUTH LOGIN');
      conn.reply(`+ ${b64('Username:')}`);
      await conn.expect(b64('alice'));
      conn.reply(`+ ${b64('Password:')}`);
      await conn.expect(b64(PASSWORD));
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, withPassword));
    assert.equal(client.authMechanism, 'LOGIN');
  });
});

describe('challenges the client cannot or will not answer', () => {
  it('a challenge longer than a status line is accepted up to 64 KiB, and the status bound is back afterwards', async () => {
    const challenge = `<${'x'.repeat(40_000)}@long.example>`;
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL CRAM-MD5']);
      await conn.expect('AUTH CRAM-MD5');
      conn.reply(`+ ${b64(challenge)}`);
      await conn.line();
      await loggedIn(conn);
      await conn.expect('STAT');
      conn.reply(`+OK 1 ${'9'.repeat(9000)}`);
      await conn.closed();
    });
    const client = await Pop3Client.connect(options(srv, withPassword));
    await assert.rejects(client.stat(), isError(Pop3ProtocolError, 'POP3_LINE_TOO_LONG'));
  });

  it('a challenge line over 64 KiB fails the connection', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL CRAM-MD5']);
      await conn.expect('AUTH CRAM-MD5');
      conn.reply(`+ ${'A'.repeat(70_000)}`);
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, withPassword)), isError(Pop3ProtocolError, 'POP3_LINE_TOO_LONG'));
  });

  it('a challenge that is not base64: "*", then the -ERR, then a protocol error', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL CRAM-MD5']);
      await conn.expect('AUTH CRAM-MD5');
      conn.reply('+ this is not base64!');
      await conn.expect('*');
      conn.reply('-ERR cancelled');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, withPassword)), isError(Pop3ProtocolError, 'POP3_BAD_REPLY', (e) => {
      assert.match(e.message, /not base64/);
    }));
  });

  it('LOGIN asked a third question: cancelled with "*"', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL LOGIN']);
      await conn.expect('AUTH LOGIN');
      for (const prompt of ['Username:', 'Password:', 'Mother\'s maiden name:']) {
        conn.reply(`+ ${b64(prompt)}`);
        await conn.line();
      }
      assert.equal(conn.socket.destroyed, false);
      conn.reply('-ERR cancelled');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, withPassword)), isError(Pop3ProtocolError, 'POP3_BAD_REPLY'));
    assert.equal(srv.received.at(-1), '*');
  });

  it('a second challenge before the first is answered is a protocol error', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256']);
      await conn.expect(/^AUTH SCRAM-SHA-256 /);
      conn.reply(`+ ${b64('r=x,s=QSXCR+Q6sek8bf92,i=4096')}\r\n+ ${b64('again')}`);
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, { password: PASSWORD })), isError(Pop3ProtocolError, 'POP3_BAD_REPLY'));
  });
});

describe('refusals: one login attempt per connect', () => {
  it('a password rejected through PLAIN is not tried with LOGIN or USER', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN LOGIN', 'USER']);
      await conn.expect(/^AUTH PLAIN /);
      conn.reply('-ERR [AUTH] Invalid login');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, withPassword)), isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED'));
    assert.deepEqual(srv.received.slice(1).map((l) => l.split(' ').slice(0, 2).join(' ')), ['AUTH PLAIN']);
  });

  it('a mechanism refused outright with [AUTH] is an authentication error: no fallback', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL CRAM-MD5 PLAIN']);
      await conn.expect('AUTH CRAM-MD5');
      conn.reply('-ERR [AUTH] Not allowed for this account');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, withPassword)), isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED'));
    assert.deepEqual(srv.received, ['CAPA', 'AUTH CRAM-MD5']);
  });

  it('a mechanism refused outright with a plain -ERR, before any credential was sent: the next one is tried', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL CRAM-MD5 PLAIN']);
      await conn.expect('AUTH CRAM-MD5');
      conn.reply('-ERR Unsupported authentication mechanism');
      await conn.expect(/^AUTH PLAIN /);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, withPassword));
    assert.equal(client.authMechanism, 'PLAIN');
  });

  it('CRAM-MD5 rejected after its answer with a plain -ERR: that was the password, no fallback', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL CRAM-MD5 PLAIN', 'USER']);
      await conn.expect('AUTH CRAM-MD5');
      conn.reply(`+ ${b64('<1.2@host>')}`);
      await conn.line();
      conn.reply('-ERR Authentication failed');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, withPassword)), isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED'));
    assert.equal(srv.received.length, 3);
  });

  it('[IN-USE] after the credentials is an authentication error that may be retried', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN', 'RESP-CODES']);
      await conn.expect(/^AUTH PLAIN /);
      conn.reply('-ERR [IN-USE] Mailbox locked by another session');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, withPassword)),
      isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED', (e) => {
        assert.equal(e.responseCode, 'IN-USE');
        assert.equal(e.retryable, true);
      }),
    );
  });

  it('login() after a successful login is refused locally', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN']);
      await conn.expect(/^AUTH PLAIN /);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, withPassword));
    await assert.rejects(client.login('alice', PASSWORD), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'POP3_INVALID_STATE');
  });
});

describe('APOP (RFC 1939 section 7) and servers without SASL', () => {
  const timestamp = '<1896.697170952@dbc.mtview.ca.us>';

  it('uses the greeting\'s timestamp, with the digest shown as ***', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['TOP', 'USER'], `+OK POP3 server ready ${timestamp}`);
      await conn.expect('APOP alice c4c9334bac560ecc979e58001b3e22fb');
      await loggedIn(conn);
      await quit(conn);
    });
    const { lines, trace } = tracer();
    const client = await Pop3Client.connect(options(srv, { password: 'tanstaaf', allowPlaintextAuth: true, trace }));
    assert.equal(client.authMechanism, 'APOP');
    await client.quit();
    assert.ok(lines.includes('client: APOP alice ***'));
  });

  it('a rejected APOP is not followed by USER/PASS', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['USER'], `+OK ready ${timestamp}`);
      await conn.expect(/^APOP alice /);
      conn.reply('-ERR [AUTH] authentication failed');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, withPassword)), isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED'));
    assert.equal(srv.received.length, 2);
  });

  it('named, with no timestamp in the greeting: refused before anything is sent', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['USER'], '+OK ready, no timestamp here');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, { ...withPassword, auth: 'APOP' })),
      isError(Pop3AuthenticationError, 'POP3_AUTH_MECHANISM_UNAVAILABLE', (e) => assert.match(e.message, /does not offer APOP/)),
    );
    assert.deepEqual(srv.received, ['CAPA']);
  });

  it('an over-long timestamp is no timestamp: USER/PASS is used', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['USER'], `+OK ready <${'9'.repeat(2000)}@host>`);
      await conn.expect('USER alice');
      conn.reply('+OK');
      await conn.expect('PASS tanstaaf');
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, { password: 'tanstaaf', allowPlaintextAuth: true }));
    assert.equal(client.authMechanism, 'USER');
  });

  it('a greeting of 1 MB of "<" is refused at the status-line bound', async () => {
    const srv = await serve(async (conn) => {
      conn.send(`+OK ${'<'.repeat(1 << 20)}\r\n`);
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, withPassword)), isError(Pop3ProtocolError, 'POP3_LINE_TOO_LONG'));
  });

  it('with the bound raised, a greeting of 1 MB of "<" is parsed at once and holds no timestamp', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['USER'], `+OK ${'<'.repeat(1 << 20)}`);
      await conn.expect('USER alice');
      conn.reply('+OK');
      await conn.expect(/^PASS /);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, { ...withPassword, maxLineLength: 2 << 20 }));
    assert.equal(client.authMechanism, 'USER');
  });

  it('a server that does not answer CAPA gets USER/PASS, the one login RFC 1939 guarantees', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('+OK old server');
      await conn.expect('CAPA');
      conn.reply('-ERR unknown command');
      await conn.expect('USER alice');
      conn.reply('+OK');
      await conn.expect(/^PASS /);
      conn.reply('+OK');
      await conn.expect('CAPA');
      conn.reply('-ERR unknown command');
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, withPassword));
    assert.equal(client.authMechanism, 'USER');
  });

  it('a URL\'s ;AUTH=+APOP names APOP (RFC 2384)', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN', 'USER'], `+OK ready ${timestamp}`);
      await conn.expect(/^APOP alice /);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(`pop3://alice;AUTH=+APOP@127.0.0.1:${srv.port}`, {
      tls: 'none',
      ...withPassword,
    });
    assert.equal(client.authMechanism, 'APOP');
  });
});
