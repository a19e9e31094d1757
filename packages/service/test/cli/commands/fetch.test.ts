/**
 * `popwire fetch` end to end: the built bin against a real Dovecot, and against a scripted server
 * for what Dovecot will not do on demand (drop the connection mid-message, stall, refuse a RETR).
 * Build first:
 *   npx tsc -b packages/client packages/service
 *   node --import tsx --test packages/service/test/cli/commands/fetch.test.ts
 *
 * The promise under test: no message is lost, whatever happens. After any run, every message of
 * the mailbox is either still on the server or delivered (and then whole), and a message is gone
 * from the server only if it was delivered.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { dotStuff } from '../../../../../support/dot-stuff.ts';
import { expectedRetrBytes, type Dovecot } from '../../../../../support/dovecot.ts';
import { bulkMessages, largeFixture, smallFixtures } from '../../../../../support/fixtures.ts';
import { acceptLogin, startScriptedServer, type Script, type ScriptedConnection } from '../../../../../support/scripted-server.ts';
import { lfNormalized, readMboxrd } from '../../delivery/mboxrd-reader.ts';
import { BIN, failedWith, finished, parseJson, popwire, spawnPopwire, succeeded, type Run, type SpawnOptions, dovecotScratch, type DovecotScratch } from '../popwire.ts';

const PASSWORD = 'alice-secret';

let dovecot: Dovecot;
let scratch: string;
let caFile: string;

let servers: DovecotScratch | undefined;
before(async () => {
  ({ dovecot, scratch, caFile } = servers = await dovecotScratch('popwire-fetch-test-'));
});

after(() => servers?.stop());

let paths = 0;
/** A path in the scratch folder that does not exist yet. */
const freshPath = (name: string) => join(scratch, `${name}-${++paths}`);

const aliceUrl = (scheme: 'pop3' | 'pop3s' = 'pop3s') =>
  `${scheme}://alice@127.0.0.1:${scheme === 'pop3' ? dovecot.port : dovecot.tlsPort}`;

/** `popwire fetch ARGS URL` as alice against Dovecot. */
function fetchAsAlice(args: readonly string[], options: Omit<SpawnOptions, 'password'> = {}): Promise<Run> {
  return popwire(['fetch', ...args, aliceUrl(), '--ca', caFile], { ...options, password: PASSWORD });
}

/** The messages in DIR/new, in the order they were delivered (the Q counter of their names). */
async function maildirMessages(dir: string): Promise<Buffer[]> {
  const names = await readdir(join(dir, 'new'));
  const order = (name: string) => Number(/Q(\d+)R/.exec(name)?.[1]);
  return Promise.all(names.sort((a, b) => order(a) - order(b)).map((name) => readFile(join(dir, 'new', name))));
}

/** What Dovecot still has for alice, read without deleting: mboxrd from --stdout, with LF endings. */
async function serverMessages(): Promise<Buffer[]> {
  const run = await fetchAsAlice(['--stdout']);
  assert.equal(run.code, 0, run.stderr);
  return readMboxrd(run.stdout).map((entry) => entry.message);
}

/** As they come out of an mbox: what Dovecot serves, with LF endings. */
const asMbox = (messages: readonly Buffer[]) => messages.map((message) => lfNormalized(expectedRetrBytes(message)));
const served = (messages: readonly Buffer[]) => messages.map(expectedRetrBytes);

const messageId = (message: Buffer) => /^Message-ID: (\S+)\r?$/m.exec(message.toString('latin1'))?.[1] ?? '';

interface Summary {
  readonly messages: number;
  readonly bytes: number;
  readonly deleted: number;
  readonly seconds: number;
}

