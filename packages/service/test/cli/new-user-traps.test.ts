/**
 * Regressions: the command line's traps a new user fell into (issue 11), as first met. The built
 * bin, run as a child process, against a real Dovecot (its clear-text and its implicit-TLS port)
 * and a real SQLite store. Build first:
 *   npx tsc -b packages/client packages/service
 *   node --import tsx --test packages/service/test/cli/new-user-traps.test.ts
 *
 * 2. pop3s:// to the clear-text port said OpenSSL's "wrong version number" and suggested --ca;
 *    pop3:// to the implicit-TLS port waited out the timeout and said "Timed out".
 * 3. `fetch --maildir /proc/nope` spun at full CPU forever (libuv's recursive mkdir), and the
 *    first SIGTERM did not stop it.
 * 8. --json was ignored by retr, top and export, and a failure printed no JSON at all; fetch
 *    printed nothing on success.
 * 9. serve on a busy port was exit 1 ("internal error"); Ctrl-C at the password prompt was exit 2;
 *    a first sync that could not connect left an account behind in the store.
 * 10. --trace showed the server's SASL challenges.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { expectedRetrBytes, type Dovecot } from '../../../../support/dovecot.ts';
import { smallFixtures } from '../../../../support/fixtures.ts';
import { BIN, failedWith, finished, parseJson, popwire, succeeded, type Run, dovecotScratch, type DovecotScratch } from './popwire.ts';

const PASSWORD = 'alice-secret';
/** A hang is a failure, not a stuck suite: the test runner ends a test that takes longer than this. */
const HANG = { timeout: 30_000 };

let dovecot: Dovecot;
let scratch: string;
let caFile: string;

let servers: DovecotScratch | undefined;
before(async () => {
  ({ dovecot, scratch, caFile } = servers = await dovecotScratch('popwire-traps-test-'));
});

after(() => servers?.stop());

let paths = 0;
const freshPath = (name: string) => join(scratch, `${name}-${++paths}`);

const clearUrl = (user = 'alice') => `pop3://${user}@127.0.0.1:${dovecot.port}`;
const tlsUrl = (user = 'alice') => `pop3s://${user}@127.0.0.1:${dovecot.tlsPort}`;

function asAlice(args: readonly string[]): Promise<Run> {
  return popwire([...args, '--ca', caFile], { password: PASSWORD });
}

const FIXTURES = smallFixtures()
  .slice(0, 2)
  .map((fixture) => fixture.bytes);

interface ErrorJson {
  readonly error: { readonly code: string; readonly message: string };
}

/** A failure with --json: one stderr line, and `{"error": {"code", "message"}}` as the only stdout. */
function failedAsJson(run: Run, exitCode: number, code: string | RegExp, message: RegExp): void {
  assert.equal(run.code, exitCode, run.stderr);
  assert.match(run.stderr, /^popwire: [^\n]+\n$/);
  const json = parseJson<ErrorJson>(run);
  assert.deepEqual(Object.keys(json), ['error']);
  assert.deepEqual(Object.keys(json.error), ['code', 'message']);
  if (typeof code === 'string') assert.equal(json.error.code, code);
  else assert.match(json.error.code, code);
  assert.match(json.error.message, message);
}

