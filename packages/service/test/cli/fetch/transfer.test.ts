/**
 * transfer() against a real Dovecot, into a real mbox and a real Maildir, with the deliveries'
 * fsync replaced by one that records when it ran (and, in one test, fails). The promise under
 * test: a message is marked deleted (DELE) only after an fsync that began after it was written
 * had completed: for a Maildir, the fsync of new/ after its rename. And an fsync that fails leaves
 * every message it covered on the server, and none of them in the destination.
 */
import assert from 'node:assert/strict';
import { fstatSync, fsyncSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../../support/fixtures.ts';
import { finish } from '../../../src/cli/fetch/outcome.ts';
import { transfer, type TransferResult } from '../../../src/cli/fetch/transfer.ts';
import { DeliveryError, type Delivery } from '../../../src/delivery/delivery.ts';
import { openMaildir } from '../../../src/delivery/maildir.ts';
import { openMbox } from '../../../src/delivery/mbox.ts';
import { connectAsAlice, watchDeletes } from './watched-session.ts';
import { readMboxrd } from '../../delivery/mboxrd-reader.ts';

const MESSAGES = bulkMessages(60, 2000);

let dovecot: Dovecot;
let scratch: string;
before(async () => {
  dovecot = await startDovecot();
  scratch = await mkdtemp(join(tmpdir(), 'popwire-transfer-test-'));
});
after(async () => {
  await dovecot?.stop();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

let paths = 0;
const freshPath = (name: string) => join(scratch, `${name}-${++paths}`);

type Event = { readonly kind: 'written' | 'dele'; readonly n: number } | { readonly kind: 'fsync'; readonly what: string } | { readonly kind: 'quit' };

/** Records each message as its deliver() resolves. */
function watched(delivery: Delivery, events: Event[]): Delivery {
  return {
    durable: delivery.durable,
    deliver: async (n, body, onRead) => {
      await delivery.deliver(n, body, onRead);
      events.push({ kind: 'written', n });
    },
    commit: () => delivery.commit(),
    close: () => delivery.close(),
    abandon: () => delivery.abandon(),
  };
}

/** An fsync that runs the real one, then records it; `fail` makes the chosen one fail instead. */
function recordingFsync(events: Event[], real: (handle: FileHandle) => Promise<void>, fail?: (count: number) => boolean) {
  let count = 0;
  return async (handle: FileHandle) => {
    count += 1;
    if (fail?.(count) === true) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    await real(handle);
    const what = (await handle.stat()).isDirectory() ? 'directory' : 'file';
    events.push({ kind: 'fsync', what });
  };
}

/** recordingFsync for the Maildir, whose fsync takes a descriptor. */
function recordingFdFsync(events: Event[], fail?: (count: number) => boolean) {
  let count = 0;
  return async (fd: number) => {
    count += 1;
    if (fail?.(count) === true) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    fsyncSync(fd);
    events.push({ kind: 'fsync', what: fstatSync(fd).isDirectory() ? 'directory' : 'file' });
  };
}


/** transfer() of every message with --delete, then QUIT as `popwire fetch` does; the DELEs go into `events`. */
async function fetchAll(delivery: Delivery, events: Event[]): Promise<{ result: TransferResult; quitFailure: unknown }> {
  const client = await connectAsAlice(dovecot);
  const watchedClient = watchDeletes(client, (n) => events.push({ kind: 'dele', n }));
  const numbers = MESSAGES.map((_, index) => index + 1);
  const result = await transfer(watchedClient, numbers, delivery, { delete: true, shouldStop: () => false, onBytes: () => {}, onDelivered: () => {} });
  let quitFailure: unknown;
  await finish(client, result, { requested: numbers.length, deleting: true, interrupted: undefined, started: performance.now() }).catch((error: unknown) => {
    quitFailure = error;
  });
  await delivery.close();
  return { result, quitFailure };
}

/** Message numbers still on the server. */
async function leftOnServer(): Promise<number> {
  const client = await connectAsAlice(dovecot);
  try {
    return (await client.list()).length;
  } finally {
    await client.quit();
  }
}

/**
 * Every DELE n comes after an fsync of `what` that completed after n was written. Returns how
 * many fsyncs of `what` there were, to show that they were grouped.
 */
function assertDeletedOnlyWhenDurable(events: Event[], what: 'file' | 'directory'): number {
  const writtenAt = new Map<number, number>();
  let lastSync = -1;
  for (const [index, event] of events.entries()) {
    if (event.kind === 'written') writtenAt.set(event.n, index);
    else if (event.kind === 'fsync' && event.what === what) lastSync = index;
    else if (event.kind === 'dele') {
      const written = writtenAt.get(event.n);
      assert.ok(written !== undefined, `DELE ${event.n} before message ${event.n} was written`);
      assert.ok(lastSync > written, `DELE ${event.n} before an fsync of the ${what} after message ${event.n} was written`);
    }
  }
  assert.equal(events.filter((e) => e.kind === 'dele').length, MESSAGES.length);
  return events.filter((e) => e.kind === 'fsync' && e.what === what).length;
}

describe('transfer with --delete', () => {
  it('into an mbox, marks a message deleted only after an fdatasync that followed its writing, and deletes every message', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const events: Event[] = [];
    const path = freshPath('mbox');
    const mbox = await openMbox(path, { lockTimeoutMs: 1000, fsync: recordingFsync(events, (h) => h.datasync()) });
    const { result, quitFailure } = await fetchAll(watched(mbox, events), events);
    assert.equal(quitFailure, undefined);
    assert.equal(result.failure, undefined);
    assert.equal(result.markedDeleted, MESSAGES.length);
    const syncs = assertDeletedOnlyWhenDurable(events, 'file');
    assert.ok(syncs >= 1 && syncs <= MESSAGES.length);
    assert.equal(readMboxrd(await readFile(path)).length, MESSAGES.length);
    assert.equal(await leftOnServer(), 0);
  });

  it('into a Maildir, marks a message deleted only after the fsync of new/ that followed its writing, and deletes every message', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const events: Event[] = [];
    const dir = freshPath('maildir');
    const maildir = await openMaildir(dir, { fsync: recordingFdFsync(events), flushFilesystem: null });
    const { result, quitFailure } = await fetchAll(watched(maildir, events), events);
    assert.equal(quitFailure, undefined);
    assert.equal(result.failure, undefined);
    assertDeletedOnlyWhenDurable(events, 'directory');
    // Every file was fsynced before its rename.
    assert.equal(events.filter((e) => e.kind === 'fsync' && e.what === 'file').length, MESSAGES.length);
    assert.equal((await readdir(join(dir, 'new'))).length, MESSAGES.length);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.equal(await leftOnServer(), 0);
  });

  it('into an mbox whose second fdatasync fails, deletes only what the first covered, and the mbox holds exactly those', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const events: Event[] = [];
    const path = freshPath('mbox');
    const mbox = await openMbox(path, { lockTimeoutMs: 1000, fsync: recordingFsync(events, (h) => h.datasync(), (count) => count === 2) });
    const { result } = await fetchAll(watched(mbox, events), events);
    assert.ok(result.failure instanceof DeliveryError, String(result.failure));
    assert.ok(result.delivered < MESSAGES.length);
    assert.equal(result.markedDeleted, result.delivered);
    const stored = readMboxrd(await readFile(path));
    assert.equal(stored.length, result.delivered);
    assert.equal(await leftOnServer(), MESSAGES.length - result.delivered);
  });

  it('into a Maildir where an fsync fails, deletes only what earlier commits covered, and new/ holds exactly those', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const events: Event[] = [];
    const dir = freshPath('maildir');
    // The first commit covers message 1 (two fsyncs: its file, new/); the third fsync is in the second commit.
    const maildir = await openMaildir(dir, { fsync: recordingFdFsync(events, (count) => count === 3), flushFilesystem: null });
    const { result } = await fetchAll(watched(maildir, events), events);
    assert.ok(result.failure instanceof DeliveryError, String(result.failure));
    assert.ok(result.delivered >= 1 && result.delivered < MESSAGES.length, String(result.delivered));
    assert.equal(result.markedDeleted, result.delivered);
    assert.equal((await readdir(join(dir, 'new'))).length, result.delivered);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.equal(await leftOnServer(), MESSAGES.length - result.delivered);
  });
});