/** The pid of a process that has exited (and been reaped): nothing runs under it now. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await delay(5);
  }
}

const FIXTURES = smallFixtures().map((fixture) => fixture.bytes);

describe('fetch --maildir', () => {
  for (const scheme of ['pop3', 'pop3s'] as const) {
    it(`writes each fixture into new/ byte for byte as Dovecot serves it (${scheme}://), tmp/ left empty`, async () => {
      await dovecot.setMailbox('alice', FIXTURES);
      const dir = join(freshPath('maildir'), 'nested', 'Maildir');
      const run = await popwire(['fetch', '--maildir', dir, aliceUrl(scheme), '--ca', caFile], { password: PASSWORD });
      succeeded(run);
      assert.match(run.stdout.toString(), /^fetched \d+ messages \([^)]+\) into the Maildir .+ in [\d.]+ s\n$/, 'one summary line without --json');
      assert.deepEqual(await maildirMessages(dir), served(FIXTURES));
      assert.deepEqual(await readdir(join(dir, 'tmp')), []);
      assert.deepEqual(await readdir(join(dir, 'cur')), []);
      assert.equal((await serverMessages()).length, FIXTURES.length, 'without --delete the server keeps everything');
    });
  }

  it('--messages fetches exactly those, in order, each once', async () => {
    const mailbox = bulkMessages(9, 500);
    await dovecot.setMailbox('alice', mailbox);
    const dir = freshPath('maildir');
    succeeded(await fetchAsAlice(['--maildir', dir, '--messages', '8,2-4,3']));
    assert.deepEqual(await maildirMessages(dir), served([2, 3, 4, 8].map((n) => mailbox[n - 1] as Buffer)));
  });

  it('--messages naming a message the mailbox lacks is a usage error, and nothing is fetched', async () => {
    await dovecot.setMailbox('alice', bulkMessages(6, 500));
    const dir = freshPath('maildir');
    failedWith(await fetchAsAlice(['--maildir', dir, '--messages', '1,5-9']), 2, /asks for message 7, but the mailbox has messages 1-6/);
    assert.deepEqual(await readdir(join(dir, 'new')), []);
  });

  it('--delete empties the mailbox, every message delivered; --json prints the summary', async () => {
    await dovecot.setMailbox('alice', FIXTURES);
    const dir = freshPath('maildir');
    const summary = parseJson<Summary>(succeeded(await fetchAsAlice(['--maildir', dir, '--delete', '--json'])));
    assert.deepEqual(Object.keys(summary), ['messages', 'bytes', 'deleted', 'seconds']);
    assert.equal(summary.messages, FIXTURES.length);
    assert.equal(summary.deleted, FIXTURES.length);
    assert.equal(summary.bytes, served(FIXTURES).reduce((sum, message) => sum + message.length, 0));
    assert.ok(summary.seconds > 0 && summary.seconds < 60, String(summary.seconds));
    assert.deepEqual(await maildirMessages(dir), served(FIXTURES));
    assert.deepEqual(await serverMessages(), []);
  });

  it('--json without --delete reports nothing deleted', async () => {
    await dovecot.setMailbox('alice', bulkMessages(3, 500));
    const summary = parseJson<Summary>(succeeded(await fetchAsAlice(['--maildir', freshPath('maildir'), '--json'])));
    assert.equal(summary.messages, 3);
    assert.equal(summary.deleted, 0);
  });

  it('an empty mailbox is no error: {"messages":0,...}', async () => {
    await dovecot.setMailbox('alice', []);
    const summary = parseJson<Summary>(succeeded(await fetchAsAlice(['--maildir', freshPath('maildir'), '--delete', '--json'])));
    assert.deepEqual({ ...summary, seconds: 0 }, { messages: 0, bytes: 0, deleted: 0, seconds: 0 });
  });
});

describe('fetch --mbox and --stdout', () => {
  it('--mbox appends a valid mboxrd: reading it back gives each fixture with LF endings', async () => {
    await dovecot.setMailbox('alice', FIXTURES);
    const file = freshPath('mbox');
    succeeded(await fetchAsAlice(['--mbox', file]));
    succeeded(await fetchAsAlice(['--mbox', file]));
    const entries = readMboxrd(await readFile(file));
    assert.deepEqual(
      entries.map((entry) => entry.message),
      [...asMbox(FIXTURES), ...asMbox(FIXTURES)],
    );
    for (const { from } of entries) assert.match(from, /^From MAILER-DAEMON [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    await assert.rejects(stat(`${file}.lock`), { code: 'ENOENT' });
  });

  it('--stdout writes the same mboxrd on stdout', async () => {
    await dovecot.setMailbox('alice', FIXTURES);
    const run = succeeded(await fetchAsAlice(['--stdout']));
    assert.deepEqual(
      readMboxrd(run.stdout).map((entry) => entry.message),
      asMbox(FIXTURES),
    );
  });

  it('--stdout whose reader has gone (EPIPE, as in | head) ends quietly: exit 0, no stack trace', async () => {
    await dovecot.setMailbox('alice', [largeFixture(1024 * 1024).bytes, ...bulkMessages(3, 500)]);
    const child = spawnPopwire(['fetch', '--stdout', aliceUrl(), '--ca', caFile], { password: PASSWORD });
    child.stdout.destroy();
    const run = await finished(child);
    assert.deepEqual({ code: run.code, stderr: run.stderr }, { code: 0, stderr: '' });
  });

  it('--mbox --delete --messages: the chosen messages move from the server into the mbox', async () => {
    const mailbox = bulkMessages(5, 800);
    await dovecot.setMailbox('alice', mailbox);
    const file = freshPath('mbox');
    const summary = parseJson<Summary>(succeeded(await fetchAsAlice(['--mbox', file, '--delete', '--json', '--messages', '2,4'])));
    assert.equal(summary.deleted, 2);
    assert.deepEqual(
      readMboxrd(await readFile(file)).map((entry) => entry.message),
      asMbox([mailbox[1] as Buffer, mailbox[3] as Buffer]),
    );
    assert.deepEqual(await serverMessages(), asMbox([0, 2, 4].map((i) => mailbox[i] as Buffer)));
  });

  it('waits for another program\'s lock, then gives up clearly (exit 6) without touching the mbox', async () => {
    await dovecot.setMailbox('alice', bulkMessages(2, 500));
    const file = freshPath('mbox');
    // A lock of a live process (this test's) in liblockfile's format.
    await writeFile(`${file}.lock`, `${process.pid}\n`);
    const run = await fetchAsAlice(['--mbox', file, '--delete', '--lock-timeout', '300']);
    assert.equal(run.code, 6, run.stderr);
    const [waiting, gaveUp, ...rest] = run.stderr.split('\n');
    assert.equal(waiting, `popwire: ${file} is locked by another program (${file}.lock, held by pid ${process.pid}); waiting up to 300 ms`);
    assert.match(gaveUp ?? '', /^popwire: .* is locked by another program .*held by pid \d+.*gave up after 300 ms/);
    assert.deepEqual(rest, ['']);
    await assert.rejects(stat(file), { code: 'ENOENT' });
    assert.equal((await serverMessages()).length, 2);
  });

  it('Ctrl-C while waiting for the lock stops at once (130): nothing fetched, the other lock left alone', async () => {
    await dovecot.setMailbox('alice', bulkMessages(2, 500));
    const file = freshPath('mbox');
    await writeFile(`${file}.lock`, `${process.pid}\n`);
    const child = spawnPopwire(['fetch', '--mbox', file, '--delete', aliceUrl(), '--ca', caFile], { password: PASSWORD });
    const run = finished(child);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    await until(async () => stderr.includes('waiting up to 30000 ms'), 'popwire waits for the lock');
    child.kill('SIGINT');
    const result = await run;
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /waiting up to 30000 ms\npopwire: SIGINT: stopping\npopwire: Interrupted by SIGINT; nothing was fetched\n$/);
    assert.equal(await readFile(`${file}.lock`, 'utf8'), `${process.pid}\n`);
    assert.equal((await serverMessages()).length, 2);
  });

  it('breaks the lock of a holder that is gone (a dead pid on this host)', async () => {
    await dovecot.setMailbox('alice', bulkMessages(2, 500));
    const file = freshPath('mbox');
    await writeFile(`${file}.lock`, `${deadPid()}\n`);
    succeeded(await fetchAsAlice(['--mbox', file]));
    assert.equal(readMboxrd(await readFile(file)).length, 2);
    await assert.rejects(stat(`${file}.lock`), { code: 'ENOENT' });
  });

  it('refuses to append to a file that is not an mbox (exit 6)', async () => {
    await dovecot.setMailbox('alice', bulkMessages(1, 500));
    const file = freshPath('document');
    await writeFile(file, 'Dear diary,\n');
    failedWith(await fetchAsAlice(['--mbox', file]), 6, /is not an mbox/);
    assert.equal(await readFile(file, 'utf8'), 'Dear diary,\n');
  });
});

describe('fetch: usage errors, found before connecting', () => {
  const cases: ReadonlyArray<readonly [string, readonly string[], RegExp]> = [
    ['no destination', [], /exactly one destination/],
    ['two destinations', ['--maildir', 'x', '--stdout'], /exactly one destination/],
    ['--delete with --stdout', ['--stdout', '--delete'], /--delete cannot be used with --stdout/],
    ['--json with --stdout', ['--stdout', '--json'], /--json cannot be used with --stdout/],
    ['--lock-timeout without --mbox', ['--maildir', 'x', '--lock-timeout', '5'], /--lock-timeout is for --mbox only/],
    ['--messages garbage', ['--stdout', '--messages', '1,two'], /argument '1,two' is invalid/],
    ['--messages 0', ['--stdout', '--messages', '0-3'], /start at 1/],
  ];
  for (const [name, args, message] of cases) {
    it(`${name} is exit 2`, async () => {
      // An unreachable port: a usage error must come before any connection attempt.
      const run = await popwire(['fetch', ...args, 'pop3s://alice@127.0.0.1:1'], { password: PASSWORD });
      if (!args.includes('--json')) return failedWith(run, 2, message);
      // With --json the failure is JSON on stdout as well.
      assert.equal(run.code, 2);
      assert.match(run.stderr, message);
      assert.match(parseJson<{ error: { code: string; message: string } }>(run).error.message, message);
    });
  }
});

describe('fetch --delete when writing fails midway (a file size limit: EFBIG, like a full disk)', () => {
  // Messages 1 and 2 fit under the limit, message 3 does not; 4 and 5 come after it.
  const mailbox = [...bulkMessages(2, 2000), ...bulkMessages(1, 300_000), ...bulkMessages(2, 2000)];
  const limited = { shell: 'ulimit -f 100 && exec "$@"' }; // 100 KiB per file

  it('--maildir: the delivered messages are deleted (QUIT), every other one stays on the server', async () => {
    await dovecot.setMailbox('alice', mailbox);
    const dir = freshPath('maildir');
    const run = await fetchAsAlice(['--maildir', dir, '--delete'], limited);
    failedWith(run, 6, /Could not deliver message 3: .*EFBIG.*\(2 of 5 messages delivered, 2 deleted from the server\)/);
    assert.deepEqual(await maildirMessages(dir), served(mailbox.slice(0, 2)));
    assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'the partial message 3 was removed');
    assert.deepEqual(await serverMessages(), asMbox(mailbox.slice(2)));
  });

  it('--mbox: the mbox is cut back to whole messages; the undelivered stay on the server', async () => {
    await dovecot.setMailbox('alice', mailbox);
    const file = freshPath('mbox');
    const run = await fetchAsAlice(['--mbox', file, '--delete'], limited);
    failedWith(run, 6, /Could not deliver message 3: .*EFBIG.*\(2 of 5 messages delivered, 2 deleted from the server\)/);
    assert.deepEqual(
      readMboxrd(await readFile(file)).map((entry) => entry.message),
      asMbox(mailbox.slice(0, 2)),
    );
    await assert.rejects(stat(`${file}.lock`), { code: 'ENOENT' });
    assert.deepEqual(await serverMessages(), asMbox(mailbox.slice(2)));
  });
});

describe('fetch --delete interrupted by a signal', () => {
  const mailbox = bulkMessages(1500, 2000);
  const all = new Set(mailbox.map(messageId));

  for (const [signal, code, destination] of [
    ['SIGINT', 130, 'maildir'],
    ['SIGTERM', 143, 'mbox'],
  ] as const) {
    it(`${signal} (${destination}): stops after the message being written and QUITs; each message is delivered or on the server, never both, never neither`, async () => {
      await dovecot.setMailbox('alice', mailbox);
      const target = freshPath(destination);
      const child = spawnPopwire(['fetch', `--${destination}`, target, '--delete', aliceUrl(), '--ca', caFile], { password: PASSWORD });
      const run = finished(child);
      // Written so far, committed or not: a Maildir's new/ fills a batch at a time (group commit),
      // and by the time a batch lands there the rest of the mailbox may be written too.
      const countFiles = async (sub: string) => (await readdir(join(target, sub)).catch(() => [])).length;
      const writtenSoFar = async () =>
        destination === 'maildir'
          ? (await countFiles('tmp')) + (await countFiles('new'))
          : ((await readFile(target).catch(() => Buffer.alloc(0))).toString('latin1').match(/^From MAILER-DAEMON /gm) ?? []).length;
      await until(async () => (await writtenSoFar()) >= 20, 'some messages are written');
      child.kill(signal);
      const result = await run;
      assert.equal(result.code, code, result.stderr);
      assert.match(result.stderr, new RegExp(`^popwire: ${signal}: stopping after the message being written`));
      const reported = new RegExp(`popwire: Interrupted by ${signal}: (\\d+) of 1500 messages delivered, (\\d+) deleted from the server\\n$`).exec(result.stderr);
      assert.ok(reported !== null, result.stderr);
      assert.equal(reported[1], reported[2], 'every delivered message was deleted');

      const delivered =
        destination === 'maildir' ? await maildirMessages(target) : readMboxrd(await readFile(target)).map((entry) => entry.message);
      assert.equal(delivered.length, Number(reported[1]));
      assert.ok(delivered.length < mailbox.length, 'the signal came before the end');
      const byId = new Map(mailbox.map((message) => [messageId(message), message]));
      for (const message of delivered) {
        const original = byId.get(messageId(message)) as Buffer;
        assert.deepEqual(message, destination === 'maildir' ? expectedRetrBytes(original) : lfNormalized(expectedRetrBytes(original)));
      }
      if (destination === 'maildir') assert.deepEqual(await readdir(join(target, 'tmp')), []);
      const left = (await serverMessages()).map(messageId);
      const deliveredIds = delivered.map(messageId);
      assert.equal(new Set([...deliveredIds, ...left]).size, deliveredIds.length + left.length, 'none both delivered and left on the server');
      assert.deepEqual(new Set([...deliveredIds, ...left]), all, 'none lost');
    });
  }
});

describe('fetch --delete against a scripted server', () => {
  const message = (n: number) => Buffer.from(`Message-ID: <${n}@scripted>\r\nSubject: ${n}\r\n\r\nFrom the body of ${n}.\r\n.\r\n`);
  const messages = [1, 2, 3].map(message);
  const listing = `+OK\r\n${messages.map((m, i) => `${i + 1} ${m.length}\r\n`).join('')}.\r\n`;
  const retrReply = (n: number) => Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(messages[n - 1] as Buffer)]);

  async function withServer(script: Script, test: (url: string, received: string[]) => Promise<void>): Promise<void> {
    const server = await startScriptedServer(script);
    try {
      await test(`pop3://alice@127.0.0.1:${server.port}`, server.received);
    } finally {
      await server.close();
    }
  }

  const fetchFrom = (url: string, args: readonly string[]) =>
    spawnPopwire(['fetch', ...args, '--delete', '--allow-plaintext', '--timeout', '5000', url], { password: 'secret' });

  async function login(conn: ScriptedConnection): Promise<void> {
    await acceptLogin(conn, ['USER', 'UIDL', 'PIPELINING']);
    await conn.expect('LIST');
    conn.send(listing);
    // Pipelined: every RETR is on the wire before the first message is delivered.
    for (const n of [1, 2, 3]) await conn.expect(`RETR ${n}`);
    conn.send(retrReply(1));
    // The client delivered message 1 (fsynced) before it may say this.
    await conn.expect('DELE 1');
    conn.reply('+OK');
  }

  it('a connection dropped mid-message: exit 3, no QUIT, so the server deletes nothing; message 1 delivered', async () => {
    await withServer(
      async (conn) => {
        await login(conn);
        const second = retrReply(2);
        conn.send(second.subarray(0, second.length - 20));
        conn.socket.destroy();
      },
      async (url, received) => {
        const dir = freshPath('maildir');
        const run = await finished(fetchFrom(url, ['--maildir', dir]));
        failedWith(run, 3, /closed the connection.*\(1 of 3 messages delivered, none deleted: the session could not end with QUIT, so the server keeps every message\)/);
        assert.ok(!received.includes('QUIT'), received.join(', '));
        assert.deepEqual(await maildirMessages(dir), [messages[0]]);
        assert.deepEqual(await readdir(join(dir, 'tmp')), []);
      },
    );
  });

  it('a RETR answered -ERR is skipped; the rest are fetched and deleted, and the exit code (5) says so', async () => {
    await withServer(
      async (conn) => {
        await acceptLogin(conn, ['USER', 'UIDL', 'PIPELINING']);
        for (;;) {
          const [verb, arg] = (await conn.line()).split(' ');
          if (verb === 'LIST') conn.send(listing);
          else if (verb === 'RETR' && arg === '2') conn.reply('-ERR [SYS/PERM] message 2 is unreadable');
          else if (verb === 'RETR') conn.send(retrReply(Number(arg)));
          else if (verb === 'DELE') conn.reply('+OK');
          else if (verb === 'QUIT') {
            conn.reply('+OK bye');
            conn.socket.end();
            return;
          } else conn.reply('-ERR unexpected');
        }
      },
      async (url, received) => {
        const dir = freshPath('maildir');
        const run = await finished(fetchFrom(url, ['--maildir', dir]));
        failedWith(run, 5, /message 2 could not be retrieved \(RETR failed: message 2 is unreadable\); they stay on the server \(2 of 3 messages delivered, 2 deleted from the server\)/);
        assert.deepEqual(await maildirMessages(dir), [messages[0], messages[2]]);
        assert.deepEqual(
          received.filter((line) => line.startsWith('DELE') || line === 'QUIT'),
          ['DELE 1', 'DELE 3', 'QUIT'],
        );
      },
    );
  });

  for (const destination of ['maildir', 'mbox'] as const) {
    it(`a second SIGINT mid-message (${destination}) exits at once (130): no QUIT, the partial message removed`, async () => {
      await withServer(
        async (conn) => {
          await login(conn);
          // Half of message 2, then nothing: the client is mid-delivery and stays there.
          const second = retrReply(2);
          conn.send(second.subarray(0, 30));
          await conn.closed().catch(() => {});
        },
        async (url, received) => {
          const target = freshPath(destination);
          const child = fetchFrom(url, [`--${destination}`, target]);
          const run = finished(child);
          let stderr = '';
          child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
          // Message 1 is committed (DELE 1 answered, then half of message 2 sent). What there is of
          // message 2 is held in memory (a small message is gathered, or read whole, before any of
          // it reaches the disk), so no file shows it: the promise is that none ever does.
          const firstCommitted = async () =>
            received.includes('DELE 1') &&
            (destination === 'maildir'
              ? (await readdir(join(target, 'new')).catch(() => [])).length === 1
              : (await readFile(target, 'latin1').catch(() => '')).includes('<1@scripted>'));
          await until(firstCommitted, 'message 1 is committed and message 2 under way');
          child.kill('SIGINT');
          await until(async () => stderr.includes('stopping after the message being written'), 'the first signal is acknowledged');
          child.kill('SIGINT');
          const result = await run;
          assert.equal(result.code, 130, result.stderr);
          assert.ok(!received.includes('QUIT'), received.join(', '));
          if (destination === 'maildir') {
            assert.deepEqual(await readdir(join(target, 'tmp')), []);
            assert.deepEqual(await maildirMessages(target), [messages[0]]);
          } else {
            assert.deepEqual(
              readMboxrd(await readFile(target)).map((entry) => entry.message),
              [lfNormalized(messages[0] as Buffer)],
            );
            await assert.rejects(stat(`${target}.lock`), { code: 'ENOENT' });
          }
        },
      );
    });
  }
});

describe('fetch: memory and the terminal', () => {
  it('fetch --mbox of a 100 MB message keeps the peak RSS within 64 MB of a small fetch', async () => {
    const preload = join(scratch, 'report-max-rss.cjs');
    // VmHWM, not resourceUsage().maxRSS: a child's maxRSS starts at its parent's RSS at fork (Linux
    // keeps the pre-exec high-water mark), and this test process holds the 100 MB fixture.
    await writeFile(
      preload,
      "process.on('exit', () => { const fs = require('fs'); fs.writeFileSync(process.env.RSS_FILE, /VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]); });\n",
    );
    const peakRss = async (messages: Buffer[]): Promise<number> => {
      await dovecot.setMailbox('alice', messages);
      const rssFile = freshPath('rss');
      const file = freshPath('mbox');
      succeeded(await fetchAsAlice(['--mbox', file], { env: { NODE_OPTIONS: `--require ${preload}`, RSS_FILE: rssFile } }));
      assert.ok((await stat(file)).size > messages.reduce((sum, m) => sum + m.length, 0) * 0.9);
      return Number(await readFile(rssFile, 'utf8')) * 1024;
    };
    const small = await peakRss(bulkMessages(1, 2000));
    const large = await peakRss([largeFixture(100 * 1024 * 1024).bytes]);
    assert.ok(large - small < 64 * 1024 * 1024, `peak RSS ${Math.round(small / 2 ** 20)} MiB for a small message, ${Math.round(large / 2 ** 20)} MiB for 100 MB`);
  });

  it('on a terminal, stderr shows a progress bar with messages, octets, rate and ETA', async () => {
    await dovecot.setMailbox('alice', bulkMessages(3, 1000));
    const dir = freshPath('maildir');
    const quote = (arg: string) => `'${arg.replace(/'/g, "'\\''")}'`;
    const command = [process.execPath, BIN, 'fetch', '--maildir', dir, aliceUrl(), '--ca', caFile].map(quote).join(' ');
    // script(1) runs the command on a pseudo-terminal and copies what it shows to stdout.
    const run = await finished(
      spawnPopwire([], { password: PASSWORD, shell: `exec script -qec ${quote(command)} /dev/null` }),
    );
    assert.equal(run.code, 0, run.stderr);
    const screen = run.stdout.toString('utf8').replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '');
    assert.match(screen, /100% \| 3\/3 messages \| [\d.]+ [KM]?i?B\/[\d.]+ [KM]?i?B \| ([\d.]+ [KMG]?i?B\/s|-) \| ETA 0s/);
    assert.equal((await maildirMessages(dir)).length, 3);
  });
});

describe('fetch: a destination that cannot be used', () => {
  it('is exit 6 before connecting, and the server keeps everything', async () => {
    await dovecot.setMailbox('alice', bulkMessages(2, 500));
    const file = freshPath('file');
    await writeFile(file, '');
    failedWith(await fetchAsAlice(['--maildir', join(file, 'Maildir'), '--delete']), 6, /Cannot deliver to the Maildir .*ENOTDIR/);
    failedWith(await fetchAsAlice(['--mbox', join(scratch, 'no-such-dir', 'mbox'), '--delete']), 6, /Cannot deliver to the mbox .*ENOENT/);
    assert.equal((await serverMessages()).length, 2);
  });
});
