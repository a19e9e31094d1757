/**
 * mbox delivery: appended in mboxrd form under FILE.lock, whole messages only (a failed message
 * is cut off again), never appended to something that is not an mbox, memory flat on a 100 MB
 * message.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DeliveryError } from '../../src/delivery/delivery.ts';
import { LockBusyError } from '../../src/delivery/dotlock.ts';
import { mboxOnStream, openMbox } from '../../src/delivery/mbox.ts';
import { writeAllSync } from '../../src/delivery/write.ts';
import { lfNormalized, readMboxrd } from './mboxrd-reader.ts';

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'popwire-mbox-test-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

let files = 0;
const freshMbox = () => join(scratch, `mbox${++files}`);
const exists = (path: string) => stat(path).then(() => true, () => false);
const WHEN = new Date(Date.UTC(2025, 10, 25, 10, 0, 0));
const open = (path: string, lockTimeoutMs = 1000) => openMbox(path, { lockTimeoutMs, now: () => WHEN });

/** V8's gc(), without starting node with --expose-gc. */
const collectGarbage = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function body(message: Buffer, chunkSize = 5): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < message.length; i += chunkSize) chunks.push(message.subarray(i, i + chunkSize));
  return Readable.from(chunks, { objectMode: false });
}

const MESSAGES = [
  Buffer.from('From: a@example.test\r\nSubject: one\r\n\r\nFrom the start of a line.\r\n>From quoted.\r\n'),
  Buffer.from('Subject: two\r\n\r\nno final newline'),
  Buffer.from('Subject: three\r\n\r\n8-bit \xe9\xff, a bare CR\r in a line\r\n', 'latin1'),
];

