/**
 * `popwire sync` end to end: the built bin against a real Dovecot, into a real SQLite store in a
 * temp folder and a real PostgreSQL (one server for the file, a database per test); a scripted
 * server for what Dovecot will not do on demand ([IN-USE], [LOGIN-DELAY], a stall mid-message).
 * Build first:
 *   npx tsc -b packages/client packages/service
 *   node --import tsx --test packages/service/test/cli/commands/sync.test.ts
 *
 * The promise under test: every message of the mailbox ends up stored exactly once, byte for
 * byte as the server sent it, and none leaves the server before it is stored and committed.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import Sqlite from 'better-sqlite3';
import { dotStuff } from '../../../../../support/dot-stuff.ts';
import { expectedRetrBytes, startDovecot, type Dovecot } from '../../../../../support/dovecot.ts';
import { bulkMessages, smallFixtures } from '../../../../../support/fixtures.ts';
import { startPostgres, type Postgres } from '../../../../../support/postgres.ts';
import { acceptLogin, startScriptedServer, type ScriptedConnection } from '../../../../../support/scripted-server.ts';
import { parseStoreLocation, SQLITE_FILE } from '../../../src/store/database.ts';
import { Store } from '../../../src/store/store.ts';
import { BIN, failedWith, finished, parseJson, popwire, spawnPopwire, succeeded, type Run, type SpawnOptions } from '../popwire.ts';

const PASSWORD = 'alice-secret';

let dovecot: Dovecot;
let postgres: Postgres;
let scratch: string;
let caFile: string;

before(async () => {
  [dovecot, postgres] = await Promise.all([startDovecot(), startPostgres()]);
  scratch = await mkdtemp(join(tmpdir(), 'popwire-sync-test-'));
  caFile = join(scratch, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
});

after(async () => {
  await Promise.all([dovecot?.stop(), postgres?.stop()]);
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

let paths = 0;
/** A path in the scratch folder that does not exist yet. */
const freshPath = (name: string) => join(scratch, `${name}-${++paths}`);

const aliceUrl = () => `pop3s://alice@127.0.0.1:${dovecot.tlsPort}`;
const aliceKey = () => `alice@127.0.0.1:${dovecot.tlsPort}`;

/** What `sync --json` prints. */
interface SyncJson {
  readonly status: string;
  readonly account: string;
  readonly store: string;
  readonly sessions: number;
  readonly newMessages: number;
  readonly headersOnly: number;
  readonly alreadyHad: number;
  readonly deleted: number;
  readonly skipped: ReadonlyArray<{ uid: string; size: number }>;
  readonly bytes: number;
  readonly seconds: number;
  readonly identity: string | null;
  readonly notes: readonly string[];
  readonly error: { code: string; message: string } | null;
}

interface MessageJson {
  readonly id: number;
  readonly messageId: string | null;
  readonly size: number;
  readonly headersOnly: boolean;
}

/** `popwire sync URL --store STORE ARGS` as alice against Dovecot. */
function syncAsAlice(store: string, args: readonly string[] = [], options: Omit<SpawnOptions, 'password'> = {}): Promise<Run> {
  return popwire(['sync', aliceUrl(), '--store', store, '--ca', caFile, ...args], { ...options, password: PASSWORD });
}

/** A sync that must succeed quietly, and its --json report. */
async function syncJson(store: string, args: readonly string[] = []): Promise<SyncJson> {
  const report = parseJson<SyncJson>(succeeded(await syncAsAlice(store, ['--json', ...args])));
  assert.equal(report.status, 'ok');
  return report;
}

async function storedList(store: string): Promise<MessageJson[]> {
  return parseJson<MessageJson[]>(succeeded(await popwire(['messages', '--store', store, '--json', '--limit', '100000'])));
}

/** Every stored message's bytes, through `popwire export`, sorted. */
async function exported(store: string): Promise<Buffer[]> {
  const stored = await storedList(store);
  const bytes = await Promise.all(stored.map(async ({ id }) => succeeded(await popwire(['export', String(id), '--store', store])).stdout));
  return sorted(bytes);
}

/** The same, read by this process: a bin per message is slow, and the first test proves export gives these bytes. */
async function storedBytes(store: string): Promise<Buffer[]> {
  return withStore(store, async (opened) => {
    const { messages } = await opened.messages.list({ limit: 100_000 });
    return sorted(await Promise.all(messages.map((message) => opened.messages.rawBuffer(message.id))));
  });
}

