import * as crypto from 'node:crypto';
import { CHUNK_BYTES, type MessageSummary, type MessageToCommit, type OutboxRows } from '../store/messages.js';
import type { Store } from '../store/store.js';
import type { ListedMessage } from './listing.js';
import { SyncError } from './errors.js';
import type { summarize } from './summary.js';

/**
 * The summarizer, and with it the message parser (postal-mime), loaded at the first message
 * written: a sync with nothing new never compiles them (about 10 ms of each `popwire sync` start).
 */
let summaryModule: Promise<{ summarize: typeof summarize }> | undefined;
const summarizer = () => (summaryModule ??= import('./summary.js'));

/**
 * crypto.hash, one call and no Hash object, is 4 to 7 us less per 4 KB message than createHash's
 * three; it came in Node 20.12, and the package runs on 20.11 too (a namespace import, so that
 * its absence is not a link error there).
 */
const sha256Hex: (bytes: Buffer) => string =
  typeof crypto.hash === 'function' ? (bytes) => crypto.hash('sha256', bytes, 'hex') : (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

export interface WriterOptions {
  /**
   * Messages committed per transaction. Default 1,024: a commit costs an fsync (about 15 ms
   * here), and no DELE waits on a batch (they follow the whole session's retrieval), so larger
   * batches cost only what a crash makes the next run fetch again.
   */
  readonly batchMessages?: number | undefined;
  /** Octets held before a commit. Default 16 MiB. */
  readonly batchBytes?: number | undefined;
  /** A message larger than this is written chunk by chunk instead of held whole. Default 8 MiB. */
  readonly largeBytes?: number | undefined;
  /**
   * Octets one message may send before the sync fails with SYNC_MESSAGE_TOO_LARGE. The size
   * limit is applied to what LIST says; this applies it to what RETR sends, so a server that
   * lists 1 KB and sends without end fills neither memory nor the disk. Default: no bound.
   */
  readonly maxBytes?: number | undefined;
  /** Webhook outbox rows for the messages each commit stores, written in that commit's transaction. */
  readonly outbox?: OutboxRows | undefined;
}

/** A message just committed: what a `message.new` event tells. */
export interface CommittedMessage {
  readonly id: number;
  readonly uid: string;
  readonly size: number;
  readonly headersOnly: boolean;
  readonly summary: MessageSummary;
}

export interface WrittenMessage {
  readonly uid: string;
  readonly size: number;
  readonly firstSeenAt: number;
  readonly headersOnly: boolean;
}

/**
 * Turns retrieved bodies into committed messages. Small messages are held and committed in
 * batches: one transaction (one fsync of the log) per batch instead of one per message, which
 * is what makes 10,000 small messages cheap. Nothing is deleted on the server until `flush()`
 * has returned for it: the caller DELEs only what `committed` lists.
 */
export class MessageWriter {
  private batch: MessageToCommit[] = [];
  private batchSize = 0;
  private readonly done: WrittenMessage[] = [];
  private readonly batchMessages: number;
  private readonly batchBytes: number;
  private readonly largeBytes: number;
  private readonly outbox: OutboxRows | undefined;
  private readonly maxBytes: number;

  constructor(
    private readonly store: Store,
    private readonly accountId: number,
    private readonly now: () => number,
    options: WriterOptions = {},
    /** Told after each commit; a listener that throws is ignored. */
    private readonly onCommit?: (messages: readonly CommittedMessage[]) => void,
  ) {
    this.batchMessages = options.batchMessages ?? 1024;
    this.batchBytes = options.batchBytes ?? 16 * 1024 * 1024;
    this.largeBytes = options.largeBytes ?? 8 * 1024 * 1024;
    this.outbox = options.outbox;
    this.maxBytes = options.maxBytes ?? Infinity;
  }

  /**
   * Loads the summarizer before the first body arrives. A session calls it once it knows it has
   * messages to retrieve: loaded at the first body instead, the import (10 to 50 ms) held that
   * body up while the next ones were already arriving, so a Ctrl-C in that time stopped after the
   * first message instead of the one being received.
   */
  async ready(): Promise<void> {
    await summarizer();
  }

  /** Messages whose commit has returned, in the order written. */
  get committed(): readonly WrittenMessage[] {
    return this.done;
  }

  /** Reads the body to its end and queues the message for commit (or, if large, writes it). */
  async write(message: ListedMessage, firstSeenAt: number, body: AsyncIterable<Buffer>, headersOnly = false): Promise<number> {
    const held: Buffer[] = [];
    let size = 0;
    const iterator = body[Symbol.asyncIterator]();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      held.push(next.value);
      size += next.value.length;
      this.checkSize(message, size);
      if (size > this.largeBytes) return this.writeLarge(message, firstSeenAt, held, iterator, headersOnly);
    }
    const bytes = held.length === 1 ? held[0]! : Buffer.concat(held, size);
    const sha256 = sha256Hex(bytes);
    const summary = await (await summarizer()).summarize(bytes);
    this.batch.push({ uid: message.uid, listedSize: message.size, firstSeenAt, bytes, sha256, headersOnly, summary });
    this.batchSize += size;
    if (this.batch.length >= this.batchMessages || this.batchSize >= this.batchBytes) await this.flush();
    return size;
  }

  /** Commits what is held. */
  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.batchSize = 0;
    const ids = await this.store.messages.commit(this.accountId, batch, this.now(), this.outbox);
    for (const m of batch) this.done.push({ uid: m.uid, size: m.bytes.length, firstSeenAt: m.firstSeenAt, headersOnly: m.headersOnly });
    this.tell(batch.map((m, i) => ({ id: ids[i]!, uid: m.uid, size: m.bytes.length, headersOnly: m.headersOnly, summary: m.summary })));
  }

  private checkSize(message: ListedMessage, size: number): void {
    if (size <= this.maxBytes) return;
    throw new SyncError(
      'SYNC_MESSAGE_TOO_LARGE',
      `message ${message.n} (UID ${message.uid}) sent more than ${this.maxBytes} octets though LIST said ${message.size}: the account's size limit stops it`,
    );
  }

  /** A listener that throws must not fail a sync whose commit has already happened. */
  private tell(messages: readonly CommittedMessage[]): void {
    try {
      this.onCommit?.(messages);
    } catch {
      // The listener's own business (its events are a convenience; the store is the record).
    }
  }

  /**
   * Streams a large message into the database in chunks, then commits it. The batch so far is
   * committed first, so that the order of commits stays the order of retrieval.
   */
  private async writeLarge(
    message: ListedMessage,
    firstSeenAt: number,
    held: Buffer[],
    rest: AsyncIterator<Buffer>,
    headersOnly: boolean,
  ): Promise<number> {
    await this.flush();
    const messages = this.store.messages;
    const id = await messages.beginLarge(this.accountId, message.uid, this.now());
    const hash = crypto.createHash('sha256');
    let size = 0;
    let seq = 0;
    let pending: Buffer[] = held;
    let pendingSize = held.reduce((n, b) => n + b.length, 0);
    const writeChunks = async (final: boolean) => {
      let joined = Buffer.concat(pending, pendingSize);
      while (joined.length >= CHUNK_BYTES || (final && joined.length > 0)) {
        const chunk = joined.subarray(0, CHUNK_BYTES);
        await messages.appendChunk(id, seq++, chunk);
        hash.update(chunk);
        size += chunk.length;
        joined = joined.subarray(chunk.length);
      }
      pending = joined.length > 0 ? [joined] : [];
      pendingSize = joined.length;
    };
    await writeChunks(false);
    for (let next = await rest.next(); !next.done; next = await rest.next()) {
      pending.push(next.value);
      pendingSize += next.value.length;
      this.checkSize(message, size + pendingSize);
      if (pendingSize >= CHUNK_BYTES) await writeChunks(false);
    }
    await writeChunks(true);
    const summary = await (await summarizer()).summarize(messages.chunks(id));
    const sha256 = hash.digest('hex');
    const stored = await messages.finishLarge(this.accountId, id, { uid: message.uid, listedSize: message.size, firstSeenAt, sha256, headersOnly, summary, size }, this.now(), this.outbox);
    this.done.push({ uid: message.uid, size, firstSeenAt, headersOnly });
    // `stored`, not `id`: when a copy was already stored, the pending row `id` is gone.
    this.tell([{ id: stored, uid: message.uid, size, headersOnly, summary }]);
    return size;
  }
}
