/**
 * The `popwire` command line against servers that push back (issue 16, "Adversarial servers"):
 * a temporary refusal of the login ([LOGIN-DELAY], [IN-USE]) is not a rejected password.
 * Before: `-ERR [LOGIN-DELAY] wait` was reported as `Login with PLAIN failed: wait`, exit 4 (the
 * bad-password code), so a cron job could not tell "wait" from "fix the password".
 *
 * The built bin against a scripted server. Build first: npx tsc -b packages/client packages/service
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acceptLogin, drip, startScriptedServer, type Script, type ScriptedConnection } from '../../../../support/scripted-server.ts';
import { popwire, type Run } from './popwire.ts';

async function withServer<T>(script: Script, run: (url: string) => Promise<T>): Promise<T> {
  const server = await startScriptedServer(script);
  try {
    return await run(`pop3://alice@127.0.0.1:${server.port}`);
  } finally {
    await server.close();
  }
}

/** Greeting and CAPA, then the login refused with `refusal`, by USER/PASS or by AUTH PLAIN. */
function refuseLogin(refusal: string, mechanism: 'USER' | 'PLAIN'): Script {
  return async (conn: ScriptedConnection) => {
    conn.reply('+OK scripted ready');
    // `popwire test` first opens a connection of its own for the TCP step, and closes it.
    const capa = await conn.lineOrClose();
    if (capa === undefined) return;
    assert.equal(capa, 'CAPA');
    conn.send(mechanism === 'USER' ? '+OK\r\nUSER\r\nUIDL\r\n.\r\n' : '+OK\r\nUSER\r\nSASL PLAIN\r\nUIDL\r\n.\r\n');
    if (mechanism === 'USER') {
      await conn.expect('USER alice');
      conn.reply('+OK');
      await conn.expect('PASS secret');
    } else {
      await conn.expect(/^AUTH PLAIN/);
    }
    conn.reply(refusal);
    await conn.closed();
  };
}

const cli = (args: readonly string[], url: string): Promise<Run> =>
  popwire([...args, '--allow-plaintext', '--timeout', '5000', url], { password: 'secret' });