const sorted = (messages: readonly Buffer[]) => [...messages].sort(Buffer.compare);
const served = (messages: readonly Buffer[]) => sorted(messages.map(expectedRetrBytes));
const octets = (messages: readonly Buffer[]) => messages.reduce((sum, message) => sum + expectedRetrBytes(message).length, 0);

/** How many messages Dovecot still has for alice. */
async function onServer(): Promise<number> {
  return parseJson<unknown[]>(succeeded(await popwire(['uidl', aliceUrl(), '--json', '--ca', caFile], { password: PASSWORD }))).length;
}

async function withStore<T>(store: string, use: (opened: Store) => Promise<T>): Promise<T> {
  const opened = await Store.open(parseStoreLocation(store));
  try {
    return await use(opened);
  } finally {
    await opened.close();
  }
}

const ATTACHMENTS = await readFile(new URL('../../../../client/test/fixtures/mime/attachments.eml', import.meta.url));
const FIXTURES = [...smallFixtures().map((fixture) => fixture.bytes), ATTACHMENTS];

const BACKENDS = [
  { name: 'SQLite', newStore: async () => freshPath('store') },
  { name: 'PostgreSQL', newStore: () => postgres.createDatabase() },
] as const;

for (const backend of BACKENDS) {
  describe(`sync into ${backend.name}`, () => {
    it('the first sync stores every message, export gives each back byte for byte, and a second sync finds nothing new', async () => {
      await dovecot.setMailbox('alice', FIXTURES);
      const store = await backend.newStore();
      const first = await syncJson(store);
      assert.deepEqual(
        { new: first.newMessages, had: first.alreadyHad, deleted: first.deleted, skipped: first.skipped, bytes: first.bytes, sessions: first.sessions },
        { new: FIXTURES.length, had: 0, deleted: 0, skipped: [], bytes: octets(FIXTURES), sessions: 1 },
      );
      assert.equal(first.identity, 'uidl');
      assert.equal(first.account, aliceKey());
      assert.deepEqual(await exported(store), served(FIXTURES));

      const second = await syncJson(store);
      assert.deepEqual({ new: second.newMessages, had: second.alreadyHad, bytes: second.bytes }, { new: 0, had: FIXTURES.length, bytes: 0 });
      assert.equal((await storedList(store)).length, FIXTURES.length, 'nothing stored twice');
      assert.equal(await onServer(), FIXTURES.length, 'without --delete the server keeps everything');
      const account = await withStore(store, async (opened) => opened.accounts.findByKey(aliceKey()));
      assert.deepEqual(
        { host: account?.host, port: account?.port, tls: account?.tls, user: account?.username, auth: account?.auth, policy: account?.policy },
        { host: '127.0.0.1', port: dovecot.tlsPort, tls: 'implicit', user: 'alice', auth: null, policy: 'leave' },
      );
    });

    it('mail delivered after a sync: the next sync stores only it', async () => {
      const mailbox = bulkMessages(4, 1500);
      await dovecot.setMailbox('alice', mailbox.slice(0, 3));
      const store = await backend.newStore();
      assert.equal((await syncJson(store)).newMessages, 3);
      await dovecot.deliver('alice', mailbox[3]!);
      const next = await syncJson(store);
      assert.deepEqual({ new: next.newMessages, had: next.alreadyHad, bytes: next.bytes }, { new: 1, had: 3, bytes: octets(mailbox.slice(3)) });
      assert.deepEqual(await storedBytes(store), served(mailbox));
    });

    it('--delete empties the server, every message stored first; a further sync finds nothing', async () => {
      await dovecot.setMailbox('alice', FIXTURES);
      const store = await backend.newStore();
      const first = await syncJson(store, ['--delete']);
      assert.deepEqual({ new: first.newMessages, deleted: first.deleted }, { new: FIXTURES.length, deleted: FIXTURES.length });
      assert.equal(await onServer(), 0);
      assert.deepEqual(await storedBytes(store), served(FIXTURES));
      const again = await syncJson(store, ['--delete']);
      assert.deepEqual({ new: again.newMessages, had: again.alreadyHad, deleted: again.deleted }, { new: 0, had: 0, deleted: 0 });
    });

    it('--keep-days 30 leaves every message on the server; --keep-days 0 then deletes the stored ones', async () => {
      const mailbox = bulkMessages(5, 1000);
      await dovecot.setMailbox('alice', mailbox);
      const store = await backend.newStore();
      const keep = await syncJson(store, ['--keep-days', '30']);
      assert.deepEqual({ new: keep.newMessages, deleted: keep.deleted }, { new: 5, deleted: 0 });
      assert.equal(await onServer(), 5);
      const expire = await syncJson(store, ['--keep-days', '0']);
      assert.deepEqual({ new: expire.newMessages, had: expire.alreadyHad, deleted: expire.deleted }, { new: 0, had: 5, deleted: 5 });
      assert.equal(await onServer(), 0);
      assert.deepEqual(await storedBytes(store), served(mailbox));
      const account = await withStore(store, async (opened) => opened.accounts.findByKey(aliceKey()));
      assert.deepEqual({ policy: account?.policy, days: account?.keep_days }, { policy: 'keep', days: 0 });
    });

    it('--max-size skips the larger messages and reports them, every run, until the limit allows them', async () => {
      const small = bulkMessages(3, 800);
      const large = bulkMessages(2, 6000);
      await dovecot.setMailbox('alice', [...small, ...large]);
      const store = await backend.newStore();
      const first = await syncJson(store, ['--max-size', '3000']);
      assert.equal(first.newMessages, 3);
      assert.deepEqual(
        first.skipped.map(({ size }) => size),
        large.map((message) => expectedRetrBytes(message).length),
      );
      const second = await syncJson(store, ['--max-size', '3000', '--oversize', 'skip']);
      assert.deepEqual({ new: second.newMessages, had: second.alreadyHad, skipped: second.skipped }, { new: 0, had: 3, skipped: first.skipped });
      assert.deepEqual(await storedBytes(store), served(small));
      const unlimited = await syncJson(store);
      assert.deepEqual({ new: unlimited.newMessages, skipped: unlimited.skipped.length }, { new: 2, skipped: 0 });
      assert.deepEqual(await storedBytes(store), served([...small, ...large]));
    });

    it('--max-size with --oversize headers stores the header block of the larger messages, reported as headers only', async () => {
      const small = bulkMessages(2, 800);
      const large = bulkMessages(2, 6000);
      await dovecot.setMailbox('alice', [...small, ...large]);
      const store = await backend.newStore();
      const report = await syncJson(store, ['--max-size', '3000', '--oversize', 'headers']);
      assert.deepEqual({ new: report.newMessages, headersOnly: report.headersOnly, skipped: report.skipped }, { new: 4, headersOnly: 2, skipped: [] });
      const headerBlock = (message: Buffer) => message.subarray(0, message.indexOf('\r\n\r\n') + 4);
      assert.deepEqual(await storedBytes(store), served([...small, ...large.map(headerBlock)]));
      assert.equal((await storedList(store)).filter((message) => message.headersOnly).length, 2);
      const again = await syncJson(store, ['--max-size', '3000', '--oversize', 'headers']);
      assert.deepEqual({ new: again.newMessages, had: again.alreadyHad }, { new: 0, had: 4 });
    });

    it('a wrong password is exit 4: nothing stored, the run recorded as failed, the password not shown', async () => {
      await dovecot.setMailbox('alice', bulkMessages(2, 500));
      const store = await backend.newStore();
      const run = await popwire(['sync', aliceUrl(), '--store', store, '--ca', caFile], { password: 'not-the-password' });
      failedWith(run, 4, /Authentication failed.*\(nothing stored or deleted\)/);
      assert.doesNotMatch(run.stderr, /not-the-password/);
      await withStore(store, async (opened) => {
        const account = await opened.accounts.findByKey(aliceKey());
        assert.ok(account !== undefined);
        assert.equal(await opened.messages.count(account.id), 0);
        const [last] = await opened.runs.forAccount(account.id);
        assert.deepEqual({ status: last?.status, code: last?.error_code }, { status: 'failed', code: 'POP3_AUTH_FAILED' });
      });
    });
  });
}

