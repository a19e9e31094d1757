/**
 * Maildir delivery: whole messages land in new/ with their exact bytes under unique names, and
 * nothing, not even a failed delivery, is left in tmp/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fstatSync, fsyncSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DeliveryError } from '../../src/delivery/delivery.ts';
import { openMaildir, uniqueName } from '../../src/delivery/maildir.ts';

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'popwire-maildir-test-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

let dirs = 0;
const freshDir = () => join(scratch, `m${++dirs}`);

/** A body in several chunks, as a socket would deliver it. */
function body(message: Buffer, chunkSize = 7): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < message.length; i += chunkSize) chunks.push(message.subarray(i, i + chunkSize));
  return Readable.from(chunks, { objectMode: false });
}

const MESSAGES = [
  Buffer.from('Subject: one\r\n\r\nFrom here on, CRLF stays CRLF.\r\n.\r\n'),
  Buffer.from('Subject: two\n\nbare LF, a bare CR\r, 8-bit \xe9\xff\x00\r\n', 'latin1'),
  Buffer.from('no final newline'),
  Buffer.alloc(0),
];

describe('openMaildir', () => {
  it('creates DIR/tmp, DIR/new and DIR/cur, parents included', async () => {
    const dir = join(freshDir(), 'deep', 'Maildir');
    const maildir = await openMaildir(dir);
    await maildir.close();
    for (const sub of ['tmp', 'new', 'cur']) assert.ok((await stat(join(dir, sub))).isDirectory(), sub);
  });

  it('delivers each message into new/ with its exact bytes, and leaves tmp/ empty', async () => {
    const dir = freshDir();
    const maildir = await openMaildir(dir);
    for (const [index, message] of MESSAGES.entries()) await maildir.deliver(index + 1, body(message));
    await maildir.commit();
    await maildir.close();
    const names = (await readdir(join(dir, 'new'))).sort();
    assert.equal(names.length, MESSAGES.length);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(await readdir(join(dir, 'cur')), []);
    const stored = await Promise.all(names.map((name) => readFile(join(dir, 'new', name))));
    // Maildir promises no order among names (a microsecond field is not zero-padded, a second
    // may tick in between): compare the sets of messages. This once failed in CI by sorting names.
    assert.deepEqual([...stored].sort(Buffer.compare), [...MESSAGES].sort(Buffer.compare));
  });

  it('a message larger than what is read whole streams into its file and is fsynced, like the others, before any rename', async () => {
    const dir = freshDir();
    const large = Buffer.alloc(600 * 1024);
    for (let i = 0; i < large.length; i++) large[i] = (i * 7) & 0xff;
    const sizes: string[] = [];
    const maildir = await openMaildir(dir, {
      fsync: async (fd) => {
        fsyncSync(fd);
        const info = fstatSync(fd);
        sizes.push(info.isDirectory() ? `new/ with ${(await readdir(join(dir, 'new'))).length}` : String(info.size));
      },
    });
    await maildir.deliver(1, body(MESSAGES[0] as Buffer));
    await maildir.deliver(2, body(large, 16 * 1024));
    await maildir.deliver(3, body(MESSAGES[1] as Buffer));
    await maildir.commit();
    await maildir.close();
    assert.deepEqual(sizes.slice(0, 3).sort(), [MESSAGES[0], large, MESSAGES[1]].map((m) => String((m as Buffer).length)).sort());
    assert.deepEqual(sizes.slice(3), ['new/ with 3']);
    const names = await readdir(join(dir, 'new'));
    const stored = await Promise.all(names.map((name) => readFile(join(dir, 'new', name))));
    assert.ok(stored.some((bytes) => bytes.equals(large)));
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  it('a file that cannot be created fails the commit that covers it: none of that batch reaches new/, and later messages are refused', async () => {
    const dir = freshDir();
    const maildir = await openMaildir(dir);
    await maildir.deliver(1, body(MESSAGES[0] as Buffer));
    await maildir.commit();
    await rm(join(dir, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'tmp'), 'not a directory');
    // Read whole, so its file is created beside the next reads: the failure comes with the commit.
    await maildir.deliver(2, body(MESSAGES[1] as Buffer));
    await maildir.deliver(3, body(MESSAGES[2] as Buffer));
    await assert.rejects(maildir.commit(), { code: 'ENOTDIR' });
    await assert.rejects(maildir.deliver(4, body(MESSAGES[0] as Buffer)), { code: 'ENOTDIR' });
    await maildir.close();
    assert.equal((await readdir(join(dir, 'new'))).length, 1);
  });

  it('a write that fails midway (a full disk) removes its file and fails the commit: nothing of that batch in tmp/ or new/', async (t) => {
    // A 64 KB tmpfs: its first message fits, the next two (read whole, 100 KB each) cannot.
    const mountPoint = await mkdtemp(join(tmpdir(), 'popwire-maildir-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint], { stdio: 'ignore' });
    } catch {
      await rm(mountPoint, { recursive: true, force: true });
      t.skip('cannot mount a small tmpfs here (needs root)');
      return;
    }
    try {
      const dir = join(mountPoint, 'Maildir');
      const maildir = await openMaildir(dir, { flushFilesystem: null });
      await maildir.deliver(1, body(MESSAGES[0] as Buffer));
      await maildir.commit();
      const large = Buffer.alloc(100 * 1024, 0x61);
      await maildir.deliver(2, body(large, 16 * 1024));
      await maildir.deliver(3, body(large, 16 * 1024));
      await assert.rejects(maildir.commit(), { code: 'ENOSPC' });
      await maildir.close();
      assert.deepEqual(await readdir(join(dir, 'tmp')), []);
      const kept = await readdir(join(dir, 'new'));
      assert.equal(kept.length, 1);
      assert.deepEqual(await readFile(join(dir, 'new', kept[0] as string)), MESSAGES[0]);
    } finally {
      // Lazy: a descriptor a failed assertion left open does not keep it mounted.
      execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
      await rm(mountPoint, { recursive: true, force: true });
    }
  });

  it('names each file <time>.M<usec>P<pid>Q<n>R<random>.<host>,S=<size>, each name unique', async () => {
    const dir = freshDir();
    const maildir = await openMaildir(dir);
    const message = Buffer.from('Subject: same\r\n\r\nsame bytes every time\r\n');
    for (let n = 1; n <= 300; n++) await maildir.deliver(n, body(message, 1024));
    await maildir.commit();
    await maildir.close();
    const names = await readdir(join(dir, 'new'));
    assert.equal(new Set(names).size, 300);
    const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054');
    for (const name of names) {
      const match = /^(\d+)\.M(\d+)P(\d+)Q(\d+)R([0-9a-f]{8})\.(.+),S=(\d+)$/.exec(name);
      assert.ok(match !== null, name);
      assert.equal(Number(match[3]), process.pid);
      assert.equal(match[6], host);
      assert.equal(Number(match[7]), message.length);
      assert.ok(Math.abs(Number(match[1]) - Date.now() / 1000) < 60);
    }
    assert.notEqual(uniqueName(), uniqueName());
  });

  it('gives each name 32 random bits of its own, past the 1,024 names one draw of random octets serves', () => {
    const randoms = Array.from({ length: 3000 }, () => /R([0-9a-f]{8})\./.exec(uniqueName())?.[1]);
    assert.ok(randoms.every((random) => random !== undefined));
    // 3,000 draws of 32 bits: a repeat or two is possible (about 1 in 1,000 runs), ten are not.
    assert.ok(new Set(randoms).size > 2990, `${new Set(randoms).size} distinct`);
  });

  it('a body that fails midway (the connection dropped) leaves nothing in tmp/ or new/', async () => {
    const dir = freshDir();
    const maildir = await openMaildir(dir);
    const failing = new PassThrough();
    failing.write('Subject: cut short\r\n');
    setImmediate(() => failing.destroy(new Error('connection lost')));
    await assert.rejects(maildir.deliver(1, failing), /connection lost/);
    await maildir.close();
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(await readdir(join(dir, 'new')), []);
  });

  it('a commit whose rename fails (new/ replaced by a file) rejects and leaves tmp/ empty', async () => {
    const dir = freshDir();
    const maildir = await openMaildir(dir);
    await maildir.deliver(1, body(MESSAGES[0] as Buffer));
    await maildir.commit();
    await rename(join(dir, 'new'), join(dir, 'new.moved'));
    await writeFile(join(dir, 'new'), 'not a directory');
    await maildir.deliver(2, body(MESSAGES[1] as Buffer));
    await assert.rejects(maildir.commit(), { code: 'ENOTDIR' });
    await assert.rejects(maildir.deliver(3, body(MESSAGES[2] as Buffer)), { code: 'ENOTDIR' });
    await maildir.close();
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.equal((await readdir(join(dir, 'new.moved'))).length, 1);
  });

  it('a message stays out of new/ until a commit, which waits for each file\'s fsync before its rename and fsyncs new/ once after them', async () => {
    const dir = freshDir();
    const order: string[] = [];
    const maildir = await openMaildir(dir, {
      fsync: async (fd) => {
        fsyncSync(fd);
        const isDir = fstatSync(fd).isDirectory();
        order.push(isDir ? `new/ with ${(await readdir(join(dir, 'new'))).length}` : `file, new/ with ${(await readdir(join(dir, 'new'))).length}`);
      },
    });
    for (const [index, message] of MESSAGES.entries()) await maildir.deliver(index + 1, body(message));
    assert.deepEqual(await readdir(join(dir, 'new')), []);
    await maildir.commit();
    assert.deepEqual(order, [...MESSAGES.map(() => 'file, new/ with 0'), `new/ with ${MESSAGES.length}`]);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    await maildir.close();
  });

  it('a close before a commit removes the messages no commit covered', async () => {
    const dir = freshDir();
    const maildir = await openMaildir(dir);
    await maildir.deliver(1, body(MESSAGES[0] as Buffer));
    await maildir.commit();
    await maildir.deliver(2, body(MESSAGES[1] as Buffer));
    await maildir.close();
    assert.equal((await readdir(join(dir, 'new'))).length, 1);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  it('a failed fsync removes the batch it covered from tmp/ and new/, and refuses every later message', async () => {
    const dir = freshDir();
    let syncs = 0;
    const maildir = await openMaildir(dir, {
      fsync: (fd) => {
        syncs += 1;
        return syncs === 4 ? Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })) : Promise.resolve(fsyncSync(fd));
      },
    });
    await maildir.deliver(1, body(MESSAGES[0] as Buffer));
    await maildir.commit();
    for (const n of [2, 3, 4]) await maildir.deliver(n, body(MESSAGES[n - 1] as Buffer));
    // Syncs 3 to 5 are the three files; the fourth fails.
    await assert.rejects(maildir.commit(), { code: 'EIO' });
    await assert.rejects(maildir.deliver(5, body(MESSAGES[0] as Buffer)), { code: 'EIO' });
    await maildir.close();
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(await readFile(join(dir, 'new', (await readdir(join(dir, 'new')))[0] as string)), MESSAGES[0]);
    assert.equal((await readdir(join(dir, 'new'))).length, 1);
  });

  it('abandon() removes the message being written from tmp/', async () => {
    const dir = freshDir();
    const maildir = await openMaildir(dir);
    const endless = new PassThrough();
    endless.write('Subject: never ends\r\n');
    const delivering = maildir.deliver(1, endless);
    // A small message is read whole before its file is created: a large one streams into it.
    const line = Buffer.alloc(1000, 'x');
    while ((await readdir(join(dir, 'tmp'))).length === 0) {
      for (let i = 0; i < 100; i++) endless.write(line);
      await delay(5);
    }
    maildir.abandon();
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    endless.destroy(new Error('the process would have exited'));
    await assert.rejects(delivering);
    await maildir.close();
  });

  describe('a commit of many messages, through a filesystem flush (syncfs)', () => {
    const COUNT = 40;
    const many = Array.from({ length: COUNT }, (_, i) => Buffer.from(`Subject: ${i}\r\n\r\n${'x'.repeat(i * 37)}\r\n`));

    /** What new/ and tmp/ hold, as `new/ N, tmp/ M whole`: whole = a file whose size is one of the messages'. */
    async function snapshot(dir: string): Promise<string> {
      const tmp = await readdir(join(dir, 'tmp'));
      const sizes = new Set(many.map((m) => m.length));
      let whole = 0;
      for (const name of tmp) if (sizes.has((await stat(join(dir, 'tmp', name))).size)) whole += 1;
      return `new/ ${(await readdir(join(dir, 'new'))).length}, tmp/ ${tmp.length}, ${whole} whole`;
    }

    it('flushes once after every file is written whole and before any rename, then fsyncs new/, with no fsync per file', async () => {
      const dir = freshDir();
      const order: string[] = [];
      const maildir = await openMaildir(dir, {
        fsync: async (fd) => {
          fsyncSync(fd);
          order.push(`${fstatSync(fd).isDirectory() ? 'fsync new/' : 'fsync file'}: ${await snapshot(dir)}`);
        },
        flushFilesystem: {
          flush: async () => {
            order.push(`flush: ${await snapshot(dir)}`);
            return true;
          },
          stop: () => {},
        },
      });
      for (const [index, message] of many.entries()) await maildir.deliver(index + 1, body(message));
      await maildir.commit();
      await maildir.close();
      assert.deepEqual(order, [`flush: new/ 0, tmp/ ${COUNT}, ${COUNT} whole`, `fsync new/: new/ ${COUNT}, tmp/ 0, 0 whole`]);
      const stored = await Promise.all((await readdir(join(dir, 'new'))).map((name) => readFile(join(dir, 'new', name))));
      assert.deepEqual(stored.sort(Buffer.compare), [...many].sort(Buffer.compare));
    });

    it('fsyncs each file before any rename when the flush cannot be had, and does not ask for it again', async () => {
      const dir = freshDir();
      const order: string[] = [];
      let flushes = 0;
      const maildir = await openMaildir(dir, {
        fsync: async (fd) => {
          fsyncSync(fd);
          order.push(fstatSync(fd).isDirectory() ? `new/ with ${(await readdir(join(dir, 'new'))).length}` : `file, new/ with ${(await readdir(join(dir, 'new'))).length}`);
        },
        flushFilesystem: { flush: async () => ((flushes += 1), false), stop: () => {} },
      });
      for (const [index, message] of many.entries()) await maildir.deliver(index + 1, body(message));
      await maildir.commit();
      assert.deepEqual(order, [...many.map(() => 'file, new/ with 0'), `new/ with ${COUNT}`]);
      assert.equal(flushes, 1);
      // A flush that could not be had is not asked for again; nor for three files.
      order.length = 0;
      for (const [index, message] of many.entries()) await maildir.deliver(COUNT + index + 1, body(message));
      await maildir.commit();
      assert.equal(flushes, 1);
      assert.equal(order.filter((entry) => entry.startsWith('file')).length, COUNT);
      await maildir.close();
    });

    it('a failed flush fails the commit: none of its batch reaches new/, tmp/ is emptied, and later messages are refused', async () => {
      const dir = freshDir();
      const maildir = await openMaildir(dir, {
        flushFilesystem: {
          flush: () => Promise.reject(new DeliveryError('syncfs of the filesystem failed (sync -f: failed 1)')),
          stop: () => {},
        },
      });
      await maildir.deliver(1, body(MESSAGES[0] as Buffer));
      await maildir.commit();
      for (const [index, message] of many.entries()) await maildir.deliver(index + 2, body(message));
      await assert.rejects(maildir.commit(), /syncfs of the filesystem failed/);
      await assert.rejects(maildir.deliver(99, body(MESSAGES[0] as Buffer)), /syncfs of the filesystem failed/);
      await maildir.close();
      assert.equal((await readdir(join(dir, 'new'))).length, 1);
      assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    });
  });

  it('refuses a directory whose new/ is a file: that is not a Maildir', async () => {
    const dir = freshDir();
    await mkdir(dir);
    await writeFile(join(dir, 'new'), '');
    await assert.rejects(openMaildir(dir), (error: unknown) => error instanceof DeliveryError && /not a Maildir/.test(error.message));
  });
});