describe('a temporary refusal of the login, on every command', () => {
  const cases = [
    { code: 'LOGIN-DELAY', meaning: /\[LOGIN-DELAY\] \(the server asks to wait between logins/ },
    { code: 'IN-USE', meaning: /\[IN-USE\] \(another session holds the mailbox/ },
  ] as const;
  const commands: ReadonlyArray<readonly string[]> = [['stat'], ['list'], ['uidl'], ['retr', '1'], ['dele', '1']];

  for (const { code, meaning } of cases) {
    for (const mechanism of ['USER', 'PLAIN'] as const) {
      for (const args of commands) {
        it(`${args[0]}: [${code}] to ${mechanism} exits 7 (deferred), and the message names the code and what it means`, async () => {
          const run = await withServer(refuseLogin(`-ERR [${code}] wait`, mechanism), (url) => cli(args, url));
          assert.equal(run.code, 7, run.stderr);
          assert.match(run.stderr, meaning);
          assert.match(run.stderr, /: wait\n$/);
          assert.equal(run.stdout.length, 0);
        });
      }
    }
  }

  it('fetch: [LOGIN-DELAY] exits 7, not 4', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'popwire-delay-'));
    try {
      const run = await withServer(refuseLogin('-ERR [LOGIN-DELAY] wait', 'USER'), (url) => cli(['fetch', '--maildir', join(dir, 'mail')], url));
      assert.equal(run.code, 7, run.stderr);
      assert.match(run.stderr, /\[LOGIN-DELAY\] \(the server asks to wait between logins/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('test: [IN-USE] at the login step exits 7, not 4', async () => {
    const run = await withServer(
      async (conn) => {
        await refuseLogin('-ERR [IN-USE] busy', 'USER')(conn);
      },
      (url) => cli(['test'], url),
    );
    assert.equal(run.code, 7, run.stderr);
    assert.match(run.stderr, /\[IN-USE\] \(another session holds the mailbox/);
  });

  it('--json names the library code, POP3_AUTH_FAILED, with the response code in the message', async () => {
    const run = await withServer(refuseLogin('-ERR [LOGIN-DELAY] wait', 'PLAIN'), (url) => cli(['stat', '--json'], url));
    assert.equal(run.code, 7);
    const { error } = JSON.parse(run.stdout.toString('utf8')) as { error: { code: string; message: string } };
    assert.equal(error.code, 'POP3_AUTH_FAILED');
    assert.match(error.message, /\[LOGIN-DELAY\]/);
  });

  it('a rejected password ([AUTH]) still exits 4', async () => {
    const run = await withServer(refuseLogin('-ERR [AUTH] invalid credentials', 'USER'), (url) => cli(['stat'], url));
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /\[AUTH\] \(the credentials were rejected\): invalid credentials/);
  });
});

/**
 * A big listing through the CLI: written a chunk at a time from the compact listing (see
 * output.ts writeRows). Its memory is measured by hand, not here (nothing asserts on time or
 * RSS): see the CHANGELOG for the numbers.
 */
describe('list and uidl with a big listing', () => {
  const COUNT = 200_000;
  const block = (line: (n: number) => string): string => {
    const lines: string[] = ['+OK'];
    for (let n = 1; n <= COUNT; n++) lines.push(line(n));
    return `${lines.join('\r\n')}\r\n.\r\n`;
  };
  const uidOf = (n: number) => `u${n.toString(36)}-${'z'.repeat(n % 40)}`;
  const mailbox: Script = async (conn) => {
    await acceptLogin(conn, ['USER', 'UIDL']);
    for (;;) {
      const line = await conn.line();
      if (line === 'LIST') conn.send(block((n) => `${n} ${n * 3}`));
      else if (line === 'UIDL') conn.send(block((n) => `${n} ${uidOf(n)}`));
      else if (line === 'QUIT') return conn.reply('+OK');
      else conn.reply('-ERR what');
    }
  };

  it(`list prints all ${COUNT} lines, each with its size and uid, in order`, async () => {
    const run = await withServer(mailbox, (url) => cli(['list'], url));
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.toString('latin1').split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, COUNT);
    lines.forEach((line, i) => assert.equal(line, `${i + 1} ${(i + 1) * 3} ${uidOf(i + 1)}`));
  });

  it('uidl --json prints one JSON array of every entry', async () => {
    const run = await withServer(mailbox, (url) => cli(['uidl', '--json'], url));
    assert.equal(run.code, 0, run.stderr);
    const rows = JSON.parse(run.stdout.toString('utf8')) as Array<{ n: number; uid: string }>;
    assert.equal(rows.length, COUNT);
    rows.forEach((row, i) => assert.deepEqual(row, { n: i + 1, uid: uidOf(i + 1) }));
  });
});

/**
 * Slow drip: a server that sends one byte of its listing every 50 ms never trips --timeout
 * (per reply; each byte restarts it). --deadline bounds the whole session.
 */
describe('--deadline against a server that drips', { timeout: 30_000 }, () => {
  const dripping: Script = async (conn) => {
    await acceptLogin(conn, ['USER']);
    await conn.expect('LIST');
    conn.send('+OK\r\n');
    await drip(conn, '1');
  };

  for (const json of [false, true]) {
    it(`list --deadline 500${json ? ' --json' : ''}: exit 3, POP3_TIMEOUT naming the deadline`, async () => {
      const run = await withServer(dripping, (url) => cli(['list', '--deadline', '500', ...(json ? ['--json'] : [])], url));
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /^popwire: The session's deadline passed \(\d{4}-/);
      if (json) assert.equal((JSON.parse(run.stdout.toString('utf8')) as { error: { code: string } }).error.code, 'POP3_TIMEOUT');
    });
  }

  it('sync --deadline 500: exit 3 naming the deadline, whatever command the server drips its reply to', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'popwire-drip-'));
    try {
      const dripAnyReply: Script = async (conn) => {
        await acceptLogin(conn, ['USER', 'UIDL']);
        await conn.line();
        // A status line that never ends, one byte at a time: each byte restarts --timeout.
        await drip(conn, 'x');
      };
      const run = await withServer(dripAnyReply, (url) => cli(['sync', '--store', join(dir, 'store'), '--deadline', '500'], url));
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /The session's deadline passed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--deadline 0 is refused as usage (exit 2)', async () => {
    const run = await popwire(['list', '--deadline', '0', 'pop3://alice@127.0.0.1:1'], { password: 'secret' });
    assert.equal(run.code, 2, run.stderr);
  });
});