describe('sync: usage errors, found before anything is asked or opened', () => {
  const cases: ReadonlyArray<readonly [string, readonly string[], RegExp]> = [
    ['--delete with --keep-days', ['--delete', '--keep-days', '3'], /--delete and --keep-days cannot be used together/],
    ['--oversize without --max-size', ['--oversize', 'headers'], /give --max-size BYTES too/],
    ['--oversize of another kind', ['--max-size', '10', '--oversize', 'truncate'], /Allowed choices are skip, headers/],
    ['--keep-days that is not a whole number', ['--keep-days', '1.5'], /argument '1\.5' is invalid/],
    ['--max-size 0', ['--max-size', '0'], /Expected a whole number from 1 up/],
  ];
  for (const [name, args, message] of cases) {
    it(`${name} is exit 2`, async () => {
      const store = freshPath('store');
      // An unreachable port: a usage error must come before any connection attempt.
      failedWith(await popwire(['sync', 'pop3s://alice@127.0.0.1:1', '--store', store, ...args], { password: PASSWORD }), 2, message);
      await assert.rejects(readdir(store), { code: 'ENOENT' }, 'no store made');
    });
  }

  it('a URL without a user is exit 2', async () => {
    failedWith(await popwire(['sync', 'pop3s://127.0.0.1:1', '--store', freshPath('store')], { password: PASSWORD }), 2, /sync needs a login/);
  });
});

