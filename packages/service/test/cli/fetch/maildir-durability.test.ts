/**
 * transfer() from a real Dovecot into a real Maildir whose batches are made durable by syncfs (the
 * real `sync -f` helper), recorded: each batch is flushed with none of it in new/ yet, renamed,
 * new/ fsynced, and only then deleted; no file in new/ is ever partial. A flush that fails leaves
 * its batch on the server and out of the Maildir. See docs/architecture.md, "Fetch: group commit".
 */
import assert from 'node:assert/strict';
import { fstatSync, fsyncSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../../support/fixtures.ts';
import { finish } from '../../../src/cli/fetch/outcome.ts';
import { transfer, type TransferResult } from '../../../src/cli/fetch/transfer.ts';
import { DeliveryError, type Delivery } from '../../../src/delivery/delivery.ts';
import { syncfsHelper, type FilesystemFlush } from '../../../src/delivery/filesystem-flush.ts';
import { openMaildir } from '../../../src/delivery/maildir.ts';
import { connectAsAlice, watchDeletes } from './watched-session.ts';

const MESSAGES = bulkMessages(80, 3000);

let dovecot: Dovecot;
let scratch: string;
before(async () => {
  dovecot = await startDovecot();
  scratch = await mkdtemp(join(tmpdir(), 'popwire-maildir-durability-test-'));
});
after(async () => {
  await dovecot?.stop();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

let dirs = 0;
const freshDir = () => join(scratch, `maildir-${++dirs}`);

type Event =
  | { readonly kind: 'written' | 'dele'; readonly n: number }
  | { readonly kind: 'flush' | 'fsync new/' | 'fsync file'; readonly inNew: number };

/**
 * The files in new/, each checked to be whole (its size is the S= of its name): a reader must
 * never see a partial message there.
 */
async function wholeFilesInNew(dir: string): Promise<number> {
  const names = await readdir(join(dir, 'new'));
  for (const name of names) {
    const size = (await stat(join(dir, 'new', name))).size;
    assert.equal(size, Number(/,S=(\d+)$/.exec(name)?.[1]), `${name} in new/ is not whole`);
  }
  return names.length;
}

/** The real syncfs helper, recording each flush that succeeded and what new/ held then; `fail` fails the chosen one. */
function recordingFlush(events: Event[], dir: string, fail?: (count: number) => boolean): FilesystemFlush {
  const real = syncfsHelper(dir);
  let count = 0;
  return {
    flush: async () => {
      count += 1;
      if (fail?.(count) === true) throw new DeliveryError('syncfs of the filesystem failed (sync -f: failed 1)');
      const flushed = await real.flush();
      assert.ok(flushed, 'sync -f runs here');
      events.push({ kind: 'flush', inNew: await wholeFilesInNew(dir) });
      return flushed;
    },
    stop: () => real.stop(),
  };
}

async function openRecorded(events: Event[], dir: string, fail?: (count: number) => boolean): Promise<Delivery> {
  const maildir = await openMaildir(dir, {
    fsync: async (fd: number) => {
      fsyncSync(fd);
      const kind = fstatSync(fd).isDirectory() ? 'fsync new/' : 'fsync file';
      events.push({ kind, inNew: await wholeFilesInNew(dir) });
    },
    flushFilesystem: recordingFlush(events, dir, fail),
    // Every batch through the flush, the first one (a single message, usually) included.
    flushAtLeast: 1,
  });
  return {
    durable: maildir.durable,
    deliver: async (n, body, onRead) => {
      await maildir.deliver(n, body, onRead);
      events.push({ kind: 'written', n });
    },
    commit: () => maildir.commit(),
    close: () => maildir.close(),
    abandon: () => maildir.abandon(),
  };
}


/** transfer() of every message with --delete and QUIT, as `popwire fetch --delete` does; DELEs recorded. */
async function fetchAll(delivery: Delivery, events: Event[]): Promise<TransferResult> {
  const client = await connectAsAlice(dovecot);
  const watchedClient = watchDeletes(client, (n) => events.push({ kind: 'dele', n }));
  const numbers = MESSAGES.map((_, index) => index + 1);
  const result = await transfer(watchedClient, numbers, delivery, { delete: true, shouldStop: () => false, onBytes: () => {}, onDelivered: () => {} });
  await finish(client, result, { requested: numbers.length, deleting: true, interrupted: undefined, started: performance.now() }).catch(() => undefined);
  await delivery.close();
  return result;
}

async function leftOnServer(): Promise<number> {
  const client = await connectAsAlice(dovecot);
  try {
    return (await client.list()).length;
  } finally {
    await client.quit();
  }
}

describe('fetch --maildir --delete through syncfs', { skip: process.platform !== 'linux' && 'syncfs is Linux only' }, () => {
  it('flushes each batch with none of it in new/, renames it, fsyncs new/, and only then deletes it; no file in new/ is ever partial', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const events: Event[] = [];
    const dir = freshDir();
    const result = await fetchAll(await openRecorded(events, dir), events);
    assert.equal(result.failure, undefined);
    assert.equal(result.markedDeleted, MESSAGES.length);
    /** Where each message was written, and the last flush and fsync of new/ so far. */
    const writtenAt = new Map<number, number>();
    let lastFlush = -1;
    let lastCommit = -1;
    let inNewAtLastCommit = 0;
    for (const [index, event] of events.entries()) {
      if (event.kind === 'written') writtenAt.set(event.n, index);
      else if (event.kind === 'flush') {
        // Nothing renamed since the last commit: every rename waits for the flush of its data.
        assert.equal(event.inNew, inNewAtLastCommit, 'a file reached new/ before the flush that made it durable');
        lastFlush = index;
      } else if (event.kind === 'fsync new/') {
        assert.ok(lastFlush > lastCommit, 'new/ fsynced for a batch that was not flushed');
        lastCommit = index;
        inNewAtLastCommit = event.inNew;
      } else if (event.kind === 'dele') {
        const written = writtenAt.get(event.n);
        assert.ok(written !== undefined, `DELE ${event.n} before message ${event.n} was written`);
        assert.ok(lastFlush > written, `DELE ${event.n} before a flush that followed its writing`);
        assert.ok(lastCommit > lastFlush, `DELE ${event.n} before new/ was fsynced after the flush`);
      }
    }
    assert.equal(events.filter((e) => e.kind === 'fsync file').length, 0, 'no fsync per file when the filesystem was flushed');
    assert.equal(await wholeFilesInNew(dir), MESSAGES.length);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.equal(await leftOnServer(), 0);
  });

  it('a failed flush deletes only what earlier batches covered, and new/ holds exactly those', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const events: Event[] = [];
    const dir = freshDir();
    const result = await fetchAll(await openRecorded(events, dir, (count) => count === 2), events);
    assert.ok(result.failure instanceof DeliveryError, String(result.failure));
    assert.ok(result.delivered >= 1 && result.delivered < MESSAGES.length, String(result.delivered));
    assert.equal(result.markedDeleted, result.delivered);
    assert.equal(await wholeFilesInNew(dir), result.delivered);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.equal(await leftOnServer(), MESSAGES.length - result.delivered);
  });
});
