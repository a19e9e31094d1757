/**
 * Which store `popwire serve` and the store-reading commands run on, tried as a new user would
 * (issue 11, trap 4), with the built bin:
 *
 * - `--store mysql://x@h/db` once made a folder named `mysql:` holding an SQLite store: an
 *   unknown URL scheme is now a usage error (exit 2) and nothing is made;
 * - `POPWIRE_STORE=/nonexistent/x popwire serve` once started on a new, empty store with a new
 *   secret key: a missing store is now refused (exit 8) unless `--init` asks for one, and a new
 *   store or key is said on stderr;
 * - a token made for another store got a bare 401: it now says the token may belong to another
 *   store (without naming any);
 * - `serve` takes --store, --host and --port like the other commands.
 * Build first: npx tsc -b packages/client packages/service
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { failedWith, popwire, spawnPopwire, succeeded } from '../popwire.ts';

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'popwire-serve-store-test-'));
});
after(async () => {
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

let paths = 0;
const freshPath = (name: string) => join(scratch, `${name}-${++paths}`);

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  readonly stderr: () => string;
  stop(): Promise<void>;
}

/** Starts `popwire serve ARGS` and waits for its "listening on" line. */
async function serve(args: readonly string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawnPopwire(['serve', '--port', '0', ...args], { env: { POPWIRE_LOG_LEVEL: 'silent', ...env } });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 20_000;
  while (!/listening on (http:\/\/\S+)/.test(stderr)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`popwire serve did not start: ${stderr}`);
    await Promise.race([once(child.stderr, 'data'), once(child, 'exit')]);
  }
  const url = /listening on (http:\/\/\S+)/.exec(stderr)![1]!;
  return {
    child,
    url,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('store locations', () => {
  it('refuses a URL scheme it does not know (exit 2), from --store or POPWIRE_STORE, and makes no folder for it', async () => {
    const cwd = freshPath('cwd');
    await mkdir(cwd);
    for (const run of [
      await popwire(['messages', '--store', 'mysql://x@h/db'], { cwd }),
      await popwire(['token', 'create', '--name', 't', '--store', 'mysql://x@h/db'], { cwd }),
      await popwire(['messages'], { cwd, env: { POPWIRE_STORE: 'redis://cache/0' } }),
    ]) {
      failedWith(run, 2, /(--store|POPWIRE_STORE) does not name a store: (mysql|redis):\/\/ is not a kind of store popwire knows/);
    }
    const syncing = await popwire(['sync', 'pop3://alice@127.0.0.1:1', '--store', 'mysql://x@h/db'], { cwd, password: 'x' });
    failedWith(syncing, 2, /mysql:\/\/ is not a kind of store/);
    const serving = await popwire(['serve', '--store', 'mysql://x@h/db'], { cwd });
    failedWith(serving, 2, /^popwire: store \(from --store\): mysql:\/\/ is not a kind of store popwire knows/);
    assert.deepEqual(await readdir(cwd), [], 'no mysql: folder, no popwire-data');
  });

  it('serve refuses a store that is not there (exit 8), says --init makes one, and makes nothing', async () => {
    const missing = join(freshPath('nonexistent'), 'x');
    const run = await popwire(['serve'], { env: { POPWIRE_STORE: missing } });
    failedWith(run, 8, /no store at .*nonexistent-\d+\/x\/popwire\.sqlite: popwire serve --init makes a new one there; to use an existing store, name it with --store, POPWIRE_STORE/);
    assert.equal(existsSync(missing), false);
  });

  it('serve --init makes the store and its key and says so on stderr; the next start says nothing of the kind', async () => {
    const store = freshPath('store');
    const first = await serve(['--init', '--store', store, '--host', '127.0.0.1']);
    await first.stop();
    assert.match(first.stderr(), new RegExp(`^popwire serve: made a new, empty store at ${store}/popwire\\.sqlite\\n`));
    assert.match(first.stderr(), new RegExp(`popwire serve: made a new secret key at ${store}/secret\\.key \\(keep a copy`));
    assert.match(first.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(first.stderr(), new RegExp(`listening on http://127\\.0\\.0\\.1:\\d+ \\(store ${store}/popwire\\.sqlite\\)`));

    const again = await serve(['--init'], { POPWIRE_STORE: store });
    await again.stop();
    assert.doesNotMatch(again.stderr(), /made a new/);
  });

  it('serve refuses to make a new key for a store whose credentials were sealed with a key that is missing (exit 2)', async () => {
    const store = freshPath('store');
    const running = await serve(['--init', '--store', store]);
    const token = succeeded(await popwire(['token', 'create', '--name', 't', '--store', store])).stdout.toString().trim();
    const created = await fetch(`${running.url}/v1/accounts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'a', host: 'pop.example.test', username: 'a', credentials: { type: 'password', password: 'p' }, syncInterval: null }),
    });
    assert.equal(created.status, 201, await created.text());
    await running.stop();
    await rm(join(store, 'secret.key'));
    const run = await popwire(['serve', '--store', store, '--port', '0']);
    failedWith(run, 2, /holds sealed credentials, but its key .*secret\.key is missing: restore it, or set POPWIRE_SECRET_KEY or secretKeyFile/);
    assert.equal(existsSync(join(store, 'secret.key')), false, 'no new key was made');
  });

  it('a token made for another store gets a 401 that says it may belong to another store, and names none', async () => {
    const [mine, other] = [freshPath('store'), freshPath('store')];
    const running = await serve(['--init', '--store', mine]);
    try {
      const token = succeeded(await popwire(['token', 'create', '--name', 't', '--store', other])).stdout.toString().trim();
      const reply = await fetch(`${running.url}/v1/accounts`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(reply.status, 401);
      const { error } = (await reply.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'UNAUTHORIZED');
      assert.match(error.message, /may have been made for another store/);
      assert.equal(error.message.includes(scratch), false, 'no path of either store');
      const none = await fetch(`${running.url}/v1/accounts`);
      assert.match(((await none.json()) as { error: { message: string } }).error.message, /a valid bearer token is required/);
    } finally {
      await running.stop();
    }
  });

  it('serve --port and --host win over the environment, and a bad --port is named', async () => {
    const store = freshPath('store');
    const running = await serve(['--init', '--store', store, '--host', '127.0.0.1'], { POPWIRE_HTTP_HOST: '0.0.0.0', POPWIRE_HTTP_PORT: '1' });
    await running.stop();
    assert.match(running.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(running.url, 'http://127.0.0.1:1');
    const bad = await popwire(['serve', '--store', store, '--port', 'eighty']);
    failedWith(bad, 2, /^popwire: http\.port \(from --port\) must be an integer/);
  });
});