describe('sync: where the store is', () => {
  it('without --store, $POPWIRE_STORE names it; without either, ./popwire-data in the working folder', async () => {
    await dovecot.setMailbox('alice', bulkMessages(1, 500));
    const named = freshPath('store');
    const byVariable = await popwire(['sync', aliceUrl(), '--ca', caFile, '--json'], { password: PASSWORD, env: { POPWIRE_STORE: named } });
    assert.equal(parseJson<SyncJson>(succeeded(byVariable)).store, join(named, SQLITE_FILE));

    const cwd = freshPath('cwd');
    await mkdir(cwd);
    // An empty variable counts as unset.
    const unset = { cwd, env: { POPWIRE_STORE: '' } };
    const byDefault = await popwire(['sync', aliceUrl(), '--ca', caFile, '--json'], { ...unset, password: PASSWORD });
    assert.equal(parseJson<SyncJson>(succeeded(byDefault)).store, join(cwd, 'popwire-data', SQLITE_FILE));
    assert.equal(parseJson<unknown[]>(succeeded(await popwire(['messages', '--json'], unset))).length, 1);

    const other = freshPath('store');
    const explicit = await popwire(['sync', aliceUrl(), '--ca', caFile, '--json', '--store', other], { password: PASSWORD, env: { POPWIRE_STORE: named } });
    assert.equal(parseJson<SyncJson>(succeeded(explicit)).store, join(other, SQLITE_FILE), '--store wins');
  });

  it('a PostgreSQL store that cannot be reached is exit 8, its password shown as ***', async () => {
    const run = await syncAsAlice('postgres://popwire:pg-s3cret@127.0.0.1:1/mail');
    failedWith(run, 8, /^popwire: Cannot open the store postgres:\/\/popwire:\*\*\*@127\.0\.0\.1:1\/mail: .*ECONNREFUSED/);
    assert.doesNotMatch(run.stderr, /pg-s3cret/);
  });

  it('a folder that cannot hold a store is exit 8; a location that cannot be read is exit 2', async () => {
    const file = freshPath('file');
    await writeFile(file, 'not a folder\n');
    failedWith(await syncAsAlice(file), 8, /^popwire: Cannot open the store .*ENOTDIR|EEXIST/);
    failedWith(await syncAsAlice('postgres://popwire:pg-s3cret@[bad'), 2, /^popwire: --store does not name a store: the PostgreSQL URL cannot be read\n$/);
  });
});

