/**
 * What the client does when the server misbehaves: each test scripts a server, byte by byte,
 * that does what a real one will not on demand. Every failure must be a typed error within the
 * timeout, with no hang, no unbounded memory and no unhandled rejection.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Pop3Client } from '../src/index.ts';
import {
  Pop3ConnectionError,
  Pop3Error,
  Pop3ProtocolError,
  Pop3ServerError,
  Pop3TimeoutError,
  Pop3UsageError,
} from '../src/errors.ts';
import { acceptLogin as login, type ScriptedConnection } from '../../../support/scripted-server.ts';
import { isError, plainOptions, useScriptedServer } from './scripted.ts';

const unhandled: unknown[] = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no promise may be left rejected and unhandled'));

const serve = useScriptedServer();
const options = plainOptions;

describe('a server that breaks the protocol', () => {
  it('greets with something that is not POP3: a protocol error', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('* OK IMAP4rev1 ready');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv)), isError(Pop3ProtocolError, 'POP3_BAD_REPLY'));
  });

  it('sends an endless line: refused at the line bound, not buffered forever', async () => {
    const srv = await serve(async (conn) => {
      const junk = Buffer.alloc(64 * 1024, 0x41);
      for (let i = 0; i < 64 && !conn.socket.destroyed; i++) conn.send(junk);
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv)), isError(Pop3ProtocolError, 'POP3_LINE_TOO_LONG'));
  });

  it('sends a listing line that is not "n size": a protocol error that closes the connection', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('LIST');
      conn.send('+OK\r\n1 100\r\ntwo 200\r\n.\r\n');
      await conn.closed();
    });
    const client = await Pop3Client.connect(options(srv));
    await assert.rejects(client.list(), isError(Pop3ProtocolError, 'POP3_BAD_REPLY'));
    assert.equal(client.state, 'closed');
  });

  it('sends a UID with a space or control byte: refused', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('UIDL');
      conn.send('+OK\r\n1 abc def\r\n.\r\n');
      await conn.closed();
    });
    const client = await Pop3Client.connect(options(srv));
    await assert.rejects(client.uidl(), isError(Pop3ProtocolError, 'POP3_BAD_REPLY'));
  });

  it('sends data that answers no command: a protocol error that closes the connection', async () => {
    let closedByClient!: () => void;
    const clientClosed = new Promise<void>((resolve) => (closedByClient = resolve));
    const srv = await serve(async (conn) => {
      await login(conn);
      conn.reply('+OK nobody asked');
      await conn.closed();
      closedByClient();
    });
    const client = await Pop3Client.connect(options(srv));
    // The client hangs up on its own, with no command of ours in flight to report it.
    await clientClosed;
    assert.equal(client.state, 'closed');
    await assert.rejects(client.noop(), (error: unknown) => {
      isError(Pop3UsageError, 'POP3_CLOSED')(error);
      isError(Pop3ProtocolError, 'POP3_BAD_REPLY')((error as Error).cause);
      return true;
    });
  });
});

describe('a server that goes away or goes quiet', () => {
  it('closes mid-message: the body stream errors with a connection error', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('RETR 1');
      conn.send('+OK 1000 octets\r\nSubject: cut\r\n\r\nfirst half');
      conn.socket.destroy();
    });
    const client = await Pop3Client.connect(options(srv));
    const body = await client.retrieveStream(1);
    await assert.rejects(async () => {
      for await (const _ of body);
    }, isError(Pop3ConnectionError, 'POP3_CONNECTION_CLOSED'));
    await assert.rejects(client.noop(), isError(Pop3UsageError, 'POP3_CLOSED'));
  });

  it('closes mid-message: the buffered retrieve rejects', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('RETR 1');
      conn.send('+OK\r\npartial\r\n');
      conn.socket.end();
    });
    const client = await Pop3Client.connect(options(srv));
    await assert.rejects(client.retrieve(1), isError(Pop3ConnectionError));
  });

  it('answers half a line and stalls: a timeout error within the timeout', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('STAT');
      conn.send('+OK 1 ');
      await conn.closed();
    });
    const client = await Pop3Client.connect(options(srv, { timeout: 300 }));
    const started = Date.now();
    await assert.rejects(client.stat(), isError(Pop3TimeoutError, 'POP3_TIMEOUT'));
    assert.ok(Date.now() - started < 2000);
  });

  it('stalls in the middle of a body: the stream errors with a timeout', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('RETR 1');
      conn.send('+OK\r\nSubject: slow\r\n\r\nand then nothing');
      await conn.closed();
    });
    const client = await Pop3Client.connect(options(srv, { timeout: 300 }));
    const body = await client.retrieveStream(1);
    await assert.rejects(async () => {
      for await (const _ of body);
    }, isError(Pop3TimeoutError));
  });

  it('never greets: connect fails at the connect deadline', async () => {
    const srv = await serve(async (conn) => {
      await conn.closed();
    });
    const started = Date.now();
    await assert.rejects(Pop3Client.connect(options(srv, { connectTimeout: 300, timeout: 60_000 })), isError(Pop3TimeoutError));
    assert.ok(Date.now() - started < 2000);
  });

  it('refuses in its greeting: a connection error carrying the response code', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('-ERR [SYS/TEMP] too many connections');
      await conn.closed();
    });
    await assert.rejects(Pop3Client.connect(options(srv)), (error: unknown) => {
      assert.ok(error instanceof Pop3ConnectionError);
      assert.equal(error.responseCode, 'SYS/TEMP');
      assert.equal(error.retryable, true);
      return true;
    });
  });

  it('is not there: connect fails with a retryable connection error', async () => {
    const srv = await serve(async () => {});
    const port = srv.port;
    await srv.close();
    await assert.rejects(
      Pop3Client.connect({ host: '127.0.0.1', port, tls: 'none', timeout: 1000 }),
      (error: unknown) => error instanceof Pop3ConnectionError && error.code === 'POP3_CONNECT_FAILED' && error.retryable,
    );
  });

  it('an AbortSignal cancels a stalled command and closes the connection', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('STAT');
      await conn.closed();
    });
    const controller = new AbortController();
    const client = await Pop3Client.connect(options(srv, { signal: controller.signal, timeout: 60_000 }));
    const pending = client.stat();
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(pending, (e: unknown) => e instanceof Pop3Error && e.kind === 'aborted');
    assert.equal(client.state, 'closed');
  });
});

describe('a server that is sloppy but usable', () => {
  it('ends every line with a bare LF: the whole session still works', async () => {
    const srv = await serve(async (conn) => {
      conn.send('+OK hi\n');
      await conn.expect('CAPA');
      conn.send('+OK\nUSER\nUIDL\n.\n');
      await conn.expect('USER alice');
      conn.send('+OK\n');
      await conn.expect('PASS secret');
      conn.send('+OK\n');
      await conn.expect('CAPA');
      conn.send('+OK\nUSER\n.\n');
      await conn.expect('LIST');
      conn.send('+OK\n1 12\n2 30\n.\n');
      await conn.expect('RETR 2');
      conn.send('+OK\nSubject: lf\n\n..dot\nbody\n.\n');
      await conn.expect('QUIT');
      conn.send('+OK bye\n');
    });
    const client = await Pop3Client.connect(options(srv));
    assert.deepEqual(await client.list(), [
      { n: 1, size: 12 },
      { n: 2, size: 30 },
    ]);
    assert.equal((await client.retrieve(2)).toString(), 'Subject: lf\n\n.dot\nbody\n');
    await client.quit();
  });

  it('answers -ERR: that command fails alone and the session goes on', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('RETR 9');
      conn.reply('-ERR no such message');
      await conn.expect('NOOP');
      conn.reply('+OK');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(options(srv));
    await assert.rejects(client.retrieve(9), (error: unknown) => {
      assert.ok(error instanceof Pop3ServerError);
      assert.equal(error.connectionUsable, true);
      assert.equal(error.response, 'no such message');
      assert.equal(error.command, 'RETR 9');
      return true;
    });
    await client.noop();
    await client.quit();
  });

  it('a body abandoned by its reader is drained, and the next reply is read in order', async () => {
    const big = `Subject: big\r\n\r\n${'x'.repeat(70)}\r\n`.repeat(20_000);
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('RETR 1');
      conn.send(`+OK\r\n${big}.\r\n`);
      await conn.expect('STAT');
      conn.reply('+OK 1 1440000');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(options(srv));
    const body = await client.retrieveStream(1);
    for await (const _ of body) break; // reads one chunk, destroys the stream
    assert.deepEqual(await client.stat(), { count: 1, size: 1_440_000 });
    await client.quit();
  });
});

/** Greets, answers CAPA with just USER, and then only listens: for refusals before login. */
async function greetAndWait(conn: ScriptedConnection): Promise<void> {
  conn.reply('+OK hi');
  await conn.expect('CAPA');
  conn.send('+OK\r\nUSER\r\n.\r\n');
  await conn.closed();
}

