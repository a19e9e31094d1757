import { ftruncateSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { DeliveryError, type Delivery } from './delivery.js';
import { acquireDotlock, type Dotlock } from './dotlock.js';
import { fromLine, MboxrdQuoter, roomFor } from './mboxrd.js';
import { readInto } from './read.js';
import { writeAllSync } from './write.js';

export interface MboxOptions {
  /** How long to wait for another program's lock on the mbox. */
  readonly lockTimeoutMs: number;
  /** The envelope date of each message; the clock by default (a parameter for tests). */
  readonly now?: () => Date;
  /** Ends the wait for the lock early. */
  readonly signal?: AbortSignal | undefined;
  /** Told when the lock is held by another program and the wait for it begins. */
  readonly onLockWait?: ((message: string) => void) | undefined;
  /** Makes the file's appended bytes durable: fdatasync by default (a parameter for tests). */
  readonly fsync?: (handle: FileHandle) => Promise<void>;
  /** Writes all of `data` to the file or throws: writeAllSync by default (a parameter for tests). */
  readonly write?: (fd: number, data: Buffer) => void;
}

/**
 * Appends messages to an mbox file in mboxrd form (see mboxrd.ts), under a dotlock held from open
 * to close. A commit fsyncs (fdatasync) once for every message appended since the last. A message
 * that fails halfway (disk full, a file size limit, the connection dropped) is cut off again: the
 * file is truncated back to where that message began, so the mbox never holds half a message whose
 * rest another reader would take for the start of the next. A commit that fails, and a close
 * before a commit, truncate back to the end of the last commit: what is not durable is not delivered.
 */
export async function openMbox(path: string, options: MboxOptions): Promise<Delivery> {
  await refuseNonMbox(path);
  const lock = await acquireDotlock(path, { timeoutMs: options.lockTimeoutMs, signal: options.signal, onWait: options.onLockWait });
  let handle: FileHandle | undefined;
  try {
    // 'a+': appends, and lets us read the end of what is there.
    handle = await open(path, 'a+', 0o600);
    const { size } = await handle.stat();
    return new MboxFile(handle, lock, size, await separatorNeeded(handle, size), {
      now: options.now ?? (() => new Date()),
      fsync: options.fsync ?? datasync,
      write: options.write ?? writeAllSync,
    });
  } catch (error) {
    await handle?.close().catch(() => {});
    await lock.release();
    throw error;
  }
}

/**
 * Octets gathered in memory before one write() puts them in the file. Written one chunk at a time,
 * 10,000 messages of 4 KB took some 40,000 write calls (one per socket chunk, envelope line and
 * ending), a fifth of fetch's CPU time in the profile; gathered, a batch of about 60 such messages
 * is one call. Bounded, so a large message still streams.
 */
const GATHER_BYTES = 256 * 1024;

class MboxFile implements Delivery {
  readonly durable = true;
  /** Where the message being written began, while one is; to truncate back to. */
  private messageStart: number | undefined;
  /** The end of the last whole message, and of the last committed one. */
  private written: number;
  private committed: number;
  /** Why the last commit (or a write) failed; from then on nothing is accepted. */
  private broken: unknown;
  /** Octets gathered, not yet written (the first `gatheredBytes`): they follow the file's first `flushed` octets. */
  private readonly gathered = Buffer.allocUnsafe(4 * GATHER_BYTES);
  private gatheredBytes = 0;
  /** Copies a part of the quoter's output into `gathered`. */
  private readonly put = (source: Buffer, start: number, end: number): void => this.writeRange(source, start, end);
  /** The file's length as written (without what is gathered). */
  private flushed: number;
  /** The envelope line of the current second: the same for every message fetched in it. */
  private envelope: { readonly second: number; readonly line: Buffer } | undefined;

  constructor(
    private readonly handle: FileHandle,
    private readonly lock: Dotlock,
    /** The mbox's length with what is gathered: where the next octet goes. */
    private size: number,
    /** Newlines to write before the first "From " line, if the file does not end in a blank line. */
    private separator: string,
    private readonly io: {
      readonly now: () => Date;
      readonly fsync: (handle: FileHandle) => Promise<void>;
      readonly write: (fd: number, data: Buffer) => void;
    },
  ) {
    this.written = size;
    this.committed = size;
    this.flushed = size;
  }

  async deliver(_n: number, body: Readable, onRead?: (octets: number) => void): Promise<void> {
    if (this.broken !== undefined) {
      body.destroy();
      throw this.broken;
    }
    const start = this.size;
    this.messageStart = start;
    const quoter = new MboxrdQuoter();
    try {
      if (this.separator !== '') this.write(Buffer.from(this.separator, 'latin1'));
      this.write(this.envelopeLine());
      await readInto(body, (chunk) => {
        if (this.broken !== undefined) throw this.broken;
        this.quote(quoter, chunk);
        onRead?.(chunk.length);
      });
      this.write(quoter.finalize());
      // At a message's end, so that the file mostly holds whole messages between writes.
      if (this.gatheredBytes >= GATHER_BYTES) this.flush();
    } catch (error) {
      // Unread if the envelope line already failed: let the connection drain it and go on.
      body.destroy();
      // After a failed commit, that commit's truncation (to before this message) is the one to keep.
      if (this.broken === undefined) await this.truncateTo(start);
      throw error;
    } finally {
      this.messageStart = undefined;
    }
    this.written = this.size;
    this.separator = '';
  }

  async commit(): Promise<void> {
    if (this.broken !== undefined) throw this.broken;
    const point = this.written;
    if (point === this.committed) return;
    // The whole messages gathered go to the file first: the fsync must cover every one up to `point`.
    this.flushWhole();
    try {
      // Bytes of a message written meanwhile may be flushed too; they count from the next commit.
      await this.io.fsync(this.handle);
    } catch (error) {
      // Set first, synchronously: a message being written stops at its next chunk (see write).
      this.broken = error;
      await this.truncateTo(this.committed).catch(() => {});
      throw error;
    }
    this.committed = point;
  }

  async close(): Promise<void> {
    try {
      if (this.broken === undefined && this.size > this.committed) await this.truncateTo(this.committed);
      await this.handle.close();
    } finally {
      await this.lock.release();
    }
  }

  abandon(): void {
    // What is only gathered never reaches the file: nothing to undo there.
    if (this.messageStart !== undefined && this.messageStart < this.flushed) {
      try {
        ftruncateSync(this.handle.fd, this.messageStart);
      } catch {
        // Nothing more can be done on the way out; the lock still goes.
      }
    }
    this.gatheredBytes = 0;
    this.lock.releaseSync();
  }

  private envelopeLine(): Buffer {
    const date = this.io.now();
    const second = Math.floor(date.getTime() / 1000);
    if (this.envelope?.second !== second) this.envelope = { second, line: Buffer.from(fromLine(date), 'latin1') };
    return this.envelope.line;
  }

  private write(chunk: Buffer): void {
    if (this.broken !== undefined) throw this.broken;
    this.writeRange(chunk, 0, chunk.length);
  }

  /**
   * Gathers `chunk`'s mboxrd form for the next write, the quoter writing straight into the
   * gathered octets (writes first when they may not fit). A chunk too large for that goes
   * through writeRange, part by part.
   */
  private quote(quoter: MboxrdQuoter, chunk: Buffer): void {
    const room = roomFor(chunk.length);
    if (room > this.gathered.length) {
      quoter.updateInto(chunk, this.put);
      return;
    }
    if (this.gathered.length - this.gatheredBytes < room) this.flush();
    const end = quoter.updateTo(chunk, this.gathered, this.gatheredBytes);
    this.size += end - this.gatheredBytes;
    this.gatheredBytes = end;
  }

  /** Gathers octets `start` to `end` of `source` for the next write; writes first when they do not fit (in the middle of a large message too). */
  private writeRange(source: Buffer, start: number, end: number): void {
    for (let from = start; from < end; ) {
      if (this.gatheredBytes === this.gathered.length) this.flush();
      const count = Math.min(end - from, this.gathered.length - this.gatheredBytes);
      source.copy(this.gathered, this.gatheredBytes, from, from + count);
      this.gatheredBytes += count;
      this.size += count;
      from += count;
    }
  }

  /**
   * Writes the gathered octets of whole messages (those before `written`) in one call, keeping the
   * rest gathered. Synchronous (see writeAllSync), so that abandon() from a signal handler never
   * races a write on another thread. A write that fails may have put part of them in the file,
   * and they belong to messages whose deliver() already resolved: the mbox is broken from then
   * on, so that no later commit counts those as durable, and the file is cut back to where this
   * write began. Not to the last commit: one may be running, and what it covers was written
   * before it began.
   */
  private flushWhole(): void {
    const whole = Math.min(Math.max(this.written - this.flushed, 0), this.gatheredBytes);
    if (whole === 0) return;
    try {
      this.io.write(this.handle.fd, this.gathered.subarray(0, whole));
    } catch (error) {
      this.broken = error;
      try {
        ftruncateSync(this.handle.fd, this.flushed);
      } catch {
        // Nothing more to try: a reader may see a fragment after the last whole message.
      }
      this.gatheredBytes = 0;
      this.size = this.flushed;
      this.written = Math.min(this.written, this.flushed);
      throw error;
    }
    this.flushed += whole;
    this.gathered.copyWithin(0, whole, this.gatheredBytes);
    this.gatheredBytes -= whole;
  }

  /**
   * Writes everything gathered: the whole messages first (flushWhole), then what there is of the
   * message being written. A failure of that second write is that message's alone: deliver()
   * cuts the file back to where the message began (the file may hold any part of it), and the
   * whole messages before it stay, to be committed.
   */
  private flush(): void {
    this.flushWhole();
    if (this.gatheredBytes === 0) return;
    const partial = this.gathered.subarray(0, this.gatheredBytes);
    this.gatheredBytes = 0;
    // Counted as in the file before the write, so that a failure truncates the file, not the buffer.
    this.flushed += partial.length;
    this.io.write(this.handle.fd, partial);
  }

  /** Removes everything after octet `start`: from what is gathered and, if written already, from the file. */
  private async truncateTo(start: number): Promise<void> {
    if (start >= this.flushed) {
      this.gatheredBytes = start - this.flushed;
      this.size = start;
      this.written = Math.min(this.written, start);
      return;
    }
    this.gatheredBytes = 0;
    try {
      await this.handle.truncate(start);
      await this.handle.datasync();
      this.size = start;
      this.flushed = start;
      this.written = Math.min(this.written, start);
    } catch (cause) {
      throw new DeliveryError(
        `Could not remove the partly written message from the end of the mbox (from octet ${start}): ${String(cause)}`,
        { cause },
      );
    }
  }

}

/**
 * Refuses to append to what is not an mbox: a directory, a device or FIFO (an open would block or
 * an fsync fail), or a file with content that does not start with "From " (a mistyped path could
 * otherwise get mail appended to someone's document). A missing or empty file is a new mbox.
 */
async function refuseNonMbox(path: string): Promise<void> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (info === undefined) return;
  if (!info.isFile()) throw new DeliveryError(`${path} is not a regular file, so it cannot be an mbox`);
  if (info.size === 0) return;
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(FROM_.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (bytesRead < head.length || !head.equals(FROM_)) {
      throw new DeliveryError(`${path} is not an mbox: it does not start with a "From " line`);
    }
  } finally {
    await handle.close();
  }
}