describe('sync: not now ([IN-USE], [LOGIN-DELAY], another sync running) is exit 7', () => {
  /** A server that refuses every login with `reply`; the store records the run. */
  async function refusedLogin(reply: string): Promise<{ run: Run; connections: number; store: string; key: string }> {
    const server = await startScriptedServer(async (conn) => {
      conn.reply('+OK scripted ready');
      await conn.expect('CAPA');
      conn.send('+OK\r\nUSER\r\nUIDL\r\n.\r\n');
      await conn.expect('USER alice');
      conn.reply('+OK');
      await conn.expect('PASS secret');
      conn.reply(reply);
      await conn.closed();
    });
    try {
      const store = freshPath('store');
      const url = `pop3://alice@127.0.0.1:${server.port}`;
      const run = await popwire(['sync', url, '--store', store, '--allow-plaintext'], { password: 'secret' });
      return { run, connections: server.connections, store, key: `alice@127.0.0.1:${server.port}` };
    } finally {
      await server.close();
    }
  }

  it('[IN-USE] is tried three times, then the run is deferred and recorded so', async () => {
    const { run, connections, store, key } = await refusedLogin('-ERR [IN-USE] Mailbox is locked by another session');
    failedWith(run, 7, /^popwire: Deferred: .*Mailbox is locked by another session; try again after \d\d:\d\d:\d\d \(nothing stored or deleted\)\n$/);
    assert.equal(connections, 3);
    await withStore(store, async (opened) => {
      const account = await opened.accounts.findByKey(key);
      const [last] = await opened.runs.forAccount(account!.id);
      assert.equal(last?.status, 'deferred');
      assert.ok((account?.retry_after ?? 0) > Date.now(), 'the account says when to try again');
      assert.equal(account?.allow_plaintext_auth, 1, 'and how it was reached');
    });
  });

  it('[LOGIN-DELAY] is deferred at once, without waiting the delay out', async () => {
    const { run, connections } = await refusedLogin('-ERR [LOGIN-DELAY] Wait 15 minutes between logins');
    failedWith(run, 7, /^popwire: Deferred: .*Wait 15 minutes between logins/);
    assert.equal(connections, 1);
  });

  it('another sync of the same account holding its lock: nothing is done', async () => {
    await dovecot.setMailbox('alice', bulkMessages(2, 500));
    const store = freshPath('store');
    await syncJson(store);
    await dovecot.deliver('alice', bulkMessages(3, 500)[2]!);
    const runsBefore = await withStore(store, async (opened) => {
      const account = (await opened.accounts.findByKey(aliceKey()))!;
      // A live holder on another machine: only its lease running out would free the account.
      await opened.accounts.update(account.id, { lock_owner: 'elsewhere:4242:feedbeef', lock_expires: Date.now() + 600_000 }, Date.now());
      return (await opened.runs.forAccount(account.id)).length;
    });
    failedWith(await syncAsAlice(store), 7, /another sync of this account is running \(elsewhere:4242:feedbeef\); try again when it has finished/);
    await withStore(store, async (opened) => {
      const account = (await opened.accounts.findByKey(aliceKey()))!;
      assert.equal((await opened.runs.forAccount(account.id)).length, runsBefore, 'no run recorded');
      assert.equal(await opened.messages.count(account.id), 2, 'the new message waits for the next sync');
    });
  });
});

/** Messages committed to an SQLite store so far, read as another process would. */
function committedCount(store: string): number {
  const database = new Sqlite(join(store, SQLITE_FILE), { readonly: true, fileMustExist: true });
  try {
    return (database.prepare('select count(*) as n from messages where pending = 0').get() as { n: number }).n;
  } finally {
    database.close();
  }
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await delay(5);
  }
}