async function listening(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('the wrong scheme for the port', () => {
  it('pop3s:// to the clear-text port: exit 3, saying the server spoke clear text and to use pop3://, no --ca hint', HANG, async () => {
    const run = await asAlice(['stat', `pop3s://alice@127.0.0.1:${dovecot.port}`]);
    failedWith(run, 3, /answered in clear text.*pop3:\/\/.*995/);
    assert.doesNotMatch(run.stderr, /--ca/);
  });

  it('pop3:// to the implicit-TLS port: exit 3 at the timeout, saying no greeting came and to try pop3s://', HANG, async () => {
    const run = await asAlice(['stat', `pop3://alice@127.0.0.1:${dovecot.tlsPort}`, '--timeout', '300']);
    failedWith(run, 3, /Timed out: no greeting.*implicit-TLS port\? Try implicit TLS \(pop3s:\/\//);
  });

  it('an untrusted certificate still gets the --ca hint', HANG, async () => {
    failedWith(await popwire(['stat', tlsUrl()], { password: PASSWORD }), 3, /self-signed certificate.*--ca FILE/);
  });

  for (const [url, expected] of [
    ['pop3://alice@127.0.0.1:995', /port 995 is the implicit-TLS port.*pop3s:\/\/HOST:995/],
    ['pop3s://alice@127.0.0.1:110', /port 110 is the clear-text POP3 port.*pop3:\/\/HOST:110/],
  ] as const) {
    it(`${url} named explicitly: a warning on stderr before anything else`, HANG, async () => {
      const run = await asAlice(['stat', url, '--timeout', '300']);
      assert.notEqual(run.code, 0);
      const [first] = run.stderr.split('\n');
      assert.match(first ?? '', /^popwire: warning: /);
      assert.match(first ?? '', expected);
    });
  }

  it('no warning for the usual pairs', HANG, async () => {
    await dovecot.setMailbox('alice', []);
    succeeded(await asAlice(['stat', tlsUrl()]));
    succeeded(await asAlice(['stat', clearUrl()]));
  });
});

describe('fetch to a destination that cannot be made', () => {
  for (const [option, path, what] of [
    ['--maildir', '/proc/nope', 'Maildir'],
    ['--maildir', '/proc/nope/deeper/Maildir', 'Maildir'],
    ['--mbox', '/proc/nope', 'mbox'],
    ['--mbox', '/proc/nope/mbox', 'mbox'],
  ] as const) {
    it(`${option} ${path}: exit 6 with the path and the reason, without connecting`, HANG, async () => {
      await dovecot.setMailbox('alice', FIXTURES);
      const run = await asAlice(['fetch', option, path, '--delete', tlsUrl()]);
      failedWith(run, 6, new RegExp(`Cannot deliver to the ${what} ${path.replace(/\//g, '\\/')}: ENOENT`));
      const left = parseJson<{ count: number }>(succeeded(await asAlice(['stat', '--json', tlsUrl()])));
      assert.equal(left.count, FIXTURES.length);
    });
  }
});

describe('--json on every command, on success and on failure', () => {
  it('retr --json: {"n", "size", "base64"}, the bytes those of retr', HANG, async () => {
    await dovecot.setMailbox('alice', FIXTURES);
    const raw = succeeded(await asAlice(['retr', '2', tlsUrl()])).stdout;
    const json = parseJson<{ n: number; size: number; base64: string }>(succeeded(await asAlice(['retr', '--json', '2', tlsUrl()])));
    assert.deepEqual(Object.keys(json), ['n', 'size', 'base64']);
    assert.equal(json.n, 2);
    assert.deepEqual(Buffer.from(json.base64, 'base64'), raw);
    assert.deepEqual(raw, expectedRetrBytes(FIXTURES[1] as Buffer));
    assert.equal(json.size, raw.length);
  });

  it('top --json: {"n", "lines", "size", "base64"}, the bytes those of top', HANG, async () => {
    await dovecot.setMailbox('alice', FIXTURES);
    const raw = succeeded(await asAlice(['top', '1', '0', tlsUrl()])).stdout;
    const json = parseJson<{ n: number; lines: number; size: number; base64: string }>(succeeded(await asAlice(['top', '--json', '1', '0', tlsUrl()])));
    assert.deepEqual({ ...json, base64: Buffer.from(json.base64, 'base64') }, { n: 1, lines: 0, size: raw.length, base64: raw });
  });

  it('a failed stat --json: {"error": {"code", "message"}} on stdout, exit code unchanged', HANG, async () => {
    const refused = createServer();
    const port = await listening(refused);
    await new Promise((resolve) => refused.close(resolve));
    failedAsJson(await asAlice(['stat', '--json', `pop3s://alice@127.0.0.1:${port}`]), 3, 'POP3_CONNECT_FAILED', /ECONNREFUSED/);
    failedAsJson(await popwire(['stat', '--json', tlsUrl(), '--ca', caFile], { password: 'wrong' }), 4, 'POP3_AUTH_FAILED', /failed/);
    failedAsJson(await asAlice(['retr', '--json', '9', tlsUrl()]), 5, 'POP3_ERR_REPLY', /RETR|message/i);
  });

  it("commander's usage errors and popwire's own are JSON with --json too", HANG, async () => {
    failedAsJson(await popwire(['stat', '--json', '--frobnicate', 'pop3://h']), 2, 'USAGE', /unknown option '--frobnicate'/);
    failedAsJson(await popwire(['stat', '--json', 'http://h']), 2, 'POP3_INVALID_ARGUMENT', /Invalid POP3 URL/);
    failedAsJson(await popwire(['fetch', '--json', '--stdout', tlsUrl()]), 2, 'USAGE', /--json cannot be used with --stdout/);
    failedAsJson(await asAlice(['fetch', '--json', '--maildir', '/proc/nope', tlsUrl()]), 6, 'DELIVERY', /\/proc\/nope/);
  });

  it('fetch prints one summary line without --json, and the summary object with it', HANG, async () => {
    await dovecot.setMailbox('alice', FIXTURES);
    const dir = freshPath('maildir');
    const run = succeeded(await asAlice(['fetch', '--maildir', dir, tlsUrl()]));
    assert.match(run.stdout.toString(), new RegExp(`^fetched 2 messages \\([\\d.]+ K?i?B\\) into the Maildir ${dir} in [\\d.]+ s\\n$`));
    const json = parseJson<Record<string, number>>(succeeded(await asAlice(['fetch', '--json', '--maildir', dir, tlsUrl()])));
    assert.deepEqual(Object.keys(json), ['messages', 'bytes', 'deleted', 'seconds']);
    assert.equal(json.messages, 2);
  });

  it('keys generate, token create and token revoke take --json', HANG, async () => {
    const key = parseJson<{ key: string }>(succeeded(await popwire(['keys', 'generate', '--json'])));
    assert.equal(Buffer.from(key.key, 'base64').length, 32);
    const store = freshPath('store');
    const made = parseJson<{ id: number; token: string; name: string }>(succeeded(await popwire(['token', 'create', '--json', '--name', 'ci', '--store', store])));
    assert.equal(made.name, 'ci');
    assert.ok(made.token.length > 20);
    assert.deepEqual(parseJson(succeeded(await popwire(['token', 'revoke', '--json', String(made.id), '--store', store]))), { revoked: made.id });
    failedAsJson(await popwire(['token', 'revoke', '--json', String(made.id + 100), '--store', store]), 2, 'USAGE', /no token has id/);
  });

  it('sync --json and export --json: one JSON document each, also when the sync fails', HANG, async () => {
    await dovecot.setMailbox('alice', FIXTURES);
    const store = freshPath('store');
    const synced = parseJson<{ status: string; newMessages: number }>(succeeded(await asAlice(['sync', '--json', tlsUrl(), '--store', store])));
    assert.deepEqual([synced.status, synced.newMessages], ['ok', 2]);
    const listed = parseJson<Array<{ id: number }>>(succeeded(await popwire(['messages', '--json', '--store', store])));
    const id = listed.at(-1)?.id ?? 0;
    const exported = parseJson<{ id: number; size: number; base64: string }>(succeeded(await popwire(['export', '--json', String(id), '--store', store])));
    assert.deepEqual(Buffer.from(exported.base64, 'base64'), succeeded(await popwire(['export', String(id), '--store', store])).stdout);
    // A failed run: its report, with its `error` member, is the one document on stdout.
    const failed = await popwire(['sync', '--json', tlsUrl(), '--store', store, '--ca', caFile], { password: 'wrong' });
    assert.equal(failed.code, 4, failed.stderr);
    const report = parseJson<{ status: string; error: { code: string } }>(failed);
    assert.equal(report.status, 'failed');
    assert.equal(report.error.code, 'POP3_AUTH_FAILED');
  });
});

describe('exit codes', () => {
  it('serve on a busy port: exit 3, the port named, not an internal error', HANG, async () => {
    const busy = createServer();
    const port = await listening(busy);
    try {
      const dir = freshPath('serve');
      const run = await popwire(['serve', '--init'], { cwd: scratch, env: { POPWIRE_STORE: dir, POPWIRE_HTTP_PORT: String(port), POPWIRE_HTTP_HOST: '127.0.0.1' } });
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, new RegExp(`^popwire: Cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use.*--port`, 'm'));
    } finally {
      busy.close();
    }
  });

  it('Ctrl-C at the password prompt: exit 130; Ctrl-D: exit 2', HANG, async () => {
    assert.deepEqual(await atPasswordPrompt('\x03'), { code: 130, message: 'popwire: Interrupted at the password prompt' });
    assert.deepEqual(await atPasswordPrompt('\x04'), { code: 2, message: 'popwire: No password entered for alice' });
  });

  it('a first sync that cannot connect leaves no account in the store; one the server answered keeps it', HANG, async () => {
    const store = freshPath('store');
    const refused = createServer();
    const closed = await listening(refused);
    await new Promise((resolve) => refused.close(resolve));
    failedWith(await asAlice(['sync', `pop3s://alice@127.0.0.1:${closed}`, '--store', store]), 3, /ECONNREFUSED/);
    // No --ca: the certificate is refused, so the connection never comes up.
    failedWith(await popwire(['sync', tlsUrl(), '--store', store], { password: PASSWORD }), 3, /self-signed/);
    failedWith(await popwire(['messages', '--account', `alice@127.0.0.1:${closed}`, '--store', store]), 2, /it has none yet/);
    // A wrong password: the server is there, and the account records the failed run (exit 4).
    failedWith(await popwire(['sync', tlsUrl(), '--store', store, '--ca', caFile], { password: 'wrong' }), 4, /failed/);
    failedWith(await popwire(['messages', '--account', 'nobody@nowhere:1', '--store', store]), 2, new RegExp(`it has alice@127\\.0\\.0\\.1:${dovecot.tlsPort}$`, 'm'));
  });
});

describe('--trace and SASL', () => {
  it('SCRAM-SHA-256 with Dovecot: every challenge is "S: + ***", every response "C: ***"', HANG, async () => {
    await dovecot.setMailbox('alice', []);
    const traced = await asAlice(['stat', '--trace', `pop3s://alice;AUTH=SCRAM-SHA-256@127.0.0.1:${dovecot.tlsPort}`]);
    assert.equal(traced.code, 0, traced.stderr);
    const lines = traced.stderr.split('\n');
    const start = lines.indexOf('C: AUTH SCRAM-SHA-256 ***');
    const end = lines.findIndex((line, index) => index > start && line.startsWith('S: +OK'));
    assert.ok(start !== -1 && end > start + 2, traced.stderr);
    // With PIPELINING, the CAPA after login goes in the same write as SCRAM's last line, so the
    // trace shows it before the +OK: a command in the clear, not a SASL response.
    const sasl = lines.slice(start + 1, end).filter((line) => line !== 'C: CAPA');
    for (const line of sasl) assert.ok(line === 'S: + ***' || line === 'C: ***', line);
    assert.ok(sasl.includes('S: + ***'));
    assert.ok(!traced.stderr.includes(PASSWORD), 'the password is not in the trace');
  });
});

/**
 * Runs `popwire stat` on a pseudo-terminal (script(1)), so that it prompts for the password, and
 * types `key` once the prompt is shown. Returns the exit code and the line popwire printed.
 */
async function atPasswordPrompt(key: string): Promise<{ code: number | null; message: string | undefined }> {
  const command = [process.execPath, BIN, 'stat', 'pop3s://alice@127.0.0.1:1'].map((part) => `'${part}'`).join(' ');
  const { POPWIRE_PASSWORD: _unset, ...env } = process.env;
  const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  let typed = false;
  child.stdout.on('data', (chunk: Buffer) => {
    screen += chunk.toString('utf8');
    if (!typed && screen.includes('Password for alice@127.0.0.1: ')) {
      typed = true;
      child.stdin.write(key);
    }
  });
  const run = await finished(child);
  const message = screen.split(/\r?\n/).find((line) => line.startsWith('popwire: '));
  return { code: run.code, message };
}
