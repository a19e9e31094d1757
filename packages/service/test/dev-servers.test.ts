/**
 * `npm run dev:servers -- --postgres` (scripts/dev-servers.ts), as a contributor uses it: start
 * it, read what it prints, use the servers with the library and with the printed commands pasted
 * into a shell, then Ctrl-C. After the signal, every process it started (Dovecot's master and its
 * children, the postmaster and its backends) is gone, the ports refuse connections, and the temp
 * folders are removed. Runs the built bin: build first.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Pop3Client } from 'popwire';
import { descendantsOf } from '../../../support/daemon.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../../scripts/dev-servers.ts', import.meta.url));

interface Printed {
  readonly text: string;
  readonly pop3Port: number;
  readonly pop3sPort: number;
  readonly ca: string;
  readonly databaseUrl: string;
  readonly pids: { dovecot: number; postgres: number };
  /** Dovecot's folder, PostgreSQL's, and the script's own (CA and store). */
  readonly dirs: readonly string[];
  /** The "Try it" block, as a shell script. */
  readonly tryIt: string;
}

let child: ChildProcessWithoutNullStreams;
let stdout = '';
let printed: Printed;
/** The servers' processes just before the signal. */
let descendants: number[];

function match(text: string, pattern: RegExp): string {
  const found = pattern.exec(text);
  assert.ok(found?.[1] !== undefined, `${pattern} not in:\n${text}`);
  return found[1];
}

