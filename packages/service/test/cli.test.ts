/**
 * The popwire command line end to end: the built bin, run as a child process against a real
 * Dovecot (and, for what Dovecot will not do on demand, a scripted server). Build first:
 *   npx tsc -b packages/client packages/service
 *   node --import tsx --test packages/service/test/cli.test.ts
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closedPort } from '../../../support/daemon.ts';
import { expectedListSize, expectedRetrBytes, startDovecot, type Dovecot } from '../../../support/dovecot.ts';
import { largeFixture, smallFixtures } from '../../../support/fixtures.ts';
import { startScriptedServer, type Script } from '../../../support/scripted-server.ts';
import { failedWith, parseJson, popwire as runPopwire, spawnPopwire, succeeded, type Run } from './cli/popwire.ts';

const PASSWORD = 'alice-secret';

let dovecot: Dovecot;
let scratch: string;
/** Dovecot's self-signed certificate, as a file for --ca. */
let caFile: string;

before(async () => {
  dovecot = await startDovecot();
  scratch = await mkdtemp(join(tmpdir(), 'popwire-cli-test-'));
  caFile = join(scratch, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
});

after(async () => {
  await dovecot?.stop();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

function popwire(args: readonly string[], password?: string): Promise<Run> {
  return runPopwire(args, { password });
}

/** popwire as alice, trusting Dovecot's certificate. */
function asAlice(args: readonly string[]): Promise<Run> {
  return popwire([...args, '--ca', caFile], PASSWORD);
}

function textLines(run: Run): string[] {
  return run.stdout.toString('utf8').split('\n').slice(0, -1);
}

interface UidRow {
  readonly n: number;
  readonly uid: string;
}

/** The first `count` small fixtures, as Dovecot stores them. */
function messages(count: number): Buffer[] {
  return smallFixtures()
    .slice(0, count)
    .map((fixture) => fixture.bytes);
}

/** A URL of the test Dovecot: pop3:// is its plain port (which offers STLS), pop3s:// its TLS port. */
function dovecotUrl(scheme: 'pop3' | 'pop3s', user?: string): string {
  const port = scheme === 'pop3' ? dovecot.port : dovecot.tlsPort;
  return `${scheme}://${user === undefined ? '' : `${user}@`}127.0.0.1:${port}`;
}

const TRANSPORTS = [
  { name: 'pop3:// with STLS', scheme: 'pop3' },
  { name: 'pop3s://', scheme: 'pop3s' },
] as const;

/** A server without STLS (nor SASL): the greeting and the CAPA before login. */
const greetingAndCapa: Script = async (conn) => {
  conn.reply('+OK scripted POP3 server without STLS');
  await conn.expect('CAPA');
  conn.send('+OK\r\nUSER\r\nUIDL\r\n.\r\n');
};

/** The same server through a whole `popwire stat` session: USER/PASS, CAPA, STAT, QUIT. */
const userPassSession: Script = async (conn) => {
  await greetingAndCapa(conn);
  await conn.expect('USER alice');
  conn.reply('+OK');
  await conn.expect(`PASS ${PASSWORD}`);
  conn.reply('+OK logged in');
  await conn.expect('CAPA');
  conn.send('+OK\r\nUSER\r\nUIDL\r\n.\r\n');
  await conn.expect('STAT');
  conn.reply('+OK 2 300');
  await conn.expect('QUIT');
  conn.reply('+OK bye');
  conn.socket.end();
};

for (const transport of TRANSPORTS) {
  describe(`listing commands over ${transport.name}`, () => {
    const alice = () => dovecotUrl(transport.scheme, 'alice');
    const mailbox = messages(3);

    it('list prints "n size uid" for each message, sizes as LIST reports them', async () => {
      await dovecot.setMailbox('alice', mailbox);
      const lines = textLines(succeeded(await asAlice(['list', alice()])));
      assert.equal(lines.length, mailbox.length);
      lines.forEach((line, index) => {
        const [n, size, uid, extra] = line.split(' ');
        assert.equal(n, String(index + 1));
        assert.equal(size, String(expectedListSize(mailbox[index] as Buffer)));
        assert.match(uid ?? '', /^[\x21-\x7e]+$/);
        assert.equal(extra, undefined);
      });
    });

    it('list --json prints an array of {n, size, uid}, the uids those of uidl', async () => {
      await dovecot.setMailbox('alice', mailbox);
      const listed = parseJson<unknown>(succeeded(await asAlice(['list', '--json', alice()])));
      const uids = parseJson<UidRow[]>(succeeded(await asAlice(['uidl', '--json', alice()])));
      assert.deepEqual(
        listed,
        mailbox.map((message, index) => ({ n: index + 1, size: expectedListSize(message), uid: uids[index]?.uid })),
      );
    });

    it('uidl prints "n uid" lines, and --json the same pairs', async () => {
      await dovecot.setMailbox('alice', mailbox);
      const text = textLines(succeeded(await asAlice(['uidl', alice()])));
      const json = parseJson<unknown>(succeeded(await asAlice(['uidl', '--json', alice()])));
      assert.equal(text.length, mailbox.length);
      assert.deepEqual(
        json,
        text.map((line) => {
          const [n, uid] = line.split(' ');
          return { n: Number(n), uid };
        }),
      );
    });

    it('stat prints "count size", and --json {count, size}', async () => {
      await dovecot.setMailbox('alice', mailbox);
      const size = mailbox.reduce((sum, message) => sum + expectedListSize(message), 0);
      assert.equal(succeeded(await asAlice(['stat', alice()])).stdout.toString(), `${mailbox.length} ${size}\n`);
      assert.deepEqual(parseJson(succeeded(await asAlice(['stat', '--json', alice()]))), { count: mailbox.length, size });
    });

    it('capa prints the capability lines after login, and --json the same as Capabilities fields', async () => {
      const lines = textLines(succeeded(await asAlice(['capa', alice()])));
      assert.ok(lines.includes('UIDL') && lines.includes('TOP'), lines.join(', '));
      const json = parseJson(succeeded(await asAlice(['capa', '--json', alice()])));
      assert.deepEqual(json, {
        lines,
        top: true,
        uidl: true,
        user: lines.includes('USER'),
        pipelining: lines.includes('PIPELINING'),
        stls: false,
        respCodes: lines.includes('RESP-CODES'),
        authRespCode: lines.includes('AUTH-RESP-CODE'),
        utf8: false,
        sasl: lines.find((line) => line.startsWith('SASL '))?.split(' ').slice(1) ?? [],
        loginDelay: null,
        expire: null,
        implementation: null,
      });
    });

    it('capa without a user in the URL needs no password and shows the capabilities before login', async () => {
      const lines = textLines(succeeded(await popwire(['capa', dovecotUrl(transport.scheme), '--ca', caFile])));
      assert.ok(lines.includes('USER'), lines.join(', '));
    });
  });
}

describe('retr and top', () => {
  const alice = () => dovecotUrl('pop3s', 'alice');

  for (const fixture of smallFixtures()) {
    it(`retr writes ${fixture.name} to stdout byte for byte as Dovecot serves it`, async () => {
      await dovecot.setMailbox('alice', [fixture.bytes]);
      const run = succeeded(await asAlice(['retr', '1', alice()]));
      assert.ok(run.stdout.equals(expectedRetrBytes(fixture.bytes)), `${fixture.name}: ${run.stdout.length} octets`);
    });
  }

  it('top N 0 writes the headers and the blank line; top N 1 adds the first body line', async () => {
    const plain = smallFixtures().find((fixture) => fixture.name === 'plain.eml');
    assert.ok(plain !== undefined);
    await dovecot.setMailbox('alice', [plain.bytes]);
    const served = expectedRetrBytes(plain.bytes);
    const headerEnd = served.indexOf('\r\n\r\n') + 4;
    const firstBodyLineEnd = served.indexOf('\r\n', headerEnd) + 2;
    assert.deepEqual(succeeded(await asAlice(['top', '1', '0', alice()])).stdout, served.subarray(0, headerEnd));
    assert.deepEqual(succeeded(await asAlice(['top', '1', '1', alice()])).stdout, served.subarray(0, firstBodyLineEnd));
  });

  it('retr of a message that does not exist is a server error (exit 5)', async () => {
    await dovecot.setMailbox('alice', []);
    failedWith(await asAlice(['retr', '1', alice()]), 5, /RETR failed/);
  });
});

describe('dele', () => {
  const alice = () => dovecotUrl('pop3', 'alice');

  it('deletes message N at QUIT: the next list shows one message fewer, and not that one', async () => {
    await dovecot.setMailbox('alice', messages(3));
    const [first, deleted, third] = parseJson<UidRow[]>(succeeded(await asAlice(['uidl', '--json', alice()])));
    assert.equal(succeeded(await asAlice(['dele', '2', alice()])).stdout.length, 0);
    const left = parseJson<UidRow[]>(succeeded(await asAlice(['uidl', '--json', alice()])));
    assert.deepEqual(left, [
      { n: 1, uid: first?.uid },
      { n: 2, uid: third?.uid },
    ]);
    assert.ok(deleted !== undefined && !left.some((row) => row.uid === deleted.uid));
  });

  it('dele --json prints {"deleted": N}', async () => {
    await dovecot.setMailbox('alice', messages(1));
    assert.deepEqual(parseJson(succeeded(await asAlice(['dele', '--json', '1', alice()]))), { deleted: 1 });
    assert.equal(succeeded(await asAlice(['stat', alice()])).stdout.toString(), '0 0\n');
  });
});

describe('the password', () => {
  const alice = () => dovecotUrl('pop3', 'alice');

  it('a wrong password is exit 4, and the password is not in the message', async () => {
    const run = await popwire(['stat', alice(), '--ca', caFile], 'not-the-Passw0rd');
    failedWith(run, 4, /Login\b.*\bfailed/);
    assert.doesNotMatch(run.stderr, /not-the-Passw0rd/);
  });

  it('no password (no POPWIRE_PASSWORD, no --password-file, stdin not a terminal) is exit 2, saying how to give one', async () => {
    failedWith(await popwire(['stat', alice(), '--ca', caFile]), 2, /POPWIRE_PASSWORD.*--password-file/);
  });

  it('--password-file is read, one trailing newline dropped', async () => {
    await dovecot.setMailbox('alice', []);
    const file = join(scratch, 'password');
    await writeFile(file, `${PASSWORD}\n`, { mode: 0o600 });
    assert.equal(succeeded(await popwire(['stat', alice(), '--ca', caFile, '--password-file', file])).stdout.toString(), '0 0\n');
  });

  it('--trace shows each line on stderr, and never the password', async () => {
    await dovecot.setMailbox('alice', []);
    const run = await asAlice(['stat', '--trace', alice()]);
    assert.equal(run.code, 0);
    assert.equal(run.stdout.toString(), '0 0\n');
    const lines = run.stderr.split('\n');
    for (const expected of ['C: CAPA', 'C: STLS', 'C: STAT', 'S: +OK 0 0', 'C: QUIT']) {
      assert.ok(lines.includes(expected), `${expected} missing from:\n${run.stderr}`);
    }
    assert.ok(!run.stderr.includes(PASSWORD));
  });

  it('--trace shows PASS as ***', async () => {
    // A server offering USER/PASS alone, so that no stronger mechanism is chosen over it.
    await withScriptedServer(userPassSession, async (port) => {
      const run = await asAlice(['stat', '--trace', '--allow-plaintext', `pop3://alice@127.0.0.1:${port}`]);
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stderr.split('\n');
      assert.ok(lines.includes('C: USER alice') && lines.includes('C: PASS ***'), run.stderr);
      assert.ok(!run.stderr.includes(PASSWORD));
    });
  });
});

describe('failures and their exit codes', () => {
  it('a bad URL is exit 2, and a password put in it is not repeated', async () => {
    failedWith(await popwire(['stat', 'http://127.0.0.1']), 2, /Invalid POP3 URL/);
    const run = await popwire(['stat', `pop3://alice:hunter22@127.0.0.1:${dovecot.port}`]);
    failedWith(run, 2, /password does not belong in the URL/);
    assert.doesNotMatch(run.stderr, /hunter22/);
  });

  it("commander's usage errors are exit 2, on one line", async () => {
    failedWith(await popwire(['lst', 'pop3://h']), 2, /unknown command 'lst'/);
    failedWith(await popwire(['stat']), 2, /missing required argument 'url'/);
    failedWith(await popwire(['retr', '0', 'pop3://h']), 2, /invalid for argument 'n'/);
    failedWith(await popwire(['retr', '1x', 'pop3://h']), 2, /invalid for argument 'n'/);
    failedWith(await popwire(['top', '1', 'pop3://h']), 2, /missing required argument 'url'/);
    failedWith(await popwire(['stat', 'pop3://h', 'extra']), 2, /too many arguments/);
    failedWith(await popwire(['stat', '--frobnicate', 'pop3://h']), 2, /unknown option '--frobnicate'/);
  });

  it('--help is exit 0 with the usage on stdout', async () => {
    const run = succeeded(await popwire(['--help']));
    assert.match(run.stdout.toString(), /Usage: popwire/);
  });

  it('a command that reads the mailbox, with no user in the URL, is exit 2', async () => {
    failedWith(await popwire(['list', dovecotUrl('pop3'), '--ca', caFile], PASSWORD), 2, /list needs a login/);
  });

  it('a mechanism named in the URL with ;AUTH= is the one used (RFC 2384)', async () => {
    const run = await asAlice(['stat', '--trace', `pop3://alice;AUTH=CRAM-MD5@127.0.0.1:${dovecot.port}`]);
    assert.equal(run.code, 0, String(run.stderr));
    assert.match(run.stderr.toString(), /^C: AUTH CRAM-MD5$/m);
    assert.match(run.stdout.toString(), /^\d+ \d+\n$/);
  });

  it('an unknown mechanism in ;AUTH= is exit 2', async () => {
    failedWith(await asAlice(['stat', `pop3://alice;AUTH=NOPE@127.0.0.1:${dovecot.port}`]), 2, /NOPE/);
  });

  it('--oauth-token-file logs in with the bearer token (XOAUTH2), never showing it', async () => {
    const token = 'ya29.test-token-0123456789';
    const tokenFile = join(scratch, 'token');
    await writeFile(tokenFile, `${token}\n`);
    await withScriptedServer(
      async (conn) => {
        conn.reply('+OK ready');
        await conn.expect('CAPA');
        conn.send('+OK\r\nSASL XOAUTH2\r\n.\r\n');
        await conn.expect('AUTH XOAUTH2');
        conn.reply('+ ');
        const response = Buffer.from(await conn.line(), 'base64').toString();
        assert.equal(response, `user=alice\x01auth=Bearer ${token}\x01\x01`);
        conn.reply('+OK welcome');
        await conn.expect('CAPA');
        conn.send('+OK\r\nUIDL\r\n.\r\n');
        await conn.expect('STAT');
        conn.reply('+OK 2 300');
        await conn.expect('QUIT');
        conn.reply('+OK');
        conn.socket.end();
      },
      async (port) => {
        const args = ['stat', '--trace', '--allow-plaintext', '--oauth-token-file', tokenFile, `pop3://alice@127.0.0.1:${port}`];
        const run = await popwire(args);
        assert.equal(run.code, 0, String(run.stderr));
        assert.equal(run.stdout.toString(), '2 300\n');
        assert.doesNotMatch(run.stderr.toString(), /test-token/);
      },
    );
  });

  it('a refused connection is exit 3', async () => {
    failedWith(await asAlice(['stat', `pop3://alice@127.0.0.1:${await closedPort()}`]), 3, /ECONNREFUSED/);
  });

  it('a certificate nobody vouches for is exit 3, over pop3s:// and over STLS; --insecure accepts it', async () => {
    const tls = dovecotUrl('pop3s', 'alice');
    const stls = dovecotUrl('pop3', 'alice');
    failedWith(await popwire(['stat', tls], PASSWORD), 3, /self-signed certificate.*--ca FILE/);
    failedWith(await popwire(['stat', stls], PASSWORD), 3, /self-signed certificate/);
    await dovecot.setMailbox('alice', []);
    assert.equal(succeeded(await popwire(['stat', tls, '--insecure'], PASSWORD)).stdout.toString(), '0 0\n');
  });

  it('a server that does not answer within --timeout is exit 3', async () => {
    await withScriptedServer(
      (conn) => conn.closed(),
      async (port) => failedWith(await asAlice(['stat', `pop3://alice@127.0.0.1:${port}`, '--timeout', '300']), 3, /Timed out/),
    );
  });
});

describe('test', () => {
  it('reports every step over pop3s://, with the certificate and the mechanism, and exits 0', async () => {
    const run = succeeded(await asAlice(['test', '--json', dovecotUrl('pop3s', 'alice')]));
    const report = JSON.parse(run.stdout.toString()) as {
      ok: boolean;
      steps: Array<{ step: string; ok: boolean; certificate?: { subject: string }; mechanism?: string }>;
    };
    assert.equal(report.ok, true);
    const names = report.steps.map((s) => s.step);
    for (const step of ['dns', 'tcp', 'tls', 'greeting', 'capa', 'login', 'stat']) assert.ok(names.includes(step), step);
    assert.match(report.steps.find((s) => s.step === 'tls')?.certificate?.subject ?? '', /localhost/);
    assert.equal(report.steps.find((s) => s.step === 'login')?.mechanism, 'SCRAM-SHA-256');
  });

  it('a wrong password: the report names the login step, and the exit code is 4', async () => {
    const run = await popwire(['test', '--ca', caFile, dovecotUrl('pop3s', 'alice')], 'wrong-password');
    assert.equal(run.code, 4, String(run.stderr));
    assert.match(run.stdout.toString(), /FAIL login/);
    assert.match(run.stderr.toString(), /^popwire: test failed at login/);
    assert.doesNotMatch(run.stdout.toString() + run.stderr.toString(), /wrong-password/);
  });
});

describe('a reader of stdout that has gone away (EPIPE, as in popwire ... | head -c 10)', () => {
  const alice = () => dovecotUrl('pop3s', 'alice');

  it('ends retr quietly: exit 0, no stack trace', async () => {
    await dovecot.setMailbox('alice', [largeFixture(1024 * 1024).bytes]);
    assert.deepEqual(await popwireWithStdoutClosed(['retr', '1', alice()]), { code: 0, stderr: '' });
  });

  it('ends a listing quietly: exit 0, no stack trace', async () => {
    await dovecot.setMailbox('alice', messages(3));
    assert.deepEqual(await popwireWithStdoutClosed(['list', alice()]), { code: 0, stderr: '' });
  });
});

describe('--allow-plaintext, against a server without STLS', () => {
  it('without it, the connection fails (exit 3) before the user name or password is sent', async () => {
    await withScriptedServer(
      async (conn) => {
        // Without --allow-plaintext, STLS goes first; after its -ERR, CAPA tells that it is not offered.
        conn.reply('+OK scripted POP3 server without STLS');
        await conn.expect('STLS');
        conn.reply('-ERR unknown command');
        await conn.expect('CAPA');
        conn.send('+OK\r\nUSER\r\nUIDL\r\n.\r\n');
        await conn.closed();
      },
      async (port, server) => {
        failedWith(await asAlice(['stat', `pop3://alice@127.0.0.1:${port}`]), 3, /does not offer STLS.*--allow-plaintext/);
        assert.deepEqual(server.received, ['STLS', 'CAPA']);
      },
    );
  });

  it('with it, popwire logs in over plain TCP', async () => {
    await withScriptedServer(userPassSession, async (port) => {
      const run = succeeded(await asAlice(['stat', '--allow-plaintext', `pop3://alice@127.0.0.1:${port}`]));
      assert.equal(run.stdout.toString(), '2 300\n');
    });
  });
});

/**
 * Runs popwire as alice with the reading end of its stdout closed at once, so that its first write
 * fails with EPIPE. (Closing it after some output, as `head` does, races with the writes.)
 */
async function popwireWithStdoutClosed(args: readonly string[]): Promise<Pick<Run, 'code' | 'stderr'>> {
  const child = spawnPopwire([...args, '--ca', caFile], { password: PASSWORD });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stderr };
}

async function withScriptedServer(
  script: Script,
  test: (port: number, server: { readonly received: string[] }) => Promise<void>,
): Promise<void> {
  const server = await startScriptedServer(script);
  try {
    await test(server.port, server);
  } finally {
    await server.close();
  }
}