describe('refusals before anything is sent', () => {
  it('a command in the wrong state is refused locally', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('+OK hi');
      await conn.expect('CAPA');
      conn.send('+OK\r\nUSER\r\n.\r\n');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(options(srv, { user: undefined, password: undefined }));
    await assert.rejects(client.stat(), isError(Pop3UsageError, 'POP3_INVALID_STATE'));
    await assert.rejects(client.retrieve(1), isError(Pop3UsageError, 'POP3_INVALID_STATE'));
    await client.quit();
    assert.deepEqual(srv.received, ['CAPA', 'QUIT']);
  });

  it('a user name carrying CRLF is refused and never reaches the server', async () => {
    const srv = await serve(greetAndWait);
    await assert.rejects(
      Pop3Client.connect(options(srv, { user: 'alice\r\nDELE 1' })),
      isError(Pop3UsageError, 'POP3_INVALID_ARGUMENT'),
    );
    assert.deepEqual(srv.received, ['CAPA']);
  });

  it('a password is not sent over plain TCP unless the caller opts in by name', async () => {
    const srv = await serve(greetAndWait);
    await assert.rejects(
      Pop3Client.connect(options(srv, { allowPlaintextAuth: false })),
      (error: unknown) => {
        assert.ok(error instanceof Pop3UsageError);
        assert.equal(error.code, 'POP3_PLAINTEXT_REFUSED');
        assert.match(error.message, /allowPlaintextAuth/);
        return true;
      },
    );
    assert.deepEqual(srv.received, ['CAPA']);
  });

  it('STLS required but not offered (-ERR to STLS, and not in CAPA): POP3_TLS_UNAVAILABLE before any credential is sent', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('+OK hi');
      await conn.expect('STLS');
      conn.reply('-ERR unknown command');
      await conn.expect('CAPA');
      conn.send('+OK\r\nUSER\r\n.\r\n');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, { tls: 'starttls', allowPlaintextAuth: false })),
      isError(Pop3ConnectionError, 'POP3_TLS_UNAVAILABLE'),
    );
    assert.deepEqual(srv.received, ['STLS', 'CAPA']);
  });

  it('bytes sent after +OK to STLS and before the handshake are refused as injection', async () => {
    const srv = await serve(async (conn) => {
      conn.reply('+OK hi');
      await conn.expect('STLS');
      conn.send('+OK begin TLS\r\n+OK injected\r\n');
      await conn.closed();
    });
    await assert.rejects(
      Pop3Client.connect(options(srv, { tls: 'starttls', allowPlaintextAuth: false })),
      isError(Pop3ProtocolError, 'POP3_STLS_INJECTION'),
    );
    assert.deepEqual(srv.received, ['STLS']);
  });
});