describe('sync interrupted', () => {
  it('Ctrl-C stops after the message being received: what was received is committed and deleted, the rest stays; a clean run then completes the mailbox, each message once', async () => {
    // 40 MB: the writer commits every 1,024 messages or 16 MiB, so the first commit comes with
    // more than half of the mailbox still to go.
    const mailbox = bulkMessages(2000, 20_000);
    await dovecot.setMailbox('alice', mailbox);
    const store = freshPath('store');
    const child = spawnPopwire(['sync', aliceUrl(), '--store', store, '--ca', caFile, '--delete', '--json'], { password: PASSWORD });
    const run = finished(child);
    await until(() => {
      try {
        return committedCount(store) > 0;
      } catch {
        return false; // not created yet
      }
    }, 'a first batch is committed');
    child.kill('SIGINT');
    const result = await run;
    assert.equal(result.code, 130, result.stderr);
    const stopped = parseJson<SyncJson>(result);
    assert.equal(stopped.status, 'stopped');
    assert.ok(stopped.newMessages < mailbox.length, 'the signal came before the end');
    assert.equal(stopped.deleted, stopped.newMessages, 'every stored message, and only those, deleted');
    assert.match(result.stderr, /^popwire: SIGINT: stopping after the message being received/);
    assert.match(result.stderr, new RegExp(`popwire: Interrupted by SIGINT: ${stopped.newMessages} new messages stored, ${stopped.deleted} deleted from the server\\n$`));
    assert.equal(committedCount(store), stopped.newMessages);
    assert.equal(await onServer(), mailbox.length - stopped.newMessages);

    const rest = await syncJson(store, ['--delete']);
    assert.deepEqual({ new: rest.newMessages, had: rest.alreadyHad }, { new: mailbox.length - stopped.newMessages, had: 0 });
    assert.equal(await onServer(), 0);
    const ids = (await storedList(store)).map((message) => message.messageId);
    assert.equal(ids.length, mailbox.length);
    assert.deepEqual(new Set(ids), new Set(mailbox.map((message) => /^Message-ID: (\S+)\r$/m.exec(message.toString('latin1'))?.[1])));
  });

  it('a second Ctrl-C exits at once: no DELE and no QUIT reach the server; the next sync stores everything', async () => {
    const message = (n: number) => Buffer.from(`Message-ID: <${n}@scripted>\r\nSubject: ${n}\r\n\r\nFrom the body of ${n}.\r\n`);
    const messages = [1, 2, 3].map(message);
    let sentHalf: () => void = () => {};
    const halfSent = new Promise<void>((resolve) => (sentHalf = resolve));
    const server = await startScriptedServer(async (conn: ScriptedConnection) => {
      const first = server.connections === 1;
      await acceptLogin(conn, ['USER', 'UIDL', 'PIPELINING']);
      for (;;) {
        const [verb, arg] = (await conn.line()).split(' ');
        const n = Number(arg);
        if (verb === 'UIDL') conn.send(`+OK\r\n${messages.map((_, i) => `${i + 1} uid-${i + 1}\r\n`).join('')}.\r\n`);
        else if (verb === 'LIST') conn.send(`+OK\r\n${messages.map((m, i) => `${i + 1} ${m.length}\r\n`).join('')}.\r\n`);
        else if (verb === 'RETR' && first && n === 2) {
          // Half of message 2, then nothing: the client waits mid-message.
          conn.send(Buffer.concat([Buffer.from('+OK\r\n'), messages[1]!.subarray(0, 20)]));
          sentHalf();
          await conn.closed();
          return;
        } else if (verb === 'RETR') conn.send(Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(messages[n - 1]!)]));
        else if (verb === 'DELE') conn.reply('+OK');
        else if (verb === 'QUIT') {
          conn.reply('+OK bye');
          conn.socket.end();
          return;
        } else conn.reply('-ERR unexpected');
      }
    });
    try {
      const store = freshPath('store');
      const args = ['sync', `pop3://alice@127.0.0.1:${server.port}`, '--store', store, '--allow-plaintext', '--delete', '--timeout', '20000'];
      const child = spawnPopwire(args, { password: 'secret' });
      const run = finished(child);
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      await halfSent;
      child.kill('SIGINT');
      await until(() => stderr.includes('stopping after the message being received'), 'the first signal is acknowledged');
      child.kill('SIGINT');
      const result = await run;
      assert.equal(result.code, 130, result.stderr);
      assert.deepEqual(server.received.filter((line) => line.startsWith('DELE') || line === 'QUIT'), []);
      assert.equal(committedCount(store), 0, 'message 1 was not committed yet, and nothing was deleted');

      // The account's lock names a process that is gone: the next sync takes it over at once.
      const next = parseJson<SyncJson>(succeeded(await popwire([...args, '--json'], { password: 'secret' })));
      assert.deepEqual({ status: next.status, new: next.newMessages, deleted: next.deleted }, { status: 'ok', new: 3, deleted: 3 });
      assert.deepEqual(
        server.received.filter((line) => line.startsWith('DELE') || line === 'QUIT'),
        ['DELE 1', 'DELE 2', 'DELE 3', 'QUIT'],
      );
      assert.deepEqual(await storedBytes(store), sorted(messages));
    } finally {
      await server.close();
    }
  });
});

describe('sync on a terminal', () => {
  it('stderr shows a progress bar of the messages received; the summary goes to stdout', async () => {
    await dovecot.setMailbox('alice', bulkMessages(3, 1000));
    const store = freshPath('store');
    const quote = (arg: string) => `'${arg.replace(/'/g, "'\\''")}'`;
    const command = [process.execPath, BIN, 'sync', aliceUrl(), '--store', store, '--ca', caFile].map(quote).join(' ');
    // script(1) runs the command on a pseudo-terminal and copies what it shows to stdout.
    const run = await finished(spawnPopwire([], { password: PASSWORD, shell: `exec script -qec ${quote(command)} /dev/null` }));
    assert.equal(run.code, 0, run.stderr);
    const screen = run.stdout.toString('utf8').replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '');
    assert.match(screen, /100% \| 3\/3 messages \| [\d.]+ [KM]?i?B \| ([\d.]+ [KMG]?i?B\/s|-)/);
    assert.match(screen, /^new {16}3\r?$/m);
    assert.match(screen, /^already had {8}0\r?$/m);
  });
});