describe('QUIT pipelined at the end of a transfer (onAllSent)', () => {
  /** transfer() as `popwire fetch` runs it: QUIT sent from onAllSent, then finish() awaits it. */
  async function fetchQuittingEarly(delivery: Delivery, events: Event[], deleting: boolean) {
    const client = await connectAsAlice(dovecot);
    const watchedClient = watchDeletes(client, (n) => events.push({ kind: 'dele', n }));
    const numbers = MESSAGES.map((_, index) => index + 1);
    let quitting: Promise<void> | undefined;
    const result = await transfer(watchedClient, numbers, delivery, {
      delete: deleting,
      shouldStop: () => false,
      onBytes: () => {},
      onDelivered: () => {},
      onAllSent: () => {
        events.push({ kind: 'quit' });
        quitting = client.quit();
        quitting.catch(() => undefined);
      },
    });
    const summary = await finish(client, result, { requested: numbers.length, deleting, interrupted: undefined, started: performance.now() }, quitting);
    await delivery.close();
    return { result, summary };
  }

  it('with --delete, QUIT is written only after every DELE, so after the last fdatasync, and every DELE is still answered and committed', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const events: Event[] = [];
    const path = freshPath('mbox');
    const mbox = await openMbox(path, { lockTimeoutMs: 1000, fsync: recordingFsync(events, (h) => h.datasync()) });
    const { result, summary } = await fetchQuittingEarly(watched(mbox, events), events, true);
    assertDeletedOnlyWhenDurable(events.filter((e) => e.kind !== 'quit'), 'file');
    const quitAt = events.findIndex((e) => e.kind === 'quit');
    assert.equal(events.filter((e) => e.kind === 'quit').length, 1);
    assert.ok(quitAt > events.findLastIndex((e) => e.kind === 'dele'), 'QUIT before a DELE');
    assert.ok(quitAt > events.findLastIndex((e) => e.kind === 'fsync'), 'QUIT before the last fdatasync');
    assert.equal(result.failure, undefined);
    assert.equal(result.markedDeleted, MESSAGES.length);
    assert.equal(summary.deleted, MESSAGES.length);
    assert.equal(readMboxrd(await readFile(path)).length, MESSAGES.length);
    assert.equal(await leftOnServer(), 0);
  });

  it('without --delete, QUIT goes out once the last body is read, and every message is still committed to the mbox and kept on the server', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const events: Event[] = [];
    const path = freshPath('mbox');
    const mbox = await openMbox(path, { lockTimeoutMs: 1000, fsync: recordingFsync(events, (h) => h.datasync()) });
    const { result, summary } = await fetchQuittingEarly(watched(mbox, events), events, false);
    assert.ok(events.findIndex((e) => e.kind === 'quit') > events.findLastIndex((e) => e.kind === 'written'), 'QUIT before the last message was written');
    assert.equal(events.filter((e) => e.kind === 'dele').length, 0);
    assert.equal(result.delivered, MESSAGES.length);
    assert.equal(summary.messages, MESSAGES.length);
    assert.equal(readMboxrd(await readFile(path)).length, MESSAGES.length);
    assert.equal(await leftOnServer(), MESSAGES.length);
  });
});