describe('pipelining and the trace', () => {
  it('writes commands back to back when the server offers PIPELINING', async () => {
    const srv = await serve(async (conn) => {
      await login(conn, ['USER', 'PIPELINING']);
      // All three commands arrive before any reply is sent: a lock-step client would hang here.
      await conn.expect('RETR 1');
      await conn.expect('RETR 2');
      await conn.expect('DELE 1');
      conn.send('+OK\r\none\r\n.\r\n+OK\r\ntwo\r\n.\r\n+OK deleted\r\n');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(options(srv));
    const [one, two] = await Promise.all([client.retrieve(1), client.retrieve(2), client.delete(1)]);
    assert.equal(one.toString(), 'one\r\n');
    assert.equal(two.toString(), 'two\r\n');
    await client.quit();
  });

  it('an -ERR inside a pipelined batch fails that command alone', async () => {
    const srv = await serve(async (conn) => {
      await login(conn, ['USER', 'PIPELINING']);
      await conn.expect('RETR 1');
      await conn.expect('RETR 2');
      await conn.expect('RETR 3');
      conn.send('+OK\r\none\r\n.\r\n-ERR [SYS/TEMP] busy\r\n+OK\r\nthree\r\n.\r\n');
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const client = await Pop3Client.connect(options(srv));
    const results = await Promise.allSettled([client.retrieve(1), client.retrieve(2), client.retrieve(3)]);
    assert.equal(results[0].status === 'fulfilled' && results[0].value.toString(), 'one\r\n');
    assert.ok(results[1].status === 'rejected' && results[1].reason instanceof Pop3ServerError);
    assert.equal(results[2].status === 'fulfilled' && results[2].value.toString(), 'three\r\n');
    await client.quit();
  });

  it('the trace shows every line, with the password as ***', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    const lines: string[] = [];
    const client = await Pop3Client.connect(options(srv, { trace: (e) => lines.push(`${e.direction}: ${e.line}`) }));
    await client.quit();
    assert.ok(lines.includes('client: PASS ***'), lines.join('\n'));
    assert.ok(lines.includes('client: USER alice'));
    assert.ok(lines.includes('server: +OK scripted ready'));
    assert.ok(!lines.join('\n').includes('secret'));
  });

  it('await using sends QUIT at the end of the block', async () => {
    const srv = await serve(async (conn) => {
      await login(conn);
      await conn.expect('NOOP');
      conn.reply('+OK');
      await conn.expect('QUIT');
      conn.reply('+OK bye');
    });
    {
      await using client = await Pop3Client.connect(options(srv));
      await client.noop();
    }
    assert.equal(srv.received.at(-1), 'QUIT');
  });
});