describe('openMbox', () => {
  it('appends each message in mboxrd form: reading it back gives the messages with LF endings', async () => {
    const path = freshMbox();
    const mbox = await open(path);
    for (const [index, message] of MESSAGES.entries()) await mbox.deliver(index + 1, body(message));
    await mbox.commit();
    await mbox.close();
    const entries = readMboxrd(await readFile(path));
    assert.deepEqual(
      entries.map((entry) => entry.message),
      MESSAGES.map(lfNormalized),
    );
    assert.deepEqual(
      entries.map((entry) => entry.from),
      MESSAGES.map(() => 'From MAILER-DAEMON Tue Nov 25 10:00:00 2025'),
    );
  });

  it('appends to an existing mbox, adding the blank line it lacks before the next "From "', async () => {
    for (const ending of ['\n\n', '\n', '']) {
      const path = freshMbox();
      await writeFile(path, `From someone Mon Jan  1 00:00:00 2024\nSubject: old\n\nold body${ending}`);
      const mbox = await open(path);
      await mbox.deliver(1, body(MESSAGES[0] as Buffer));
      await mbox.commit();
      await mbox.close();
      const entries = readMboxrd(await readFile(path));
      assert.deepEqual(
        entries.map((entry) => entry.message.toString('latin1')),
        ['Subject: old\n\nold body\n', lfNormalized(MESSAGES[0] as Buffer).toString('latin1')],
        `existing mbox ending in ${JSON.stringify(ending)}`,
      );
    }
  });

  it('refuses a file that is not an mbox, and a directory, and leaves them untouched', async () => {
    const document = freshMbox();
    await writeFile(document, 'Dear diary,\n');
    await assert.rejects(open(document), (error: unknown) => error instanceof DeliveryError && /not an mbox/.test(error.message));
    assert.equal(await readFile(document, 'utf8'), 'Dear diary,\n');
    assert.equal(await exists(`${document}.lock`), false);
    const dir = freshMbox();
    await mkdir(dir);
    await assert.rejects(open(dir), /not a regular file/);
  });

  it('a message that fails midway is cut off again: the mbox holds only whole messages', async () => {
    const path = freshMbox();
    const mbox = await open(path);
    await mbox.deliver(1, body(MESSAGES[0] as Buffer));
    const sizeBefore = (await stat(path)).size;
    const failing = new PassThrough();
    failing.write('Subject: cut short\r\n\r\nFrom here');
    setTimeout(() => failing.destroy(new Error('connection lost')), 20);
    await assert.rejects(mbox.deliver(2, failing), /connection lost/);
    assert.equal((await stat(path)).size, sizeBefore);
    await mbox.deliver(3, body(MESSAGES[2] as Buffer));
    await mbox.commit();
    await mbox.close();
    assert.deepEqual(
      readMboxrd(await readFile(path)).map((entry) => entry.message),
      [MESSAGES[0], MESSAGES[2]].map((message) => lfNormalized(message as Buffer)),
    );
  });

  it('a commit fdatasyncs once for every message written since the last, and a close removes what no commit covered', async () => {
    const path = freshMbox();
    let syncs = 0;
    const counted = (handle: FileHandle) => {
      syncs += 1;
      return handle.datasync();
    };
    const mbox = await openMbox(path, { lockTimeoutMs: 1000, now: () => WHEN, fsync: counted });
    for (const [index, message] of MESSAGES.entries()) await mbox.deliver(index + 1, body(message));
    await mbox.commit();
    assert.equal(syncs, 1);
    await mbox.commit();
    assert.equal(syncs, 1, 'nothing new: no fsync');
    const committed = (await stat(path)).size;
    await mbox.deliver(4, body(MESSAGES[0] as Buffer));
    await mbox.close();
    assert.equal((await stat(path)).size, committed);
    assert.equal(readMboxrd(await readFile(path)).length, MESSAGES.length);
  });

  it('a failed fdatasync cuts the mbox back to the last commit and refuses every later message', async () => {
    const path = freshMbox();
    let syncs = 0;
    const failOnSecond = (handle: FileHandle) => {
      syncs += 1;
      return syncs === 2 ? Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })) : handle.datasync();
    };
    const mbox = await openMbox(path, { lockTimeoutMs: 1000, now: () => WHEN, fsync: failOnSecond });
    await mbox.deliver(1, body(MESSAGES[0] as Buffer));
    await mbox.commit();
    const committed = (await stat(path)).size;
    await mbox.deliver(2, body(MESSAGES[1] as Buffer));
    await mbox.deliver(3, body(MESSAGES[2] as Buffer));
    await assert.rejects(mbox.commit(), { code: 'EIO' });
    assert.equal((await stat(path)).size, committed);
    await assert.rejects(mbox.deliver(4, body(MESSAGES[0] as Buffer)), { code: 'EIO' });
    await assert.rejects(mbox.commit(), { code: 'EIO' });
    await mbox.close();
    assert.deepEqual(readMboxrd(await readFile(path)).map((entry) => entry.message), [lfNormalized(MESSAGES[0] as Buffer)]);
  });

  it('a write that fails refuses the commit after it: no message gathered before it counts as delivered, and the file ends where that write began', async () => {
    const path = freshMbox();
    let failing = false;
    const mbox = await openMbox(path, {
      lockTimeoutMs: 1000,
      now: () => WHEN,
      write: (fd, data) => {
        if (failing) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        writeAllSync(fd, data);
      },
    });
    await mbox.deliver(1, body(MESSAGES[0] as Buffer));
    await mbox.commit();
    const committed = (await stat(path)).size;
    failing = true;
    // Message 2 is only gathered: its deliver resolves. Message 3 is large enough to make the write.
    await mbox.deliver(2, body(MESSAGES[1] as Buffer));
    await assert.rejects(mbox.deliver(3, body(Buffer.alloc(2 * 1024 * 1024, 'a'), 64 * 1024)), { code: 'ENOSPC' });
    await assert.rejects(mbox.commit(), { code: 'ENOSPC' });
    await assert.rejects(mbox.deliver(4, body(MESSAGES[0] as Buffer)), { code: 'ENOSPC' });
    await mbox.close();
    assert.equal((await stat(path)).size, committed);
    assert.deepEqual(readMboxrd(await readFile(path)).map((entry) => entry.message), [lfNormalized(MESSAGES[0] as Buffer)]);
  });

  it('a write that fails within one message cuts off that message only: the whole messages gathered before it are written and committed', async () => {
    const path = freshMbox();
    const large = Buffer.concat([Buffer.from('Subject: too large\r\n\r\n'), Buffer.alloc(300 * 1024, 'b'), Buffer.from('\r\n')]);
    const mbox = await openMbox(path, {
      lockTimeoutMs: 1000,
      now: () => WHEN,
      // A file size limit: the large message's octets reach the file only in part.
      write: (fd, data) => {
        const at = data.indexOf('too large');
        if (at === -1) return writeAllSync(fd, data);
        writeAllSync(fd, data.subarray(0, at + 2000));
        throw Object.assign(new Error('EFBIG: file too large, write'), { code: 'EFBIG' });
      },
    });
    await mbox.deliver(1, body(MESSAGES[0] as Buffer));
    await mbox.deliver(2, body(MESSAGES[1] as Buffer));
    await assert.rejects(mbox.deliver(3, body(large, 16 * 1024)), { code: 'EFBIG' });
    await mbox.commit();
    await mbox.close();
    assert.deepEqual(readMboxrd(await readFile(path)).map((entry) => entry.message), [MESSAGES[0], MESSAGES[1]].map((m) => lfNormalized(m as Buffer)));
  });

  it('holds FILE.lock from open to close; a second opener waits, then gives up clearly', async () => {
    const path = freshMbox();
    const mbox = await open(path);
    assert.ok(await exists(`${path}.lock`));
    await assert.rejects(open(path, 200), (error: unknown) => {
      assert.ok(error instanceof LockBusyError);
      assert.match(error.message, new RegExp(`is locked by another program .*held by pid ${process.pid}`));
      return true;
    });
    const waiting = open(path, 5000);
    await delay(100);
    await mbox.close();
    const second = await waiting;
    await second.deliver(1, body(MESSAGES[0] as Buffer));
    await second.close();
    assert.equal(await exists(`${path}.lock`), false);
  });

  it('abandon() cuts off the message being written and removes the lock', async () => {
    const path = freshMbox();
    const mbox = await open(path);
    await mbox.deliver(1, body(MESSAGES[0] as Buffer));
    await mbox.commit();
    const sizeBefore = (await stat(path)).size;
    const endless = new PassThrough();
    const delivering = mbox.deliver(2, endless);
    endless.write('Subject: never ends\r\n\r\n');
    // Octets are gathered before they are written: enough of them to reach the file.
    const line = Buffer.alloc(1000, 'x');
    while ((await stat(path)).size === sizeBefore) {
      for (let i = 0; i < 100; i++) endless.write(line);
      await delay(5);
    }
    mbox.abandon();
    assert.equal((await stat(path)).size, sizeBefore);
    assert.equal(await exists(`${path}.lock`), false);
    endless.destroy(new Error('the process would have exited'));
    await assert.rejects(delivering);
  });

  it('streams a 100 MB message with flat memory: it is never held whole', async () => {
    const path = freshMbox();
    const mbox = await open(path);
    // 100 MiB in 64 KiB chunks of CRLF lines, half of which must be quoted.
    const lines = Buffer.from('From quoted\r\n>From quoted\r\nplain text line\r\n\r\n');
    const chunk = Buffer.alloc(64 * 1024);
    for (let offset = 0; offset < chunk.length; offset += lines.length) lines.copy(chunk, offset);
    const chunks = (100 * 1024 * 1024) / chunk.length;
    // Live memory, measured after a full collection: garbage is not what this test is about.
    const live = () => {
      collectGarbage();
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const baseline = live();
    let peak = baseline;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < chunks; i++) {
          if (i % 64 === 0) peak = Math.max(peak, live());
          yield Buffer.from(chunk);
        }
      })(),
      { objectMode: false },
    );
    await mbox.deliver(1, source);
    await mbox.commit();
    await mbox.close();
    const growth = peak - baseline;
    assert.ok(growth < 16 * 1024 * 1024, `live memory grew by ${Math.round(growth / 1024 / 1024)} MiB`);
    assert.ok((await stat(path)).size > 90 * 1024 * 1024);
  });
});

describe('mboxOnStream', () => {
  it('writes the same mboxrd form to a stream it neither locks nor ends', async () => {
    const written: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written.push(chunk);
        done();
      },
    });
    const delivery = mboxOnStream(out, { now: () => WHEN });
    assert.equal(delivery.durable, false);
    for (const [index, message] of MESSAGES.entries()) await delivery.deliver(index + 1, body(message));
    await delivery.close();
    assert.equal(out.writableEnded, false);
    assert.deepEqual(
      readMboxrd(Buffer.concat(written)).map((entry) => entry.message),
      MESSAGES.map(lfNormalized),
    );
  });
});