describe('transfer with external destinations (handOver)', () => {
  it('deletes exactly the messages every destination accepted: a refusal skips one message, an unavailable destination ends the run', async () => {
    await dovecot.setMailbox('alice', MESSAGES);
    const { noLocalDelivery } = await import('../../../src/cli/fetch/destinations.ts');
    const { DestinationRefused, DestinationUnavailable } = await import('../../../src/destinations/destination.ts');
    const events: Event[] = [];
    const accepted: number[] = [];
    const client = await connectAsAlice(dovecot);
    const watchedClient = watchDeletes(client, (n) => events.push({ kind: 'dele', n }));
    const numbers = MESSAGES.map((_, index) => index + 1);
    const result = await transfer(watchedClient, numbers, noLocalDelivery(), {
      delete: true,
      shouldStop: () => false,
      onBytes: () => {},
      onDelivered: () => {},
      handOver: async (n, message) => {
        assert.deepEqual(message, MESSAGES[n - 1], `message ${n} handed over whole`);
        if (n === 40) throw new DestinationUnavailable('LMTP test', 'the connection was lost');
        if (n % 7 === 0) throw new DestinationRefused('LMTP test', '452 4.2.2 Mailbox full', true);
        accepted.push(n);
      },
    });
    await finish(client, result, { requested: numbers.length, deleting: true, interrupted: undefined, started: performance.now() }).catch(() => undefined);
    assert.ok(result.failure instanceof DestinationUnavailable);
    assert.deepEqual(result.refused.map(({ n }) => n), [7, 14, 21, 28, 35]);
    assert.deepEqual(events.filter((event) => event.kind === 'dele').map((event) => (event as { n: number }).n), accepted);
    assert.equal(accepted.length, 34);
    assert.equal(await leftOnServer(), MESSAGES.length - accepted.length);
  });
});
