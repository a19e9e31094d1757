/**
 * CAPA pipelined behind the login's last line (PASS, or a SASL mechanism's last response), against
 * a scripted server: for the failures Dovecot will not produce on demand. The login's error must
 * surface as it did in lock-step, CAPA's reply must be read and never mistaken for the next
 * command's, and CAPA must never follow a line after which the server could still challenge.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3Client } from '../../src/index.ts';
import { Pop3AuthenticationError, Pop3ProtocolError } from '../../src/errors.ts';
import { scramServer } from '../../../../support/scram-server.ts';
import { b64, greet, isError, options, quit, sendCapa, serve, unb64 } from './helpers.ts';

const PASSWORD = 'correct horse battery staple';

/** The server's side of SCRAM-SHA-256 up to its final message: AUTH with the client's first message, both challenges sent. */
async function scramToServerFinal(conn: Parameters<Parameters<typeof serve>[0]>[0], options: Parameters<typeof scramServer>[0]): Promise<void> {
  const server = scramServer(options);
  const authLine = await conn.expect(/^AUTH SCRAM-SHA-256 /);
  conn.reply(`+ ${b64(server.first(unb64(authLine.split(' ')[2] as string)))}`);
  conn.reply(`+ ${b64(server.final(unb64(await conn.line())))}`);
}

describe('CAPA behind the last SCRAM line', () => {
  it('goes in the same write as the answer to server-final when PIPELINING is offered, and its answer is used', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256', 'PIPELINING']);
      await scramToServerFinal(conn, { hash: 'sha256', password: PASSWORD });
      await conn.expect('');
      // Read before +OK is sent: it can only be here if it came with the empty line.
      assert.ok(conn.hasInput(), 'CAPA should arrive with the last SCRAM line');
      await conn.expect('CAPA');
      conn.reply('+OK logged in');
      sendCapa(conn, ['TOP', 'UIDL', 'X-AFTER-LOGIN']);
      await quit(conn);
    });
    const client = await Pop3Client.connect(options(srv, { password: PASSWORD }));
    assert.ok(client.capabilities().lines.includes('X-AFTER-LOGIN'));
    assert.equal(client.state, 'transaction');
    await client.quit();
  });

  it('waits for the +OK when PIPELINING is not offered', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256']);
      await scramToServerFinal(conn, { hash: 'sha256', password: PASSWORD });
      await conn.expect('');
      assert.ok(!conn.hasInput(), 'nothing may follow the last SCRAM line without PIPELINING');
      conn.reply('+OK logged in');
      await conn.expect('CAPA');
      sendCapa(conn, ['TOP']);
      await quit(conn);
    });
    const client = await Pop3Client.connect(options(srv, { password: PASSWORD }));
    await client.quit();
  });

  it('a wrong password (e=, then -ERR [AUTH]): POP3_AUTH_FAILED as before, CAPA\'s answer is read, and the session stays in AUTHORIZATION', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256', 'PIPELINING', 'RESP-CODES']);
      await scramToServerFinal(conn, { hash: 'sha256', password: 'the real one' });
      await conn.expect('');
      await conn.expect('CAPA');
      conn.reply('-ERR [AUTH] Authentication failed.');
      sendCapa(conn, ['SASL SCRAM-SHA-256', 'PIPELINING', 'X-BEHIND']);
      // The next command gets the next reply, not CAPA's.
      await conn.expect('CAPA');
      sendCapa(conn, ['SASL SCRAM-SHA-256', 'X-ASKED']);
      await quit(conn);
    });
    const client = await Pop3Client.connect(options(srv, { user: undefined }));
    await assert.rejects(
      client.login({ user: 'alice', password: PASSWORD }),
      isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED', (e) => {
        assert.equal(e.responseCode, 'AUTH');
        assert.match(e.message, /invalid-proof/);
      }),
    );
    assert.equal(client.state, 'authorization');
    assert.ok((await client.capa()).lines.includes('X-ASKED'));
    await client.quit();
  });

  it('an impostor with a wrong signature: "*" and no CAPA after it', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256', 'PIPELINING']);
      await scramToServerFinal(conn, { hash: 'sha256', password: PASSWORD, signature: 'wrong' });
      await conn.expect('*');
      conn.reply('-ERR Authentication cancelled');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, { password: PASSWORD })), isError(Pop3ProtocolError, 'POP3_SASL_SERVER_SIGNATURE'));
    assert.equal(srv.received.at(-1), '*');
  });

  it('a challenge after the last response, with CAPA behind it, is a protocol error that closes the connection', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL SCRAM-SHA-256', 'PIPELINING']);
      await scramToServerFinal(conn, { hash: 'sha256', password: PASSWORD });
      await conn.expect('');
      await conn.expect('CAPA');
      conn.reply(`+ ${b64('one more thing')}`);
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, { password: PASSWORD })), isError(Pop3ProtocolError, 'POP3_BAD_REPLY'));
  });
});

