import { Readable } from 'node:stream';
import type { Engine } from './engine.js';

/**
 * A message body as the caller sees it. Backpressure is the engine's, not the stream's: every
 * octet fed in and read out is reported to the engine, which pauses the socket when the octets
 * waiting in all bodies pass its budget. (A per-stream highWaterMark would not do: a thousand
 * pipelined small messages, each below its stream's mark, would all sit in memory.)
 *
 * Content is held here, outside the Readable's buffer, until the caller reads it. `for await`
 * (what most callers do) takes the chunks straight from that list through a small hand-written
 * iterator (BodyIterator), each a view of the socket's chunk as the decoder emitted it; every
 * other way of reading (pipe, 'data', read()) goes through `_read`, which hands what is held to
 * the Readable and from then on feeds it directly.
 * Why: a profile of retrieveMany on 10,000 messages of 4 KB put a third of the library's CPU in
 * Node's stream machinery per body (the async iterator's end-of-stream listeners, push's and
 * read's bookkeeping and ticks, and the copy read() makes to join a body's chunks); an async
 * generator in its place still cost a generator object, a promise per wait and a listener per
 * end, which is why the iterator below hands each chunk to the waiting `next()` itself.
 *
 * The end, too, is deferred when nobody listens for it: a body read to its end by our iterator,
 * with no 'end' or 'close' listener, reports itself ended and closed at once (readableEnded,
 * destroyed, closed) without running Node's end (push(null), read(0), the end tick, autoDestroy,
 * the close tick), which was a fifth of the library's instructions per 4 KB message. Node's end
 * runs later if anything can still observe it: a listener added (stream.finished, pipe, a late
 * once('end')), read(), or another iterator. destroy() on such a body does nothing, as on a
 * stream already closed.
 */
export class BodyStream extends Readable {
  private held: Array<Buffer | undefined> = [];
  private heldHead = 0;
  private heldBytes = 0;
  /** The terminator arrived (while held). */
  private fedEnd = false;
  /** Reads go through the Readable API: feed pushes into it. */
  private viaReadable = false;
  /** Our own iterator is reading. */
  private iterating = false;
  /** Our iterator handed out the end: everything was read. */
  private complete = false;
  /** A `next()` of our iterator waiting for content. */
  private waiter: Waiter | undefined;
  /** Read to its end with nobody listening: reported ended and closed, Node's end not yet run (see above). */
  endDeferred = false;

  constructor(private readonly engine: Engine) {
    super();
  }

  /** Whether the caller read the whole body (through our iterator, or the Readable's end). */
  get readToEnd(): boolean {
    return this.complete || this.readableEnded;
  }