function parse(text: string): Printed {
  const tryIt = text.split('\n\n').find((block) => block.startsWith('Try it'));
  assert.ok(tryIt !== undefined, text);
  return {
    text,
    pop3Port: Number(match(text, /^ {2}pop3:\/\/127\.0\.0\.1:(\d+) /m)),
    pop3sPort: Number(match(text, /^ {2}pop3s:\/\/127\.0\.0\.1:(\d+) /m)),
    ca: match(text, /CA certificate: (\S+)/),
    databaseUrl: match(text, /^ {2}(postgres:\/\/\S+)/m),
    pids: { dovecot: Number(match(text, /PIDs: dovecot (\d+)/)), postgres: Number(match(text, /postgres (\d+)$/m)) },
    dirs: [...text.matchAll(/files and log: (\S+)/g)].map((m) => m[1]!).concat(match(text, /CA certificate: (\S+)\/ca\.pem/)),
    tryIt: tryIt.split('\n').slice(1).map((line) => line.trim()).join('\n'),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('npm run dev:servers -- --postgres', { timeout: 180_000 }, () => {
  before(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, '--postgres'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    while (!stdout.includes('\nReady.')) {
      const [event] = await Promise.race([once(child.stdout, 'data').then(() => ['data']), once(child, 'exit').then(() => ['exit'])]);
      if (event === 'exit') assert.fail(`dev-servers exited before it was ready:\n${stdout}\n${stderr}`);
    }
    printed = parse(stdout);
  });

  after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('prints both servers, the users and passwords, the CA and the PIDs', () => {
    assert.match(printed.text, /user alice, password alice-secret/);
    assert.match(printed.text, /user bob, password bob-secret/);
    assert.match(printed.databaseUrl, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/popwire$/);
    assert.ok(isAlive(printed.pids.dovecot) && isAlive(printed.pids.postgres));
    assert.ok(existsSync(printed.ca));
  });

  it('serves alice\'s mailbox over implicit TLS, trusted through the printed CA', async () => {
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: printed.pop3sPort, ca: await readFile(printed.ca), user: 'alice', password: 'alice-secret' });
    try {
      assert.ok((await client.stat()).count > 0);
    } finally {
      await client.quit();
    }
  });

  it('gives a PostgreSQL database that answers', async () => {
    const db = new pg.Client({ connectionString: printed.databaseUrl });
    await db.connect();
    try {
      assert.equal((await db.query<{ name: string }>('select current_database() as name')).rows[0]?.name, 'popwire');
    } finally {
      await db.end();
    }
  });

  it('prints commands that work as pasted into a shell: stat, list over STLS, sync into SQLite and PostgreSQL', () => {
    const run = spawnSync('bash', ['-e', '-c', printed.tryIt], { encoding: 'utf8', env: { ...process.env, POPWIRE_PASSWORD: '' } });
    assert.equal(run.status, 0, `${printed.tryIt}\n${run.stdout}\n${run.stderr}`);
    assert.equal((run.stdout.match(/^synced alice@127\.0\.0\.1:/gm) ?? []).length, 2, run.stdout);
    assert.match(run.stdout, /^synced .* into postgres:\/\/postgres@127\.0\.0\.1:\d+\/popwire$/m);
  });

  it('prints the serve commands as lines a shell can run as they are', () => {
    const lines = printed.text.split('\n').filter((line) => /^ {2}(POPWIRE_\w+=\S+ )*popwire (token|serve)|^ {2}export /.test(line));
    assert.ok(lines.length >= 5, printed.text);
    const check = spawnSync('bash', ['-n', '-c', lines.map((line) => line.trim()).join('\n')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });

  it('prints serve commands that sync a mailbox through the API on the servers it started', { timeout: 60_000 }, async () => {
    const lines = printed.text.split('\n').map((line) => line.trim());
    const tokenLine = lines.find((line) => /^popwire token create --store /.test(line))!;
    const serveLine = lines.find((line) => /^(POPWIRE_\w+=\S+ )+popwire serve$/.test(line) && !line.includes('postgres://'))!;
    const bin = match(printed.tryIt, /^popwire\(\) \{ node (\S+) "\$@"; \}$/m);
    const tokenRun = spawnSync(process.execPath, [bin, ...tokenLine.split(' ').slice(1)], { encoding: 'utf8' });
    assert.equal(tokenRun.status, 0, tokenRun.stderr);
    const token = tokenRun.stdout.trim();
    // The line's own variables, and a free port instead of 8080, which another program may hold.
    const variables = Object.fromEntries(serveLine.split(' ').filter((w) => w.includes('=')).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
    const { POPWIRE_PASSWORD: _password, ...inherited } = process.env;
    const serve = spawn(process.execPath, [bin, 'serve'], { env: { ...inherited, ...variables, POPWIRE_HTTP_PORT: '0', POPWIRE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let stderr = '';
      while (!/listening on (http:\S+)/.test(stderr)) {
        const [event, chunk] = await Promise.race([once(serve.stderr, 'data').then(([c]) => ['data', c as Buffer] as const), once(serve, 'exit').then(() => ['exit', undefined] as const)]);
        if (event === 'exit') assert.fail(`serve exited: ${stderr}`);
        stderr += chunk!.toString();
      }
      const base = /listening on (http:\S+)/.exec(stderr)![1]!;
      const call = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: response.status, json: (await response.json()) as Record<string, unknown> };
      };
      const account = await call('POST', '/v1/accounts', {
        // bob: alice's mailbox is in this store already, from the pasted sync.
        name: 'Bob', host: '127.0.0.1', port: printed.pop3sPort, username: 'bob',
        credentials: { type: 'password', password: 'bob-secret' }, syncInterval: null,
      });
      assert.equal(account.status, 201, JSON.stringify(account.json));
      let job = await call('POST', `/v1/accounts/${String(account.json.id)}/sync`);
      while (job.json.status === 'queued' || job.json.status === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 100));
        job = await call('GET', `/v1/jobs/${String(job.json.id)}`);
      }
      assert.equal(job.json.status, 'done', JSON.stringify(job.json));
    } finally {
      const exited = once(serve, 'exit');
      serve.kill('SIGTERM');
      await exited;
    }
  });

  it('stops both servers on SIGINT and leaves no process, open port or temp folder behind', async () => {
    // The servers and everything below them (tsx's esbuild service, also below the script, ends
    // on its own once the script has exited).
    descendants = [printed.pids.dovecot, printed.pids.postgres].flatMap((pid) => [pid, ...descendantsOf(pid)]);
    const names = new Map(descendants.map((pid) => [pid, readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')]));
    assert.ok(descendantsOf(child.pid!).includes(printed.pids.dovecot) && descendantsOf(child.pid!).includes(printed.pids.postgres));
    // Dovecot's login and auth processes and PostgreSQL's backends are among them too.
    assert.ok(descendants.length > 4, `${descendants.join(' ')}`);
    const exited = once(child, 'exit');
    child.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, stdout);
    assert.match(stdout, /Stopped; their files are removed\./);
    assert.deepEqual(descendants.filter(isAlive).map((pid) => `${pid} ${names.get(pid)}`), []);
    assert.deepEqual(printed.dirs.filter((dir) => existsSync(dir)), []);
    for (const port of [printed.pop3Port, printed.pop3sPort, Number(new URL(printed.databaseUrl).port)]) {
      assert.ok(await refuses(port), `port ${port} still accepts connections`);
    }
  });
});