describe('the AUTH line with an initial response', () => {
  it('has nothing behind it, so a server that rejects initial responses reads no CAPA as an answer: its -ERR is POP3_AUTH_FAILED, one attempt', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['SASL PLAIN', 'USER', 'PIPELINING']);
      await conn.expect(/^AUTH PLAIN \S+$/);
      assert.ok(!conn.hasInput(), 'nothing may follow an AUTH line the server could still answer with a challenge');
      conn.reply('-ERR initial response not supported');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, { password: 'secret', allowPlaintextAuth: true })), isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED'));
    assert.equal(srv.received.filter((l) => /^(AUTH|USER|PASS|CAPA)/.test(l)).length, 2, srv.received.join('\n'));
  });
});

describe('USER, PASS and CAPA in one write', () => {
  it('go together when PIPELINING is offered; a rejected PASS is POP3_AUTH_FAILED and CAPA\'s answer is consumed', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['USER', 'PIPELINING', 'RESP-CODES']);
      await conn.expect('USER alice');
      assert.ok(conn.hasInput(), 'PASS should arrive with USER');
      conn.reply('+OK');
      await conn.expect('PASS wrong');
      assert.ok(conn.hasInput(), 'CAPA should arrive with PASS');
      await conn.expect('CAPA');
      conn.reply('-ERR [AUTH] no');
      sendCapa(conn, ['USER', 'X-BEHIND']);
      await conn.expect('USER alice');
      conn.reply('+OK');
      await conn.expect('PASS right');
      await conn.expect('CAPA');
      conn.reply('+OK in');
      sendCapa(conn, ['TOP', 'X-AFTER-LOGIN']);
      await quit(conn);
    });
    const client = await Pop3Client.connect(options(srv, { user: undefined, allowPlaintextAuth: true }));
    await assert.rejects(
      client.login({ user: 'alice', password: 'wrong', auth: 'USER' }),
      isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED', (e) => assert.equal(e.responseCode, 'AUTH')),
    );
    assert.equal(client.state, 'authorization');
    await client.login({ user: 'alice', password: 'right', auth: 'USER' });
    assert.equal(client.state, 'transaction');
    assert.ok(client.capabilities().lines.includes('X-AFTER-LOGIN'));
    await client.quit();
  });

  it('a refused USER is the error reported; the -ERR to PASS and CAPA\'s answer are read, and the session stays in AUTHORIZATION', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['USER', 'PIPELINING', 'RESP-CODES']);
      await conn.expect('USER alice');
      await conn.expect('PASS secret');
      await conn.expect('CAPA');
      conn.reply('-ERR [AUTH] no such user');
      conn.reply('-ERR no USER given');
      sendCapa(conn, ['USER', 'X-BEHIND']);
      await conn.expect('CAPA');
      sendCapa(conn, ['USER', 'X-ASKED']);
      await quit(conn);
    });
    const client = await Pop3Client.connect(options(srv, { user: undefined, allowPlaintextAuth: true }));
    await assert.rejects(
      client.login({ user: 'alice', password: 'secret', auth: 'USER' }),
      isError(Pop3AuthenticationError, 'POP3_AUTH_FAILED', (e) => {
        assert.match(e.message, /at USER/);
        assert.equal(e.responseCode, 'AUTH');
      }),
    );
    assert.equal(client.state, 'authorization');
    assert.ok((await client.capa()).lines.includes('X-ASKED'));
    await client.quit();
  });

  it('USER waits for its +OK without PIPELINING', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['USER']);
      await conn.expect('USER alice');
      assert.ok(!conn.hasInput(), 'nothing may follow USER without PIPELINING');
      conn.reply('+OK');
      await conn.expect('PASS secret');
      assert.ok(!conn.hasInput(), 'nothing may follow PASS without PIPELINING');
      conn.reply('+OK in');
      await conn.expect('CAPA');
      sendCapa(conn, ['TOP']);
      await quit(conn);
    });
    const client = await Pop3Client.connect(options(srv, { password: 'secret', allowPlaintextAuth: true, auth: 'USER' }));
    await client.quit();
  });
});