const FROM_ = Buffer.from('From ');

/** fdatasync: the appended bytes and the new length, without the mtime a full fsync would add. */
function datasync(handle: FileHandle): Promise<void> {
  return handle.datasync();
}

/** An existing mbox should end in a blank line; if it does not, the next "From " line needs one before it. */
async function separatorNeeded(handle: FileHandle, size: number): Promise<string> {
  if (size === 0) return '';
  const tail = Buffer.alloc(Math.min(2, size));
  await handle.read(tail, 0, tail.length, size - tail.length);
  if (tail[tail.length - 1] !== 0x0a) return '\n\n';
  return tail.length === 2 && tail[0] === 0x0a ? '' : '\n';
}

/**
 * mboxrd on a stream that is not ours to lock, fsync or end (stdout): the same bytes as an mbox
 * file gets, delivered once the stream has taken them.
 */
export function mboxOnStream(out: Writable, options: { readonly now?: () => Date } = {}): Delivery {
  const now = options.now ?? (() => new Date());
  return {
    durable: false,
    async deliver(_n: number, body: Readable, onRead?: (octets: number) => void): Promise<void> {
      const quoter = new MboxrdQuoter();
      const writer = new StreamWriter(out);
      try {
        // Past the quoter: the envelope line is the one "From " line not to quote. Not waited
        // for: a failure to take it fails the next write too.
        writer.write(Buffer.from(fromLine(now()), 'latin1'))?.catch(() => {});
        await readInto(body, (chunk) => {
          onRead?.(chunk.length);
          return writer.write(quoter.update(chunk));
        });
        await writer.end(quoter.finalize());
      } catch (error) {
        body.destroy();
        throw error;
      }
    },
    commit: async () => {},
    close: async () => {},
    abandon: () => {},
  };
}

/**
 * Writes to a stream it does not own, with its backpressure (a promise to wait on when its buffer
 * is full) and its errors (EPIPE when the reader left), without adding a listener per message.
 */
class StreamWriter {
  private error: Error | undefined;

  constructor(private readonly out: Writable) {}

  /** Undefined when the stream can take more now. */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.error !== undefined) throw this.error;
    if (chunk.length === 0) return undefined;
    const ready = this.out.write(chunk, (error) => {
      if (error) this.error ??= error;
    });
    return ready ? undefined : this.drained();
  }

  /** Writes the last chunk and resolves once the stream has taken all of this message. */
  end(chunk: Buffer): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.out.write(chunk, (error) => {
        const failure = error ?? this.error;
        if (failure) reject(failure);
        else resolve();
      });
    });
  }

  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        this.out.off('drain', onDrain);
        this.out.off('error', done);
        this.out.off('close', onClose);
        if (error) reject(error);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(this.error ?? new Error('The output closed'));
      this.out.once('drain', onDrain);
      this.out.once('error', done);
      this.out.once('close', onClose);
    });
  }
}
