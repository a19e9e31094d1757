/**
 * The TLS side of the login policy, against a scripted server with a real certificate: what is
 * allowed once the connection is encrypted, CAPA asked again after STLS and used for the choice,
 * SNI, and a TLS floor that the caller's own tlsOptions cannot lower.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createServer, type TLSSocket } from 'node:tls';
import { Pop3Client } from '../../src/index.ts';
import { Pop3ConnectionError, Pop3Error } from '../../src/errors.ts';
import { testCertificate } from '../../../../support/certs.ts';
import { b64, greet, isError, loggedIn, options, quit, serve, sendCapa } from './helpers.ts';

const PASSWORD = 'tls-only secret';

describe('the login policy once TLS is up', () => {
  it('implicit TLS: PLAIN is used without allowPlaintextAuth', async () => {
    const credentials = await testCertificate();
    const srv = await serve(async (conn) => {
      await conn.startTls(credentials);
      await greet(conn, ['SASL PLAIN', 'USER']);
      await conn.expect(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, { tls: 'implicit', ca: credentials.cert, password: PASSWORD }));
    assert.equal(client.secure, true);
    assert.equal(client.authMechanism, 'PLAIN');
  });

  it('STLS: sent straight after the greeting (nothing asked in the clear), and the mechanism chosen from the CAPA asked over TLS', async () => {
    const credentials = await testCertificate();
    const srv = await serve(async (conn) => {
      // Before TLS, an attacker could strip CRAM-MD5 from a CAPA list: none is asked there.
      conn.reply('+OK scripted ready');
      await conn.expect('STLS');
      conn.reply('+OK begin TLS');
      await conn.startTls(credentials);
      await conn.expect('CAPA');
      sendCapa(conn, ['SASL CRAM-MD5 PLAIN', 'USER']);
      await conn.expect('AUTH CRAM-MD5');
      conn.reply(`+ ${b64('<1.2@host>')}`);
      await conn.line();
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, { tls: 'starttls', ca: credentials.cert, password: PASSWORD }));
    assert.equal(client.authMechanism, 'CRAM-MD5');
    assert.deepEqual(srv.received.slice(0, 3), ['STLS', 'CAPA', 'AUTH CRAM-MD5']);
  });

  it('STLS offered in CAPA but answered -ERR: the connection fails with the server\'s answer before any credential is sent', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('+OK scripted ready');
      await conn.expect('STLS');
      conn.reply('-ERR TLS not available right now');
      // Asked after the -ERR, to tell "refused" from "not offered" as when CAPA came first.
      await conn.expect('CAPA');
      sendCapa(conn, ['STLS', 'SASL PLAIN', 'USER']);
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv, { tls: 'starttls', password: PASSWORD })), (e: unknown) => {
      assert.ok(e instanceof Pop3Error);
      assert.match(e.message, /TLS not available right now/);
      return true;
    });
    assert.deepEqual(srv.received, ['STLS', 'CAPA']);
  });

  it('STLS answered -ERR by a server that then hangs up: the connection fails with the server\'s answer, not a lost connection', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('+OK scripted ready');
      await conn.expect('STLS');
      conn.reply('-ERR [SYS/TEMP] TLS keys not loaded');
      conn.socket.end();
    });
    await assert.rejects(Pop3Client.connect(options(srv, { tls: 'starttls', password: PASSWORD })), (e: unknown) => {
      assert.ok(e instanceof Pop3Error);
      assert.match(e.message, /TLS keys not loaded/);
      return true;
    });
  });

  it('with allowPlaintextAuth, CAPA comes first (a server that does not know STLS may hang up on it), and a server without STLS gets none', async () => {
    const srv = await serve(async (conn) => {
      await greet(conn, ['USER', 'TOP']);
      await conn.expect('USER alice');
      conn.reply('+OK');
      await conn.expect(`PASS ${PASSWORD}`);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, { tls: 'starttls', password: PASSWORD, allowPlaintextAuth: true }));
    assert.equal(client.secure, false);
    assert.equal(client.state, 'transaction');
    assert.deepEqual(srv.received.slice(0, 3), ['CAPA', 'USER alice', `PASS ${PASSWORD}`]);
  });

  it('with allowPlaintextAuth and STLS offered: CAPA, STLS, then CAPA again over TLS', async () => {
    const credentials = await testCertificate();
    const srv = await serve(async (conn) => {
      await greet(conn, ['STLS', 'USER']);
      await conn.expect('STLS');
      conn.reply('+OK begin TLS');
      await conn.startTls(credentials);
      await conn.expect('CAPA');
      sendCapa(conn, ['SASL PLAIN', 'USER']);
      await conn.expect(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`);
      await loggedIn(conn);
      await quit(conn);
    });
    await using client = await Pop3Client.connect(options(srv, { tls: 'starttls', ca: credentials.cert, password: PASSWORD, allowPlaintextAuth: true }));
    assert.equal(client.secure, true);
    assert.deepEqual(srv.received.slice(0, 4), ['CAPA', 'STLS', 'CAPA', `AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`]);
  });
});

describe('SNI and the TLS floor', () => {
  it('sends the servername as SNI, and none for an IP address (RFC 6066 section 3)', async () => {
    const credentials = await testCertificate();
    const names: Array<string | false | null> = [];
    const srv = await serve(async (conn) => {
      await conn.startTls(credentials);
      names.push((conn.socket as TLSSocket).servername);
      conn.reply('+OK ready');
      await conn.expect('CAPA');
      sendCapa(conn, ['USER']);
      await quit(conn);
    });
    for (const servername of ['localhost', undefined]) {
      await using _client = await Pop3Client.connect(options(srv, { tls: 'implicit', ca: credentials.cert, servername, user: undefined }));
    }
    assert.deepEqual(names, ['localhost', false]);
  });

  it('refuses TLS 1.1 even when the caller\'s tlsOptions would allow it', async () => {
    const { key, cert } = await testCertificate();
    // OpenSSL 3 needs security level 0 on both sides for TLS 1.1; the client gets it through
    // tlsOptions, and would then connect, were popwire's TLS 1.2 floor not applied after them.
    const server = createServer({ key, cert, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, (socket) => {
      socket.end('+OK ready\r\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      await assert.rejects(
        Pop3Client.connect({
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          tls: 'implicit',
          ca: cert,
          tlsOptions: { minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
          timeout: 2000,
        }),
        isError(Pop3ConnectionError, 'POP3_TLS_FAILED'),
      );
    } finally {
      server.close();
    }
  });
});
