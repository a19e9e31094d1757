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
import { startScriptedServer, type Script, type ScriptedConnection } from '../../../../support/scripted-server.ts';
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