  /** Content from the engine (null at the terminator). Dropped if the consumer destroyed us. */
  feed(chunk: Buffer | null): void {
    if (this.destroyed) return;
    if (this.viaReadable) {
      const before = this.readableLength;
      this.push(chunk);
      this.engine.trackBuffered(this.readableLength - before);
      return;
    }
    const waiter = this.waiter;
    if (chunk === null) {
      this.fedEnd = true;
      if (waiter !== undefined) {
        this.waiter = undefined;
        waiter.resolve(this.end_());
      }
      return;
    }
    if (waiter !== undefined) {
      // The reader is waiting and nothing is held before this chunk: it goes straight to it,
      // and is never counted as held.
      this.waiter = undefined;
      waiter.resolve({ value: chunk, done: false });
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    this.engine.trackBuffered(chunk.length);
  }

  // Every way of consuming a Readable (pipe, 'data', read()) goes through read(), except our own
  // iterator. readableLength is measured before and after, so the units match what feed()
  // counted even when the caller set an encoding; what _read hands over from `held` is counted
  // by this difference too (it was uncounted there first).
  override read(size?: number): ReturnType<Readable['read']> {
    this.runDeferredEnd();
    const before = this.readableLength;
    const chunk: unknown = super.read(size);
    this.engine.trackBuffered(this.readableLength - before);
    return chunk;
  }

  override _read(): void {
    if (!this.viaReadable && !this.iterating) {
      this.viaReadable = true;
      this.engine.trackBuffered(-this.heldBytes);
      for (let i = this.heldHead; i < this.held.length; i++) super.push(this.held[i]);
      if (this.fedEnd) super.push(null);
      this.held = [];
      this.heldBytes = 0;
    }
    this.engine.resume();
  }

  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    this.runDeferredEnd();
    return super.on(event, listener);
  }

  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    this.runDeferredEnd();
    return super.addListener(event, listener);
  }

  override prependListener(event: string | symbol, listener: (...args: any[]) => void): this {
    this.runDeferredEnd();
    return super.prependListener(event, listener);
  }

  override destroy(error?: Error): this {
    // Already ended and closed, as far as anyone can tell: destroying a closed stream does nothing.
    if (this.endDeferred) return this;
    return super.destroy(error);
  }

  override [Symbol.asyncIterator](): ReturnType<Readable[typeof Symbol.asyncIterator]> {
    this.runDeferredEnd();
    // An encoding set by the caller, or reads already begun another way: Node's own iterator.
    if (this.viaReadable || this.iterating || this.destroyed || this.readableEncoding !== null) return super[Symbol.asyncIterator]();
    this.iterating = true;
    return new BodyIterator(this) as unknown as ReturnType<Readable[typeof Symbol.asyncIterator]>;
  }

  /**
   * Node's iterator's contract: chunks in order; the stream's error (or a premature close)
   * thrown; at the end the stream is ended ('end', readableEnded) and then closed.
   */
  nextChunk(): Promise<IteratorResult<Buffer, undefined>> {
    if (this.complete) return Promise.resolve(DONE);
    if (this.waiter !== undefined) {
      // A second next() before the first settled: answered in order, after it.
      const earlier = this.waiter.promise;
      return earlier.then(
        () => this.nextChunk(),
        () => this.nextChunk(),
      );
    }
    if (this.destroyed) return Promise.reject(this.errored ?? closedEarly());
    if (this.heldHead < this.held.length) {
      const chunk = this.held[this.heldHead] as Buffer;
      this.held[this.heldHead++] = undefined;
      this.heldBytes -= chunk.length;
      this.engine.trackBuffered(-chunk.length);
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.fedEnd) return this.end_();
    this.engine.resume();
    const waiter = new Waiter();
    this.waiter = waiter;
    return waiter.promise;
  }

  /** The reader stopped early (break, throw, return): as Node's iterator does, the stream is destroyed. */
  stopIterating(): void {
    if (!this.complete) this.destroy();
  }

  /**
   * Ends the Readable as a read to the end would. push(null) then read(0) queues Node's
   * end-of-stream tick ('end', then autoDestroy's 'close'); the iterator's last result is
   * resolved on a tick queued after it, so that the caller's loop exits with readableEnded true.
   */
  private end_(): Promise<IteratorResult<Buffer, undefined>> {
    this.complete = true;
    if (this.listenerCount('end') === 0 && this.listenerCount('close') === 0) {
      // Nobody to tell: ended and closed as the getters below report it, Node's end left for later.
      this.endDeferred = true;
      return Promise.resolve(DONE);
    }
    super.push(null);
    super.read(0);
    return new Promise((resolve) => process.nextTick(resolve, DONE));
  }

  /** Something may observe the end from now on: Node's end runs ('end', then 'close', on their ticks). */
  private runDeferredEnd(): void {
    if (this.endDeferred !== true) return;
    this.endDeferred = false;
    super.push(null);
    super.read(0);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Abandoned mid-body: its unread octets no longer count, and the engine goes on reading
    // (and discarding) up to the terminator.
    this.engine.trackBuffered(-this.readableLength - this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    this.engine.resume();
    // Our iterator throws the error to its reader, as Node's does (whose own listener takes the
    // 'error' event): emitted with no listener, it would be an uncaught exception.
    callback(this.iterating && this.listenerCount('error') === 0 ? null : error);
    const waiter = this.waiter;
    if (waiter !== undefined && !this.complete) {
      this.waiter = undefined;
      waiter.reject(error ?? closedEarly());
    }
  }
}

// What a body whose end is deferred reports: what Node reports of a stream read to its end and
// closed. Accessors, not class members: Node's typings declare these as properties.
for (const [name, whenEnded] of [
  ['readableEnded', true],
  ['destroyed', true],
  ['closed', true],
  ['readable', false],
] as const) {
  const base = Object.getOwnPropertyDescriptor(Readable.prototype, name) as PropertyDescriptor;
  Object.defineProperty(BodyStream.prototype, name, {
    configurable: true,
    enumerable: base.enumerable ?? false,
    get(this: BodyStream): boolean {
      return this.endDeferred === true ? whenEnded : (base.get as () => boolean).call(this);
    },
    ...(base.set === undefined ? {} : { set: base.set }),
  });
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/** What `for await` sees of a body: BodyStream's chunks, without a generator. */
class BodyIterator implements AsyncIterableIterator<Buffer, undefined> {
  constructor(private readonly body: BodyStream) {}

  next(): Promise<IteratorResult<Buffer, undefined>> {
    return this.body.nextChunk();
  }

  return(): Promise<IteratorResult<Buffer, undefined>> {
    this.body.stopIterating();
    return Promise.resolve(DONE);
  }

  throw(error: unknown): Promise<IteratorResult<Buffer, undefined>> {
    this.body.stopIterating();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** A promise with its settle functions, for a `next()` that waits. */
class Waiter {
  readonly promise: Promise<IteratorResult<Buffer, undefined>>;
  resolve!: (result: IteratorResult<Buffer, undefined> | Promise<IteratorResult<Buffer, undefined>>) => void;
  reject!: (error: Error) => void;

  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/** What Node's iterator throws for a stream destroyed without an error before its end. */
function closedEarly(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
