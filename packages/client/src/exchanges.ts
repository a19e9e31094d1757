import { Readable } from 'node:stream';
import { ListingSplitter, MAX_LISTING_BYTES, type ListingSink } from './commands/listing.js';
import type { Engine, Exchange, SessionState } from './engine.js';
import { Pop3Error, Pop3ProtocolError, Pop3ServerError } from './errors.js';
import type { EncodedCommand } from './protocol/command.js';
import type { StatusLine } from './protocol/status.js';

/**
 * The three shapes a POP3 reply takes, as exchanges the engine can run:
 * one status line; a status line and a block we keep (listings, small bodies); a status line and
 * a block we stream to the caller (message bodies).
 */

export interface SendOptions {
  readonly allowedIn: readonly SessionState[];
  readonly barrier?: boolean;
  readonly handsOverConnection?: boolean;
  /** Runs as the +OK arrives, before any later reply is read: where a command changes the session state. */
  readonly onOk?: (status: StatusLine) => void;
  /** Builds the error for a -ERR reply; the default is a Pop3ServerError. */
  readonly onError?: (status: StatusLine, command: EncodedCommand) => Pop3Error;
}

export function serverError(status: StatusLine, command: EncodedCommand): Pop3ServerError {
  return new Pop3ServerError(`${command.verb} failed: ${status.text || '-ERR'}`, {
    code: 'POP3_ERR_REPLY',
    command: command.display,
    response: status.text,
    responseCode: status.code,
  });
}

abstract class PromiseExchange<T> implements Exchange {
  readonly barrier: boolean;
  readonly handsOverConnection: boolean;
  readonly promise: Promise<T>;
  protected resolve!: (value: T) => void;
  protected reject!: (error: Pop3Error) => void;

  constructor(
    readonly command: EncodedCommand,
    protected readonly options: SendOptions,
  ) {
    this.barrier = options.barrier ?? false;
    this.handsOverConnection = options.handsOverConnection ?? false;
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onStatus(status: StatusLine): 'done' | 'block' | 'more' {
    if (status.status === 'ok') {
      this.options.onOk?.(status);
      return this.onOk(status);
    }
    if (status.status === 'err') {
      this.reject((this.options.onError ?? serverError)(status, this.command));
      return 'done';
    }
    throw new Pop3ProtocolError(`The server sent a SASL continuation in reply to ${this.command.verb}`, {
      code: 'POP3_BAD_REPLY',
      command: this.command.display,
    });
  }

  protected abstract onOk(status: StatusLine): 'done' | 'block';

  onData(_chunk: Buffer): void {}

  onEnd(): void {}

  onFail(error: Pop3Error): void {
    this.reject(error);
  }
}

/**
 * A command answered by one line. `parse` runs inside the reader: a malformed reply (a STAT that
 * is not two numbers) is a protocol error that closes the connection, as the rules say.
 */
export class LineExchange<T> extends PromiseExchange<T> {
  constructor(
    command: EncodedCommand,
    options: SendOptions,
    private readonly parse: (status: StatusLine) => T,
  ) {
    super(command, options);
  }

  protected onOk(status: StatusLine): 'done' {
    this.resolve(this.parse(status));
    return 'done';
  }
}

/**
 * A multi-line reply kept in memory, up to `maxBytes`. The bound stops a server that sends an
 * endless listing or body from taking all our memory; past it the connection is failed, because
 * draining an endless block would never end either.
 */
export class BufferedExchange<T> extends PromiseExchange<T> {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    command: EncodedCommand,
    options: SendOptions,
    private readonly maxBytes: number,
    /** Runs inside the reader, like LineExchange's: a malformed listing fails the connection. */
    private readonly parse: (body: Buffer) => T,
  ) {
    super(command, options);
  }

  protected onOk(): 'block' {
    return 'block';
  }

  override onData(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) throw replyTooLarge(this.command, this.maxBytes);
    this.chunks.push(chunk);
  }

  override onEnd(): void {
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    this.resolve(this.parse(body));
  }
}

/**
 * A listing (LIST, UIDL) parsed line by line as it arrives, into the compact store `sink` builds:
 * the reply itself is never held. Bounded in octets like a buffered reply, and in entries by the
 * sink; past either the connection is failed (an endless listing would never drain).
 */
export class ListingExchange<T> extends PromiseExchange<T> {
  private readonly splitter: ListingSplitter;
  private size = 0;

  constructor(
    command: EncodedCommand,
    options: SendOptions,
    private readonly sink: ListingSink<T>,
  ) {
    super(command, options);
    this.splitter = new ListingSplitter(sink);
  }

  protected onOk(): 'block' {
    return 'block';
  }

  override onData(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > MAX_LISTING_BYTES) throw replyTooLarge(this.command, MAX_LISTING_BYTES);
    this.splitter.push(chunk);
  }

  override onEnd(): void {
    this.resolve(this.sink.finish());
  }
}

export interface StreamedReply {
  readonly status: StatusLine;
  /** The body, dot-unstuffed. Read it to the end or destroy it: the session waits for it. */
  readonly body: Readable;
}

/**
 * A multi-line reply handed to the caller as a Readable as soon as its +OK arrives (so a -ERR
 * rejects the promise rather than erroring a stream). Backpressure reaches the socket: when the
 * stream's buffer is full the engine pauses reading. A stream destroyed before its end is drained
 * by the engine, and the session stays usable.
 */
export class StreamExchange extends PromiseExchange<StreamedReply> {
  private body: BodyStream | undefined;

  constructor(
    command: EncodedCommand,
    options: SendOptions,
    private readonly engine: Engine,
  ) {
    super(command, options);
  }

  protected onOk(status: StatusLine): 'block' {
    this.body = new BodyStream(this.engine);
    this.resolve({ status, body: this.body });
    return 'block';
  }

  override onData(chunk: Buffer): void {
    (this.body as BodyStream).feed(chunk);
  }

  override onEnd(): void {
    (this.body as BodyStream).feed(null);
  }

  override onFail(error: Pop3Error): void {
    if (this.body === undefined) this.reject(error);
    else if (!this.body.destroyed && !this.body.readableEnded) this.body.destroy(error);
  }
}

/**
 * A message body as the caller sees it. Backpressure is the engine's, not the stream's: every
 * octet fed in and read out is reported to the engine, which pauses the socket when the octets
 * waiting in all bodies pass its budget. (A per-stream highWaterMark would not do: a thousand
 * pipelined small messages, each below its stream's mark, would all sit in memory.)
 *
 * Content is held here, outside the Readable's buffer, until the caller reads it. `for await`
 * (what most callers do) takes the chunks straight from that list, each a view of the socket's
 * chunk as the decoder emitted it; every other way of reading (pipe, 'data', read()) goes
 * through `_read`, which hands what is held to the Readable and from then on feeds it directly.
 * Why: a profile of retrieveMany on 10,000 messages of 4 KB put a third of the library's CPU in
 * Node's stream machinery per body (the async iterator's end-of-stream listeners, push's and
 * read's bookkeeping and ticks, and the copy read() makes to join a body's chunks).
 */
class BodyStream extends Readable {
  private held: Array<Buffer | undefined> = [];
  private heldHead = 0;
  private heldBytes = 0;
  /** The terminator arrived (while held). */
  private fedEnd = false;
  /** Reads go through the Readable API: feed pushes into it. */
  private viaReadable = false;
  /** Our own iterator is reading. */
  private iterating = false;
  private wake: (() => void) | undefined;
  private readonly wakeUp = (): void => {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  };

  constructor(private readonly engine: Engine) {
    super();
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
    if (chunk === null) {
      this.fedEnd = true;
    } else {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      this.engine.trackBuffered(chunk.length);
    }
    this.wakeUp();
  }

  // Every way of consuming a Readable (pipe, 'data', read()) goes through read(), except our own
  // iterator. readableLength is measured before and after, so the units match what feed()
  // counted even when the caller set an encoding; what _read hands over from `held` is counted
  // by this difference too (it was uncounted there first).
  override read(size?: number): ReturnType<Readable['read']> {
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

  override [Symbol.asyncIterator](): ReturnType<Readable[typeof Symbol.asyncIterator]> {
    // An encoding set by the caller, or reads already begun another way: Node's own iterator.
    if (this.viaReadable || this.iterating || this.destroyed || this.readableEncoding !== null) return super[Symbol.asyncIterator]();
    this.iterating = true;
    return this.iterate() as unknown as ReturnType<Readable[typeof Symbol.asyncIterator]>;
  }

  /** Node's iterator's contract: chunks in order, the stream's error thrown, destroyed on break or throw. */
  private async *iterate(): AsyncGenerator<Buffer> {
    let complete = false;
    try {
      for (;;) {
        if (this.destroyed) throw this.errored ?? closedEarly();
        if (this.heldHead < this.held.length) {
          const chunk = this.held[this.heldHead] as Buffer;
          this.held[this.heldHead++] = undefined;
          this.heldBytes -= chunk.length;
          this.engine.trackBuffered(-chunk.length);
          yield chunk;
        } else if (this.fedEnd) {
          complete = true;
          // End the Readable as a read to the end would: 'end' (so readableEnded), then 'close'.
          super.push(null);
          this.once('end', this.wakeUp);
          super.read(0);
          if (!this.readableEnded && !this.destroyed) await new Promise<void>((resolve) => (this.wake = resolve));
          this.off('end', this.wakeUp);
          return;
        } else {
          this.engine.resume();
          await new Promise<void>((resolve) => (this.wake = resolve));
        }
      }
    } finally {
      if (!complete) this.destroy();
    }
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
    this.wakeUp();
  }
}

/** What Node's iterator throws for a stream destroyed without an error before its end. */
function closedEarly(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

export function sendLine(engine: Engine, command: EncodedCommand, options: SendOptions): Promise<StatusLine>;
export function sendLine<T>(
  engine: Engine,
  command: EncodedCommand,
  options: SendOptions,
  parse: (status: StatusLine) => T,
): Promise<T>;
export function sendLine<T>(
  engine: Engine,
  command: EncodedCommand,
  options: SendOptions,
  parse: (status: StatusLine) => T | StatusLine = (status) => status,
): Promise<T | StatusLine> {
  const exchange = new LineExchange(command, options, parse);
  engine.submit(exchange, options.allowedIn);
  return exchange.promise;
}

export function sendBuffered<T>(
  engine: Engine,
  command: EncodedCommand,
  options: SendOptions,
  maxBytes: number,
  parse: (body: Buffer) => T,
): Promise<T> {
  const exchange = new BufferedExchange(command, options, maxBytes, parse);
  engine.submit(exchange, options.allowedIn);
  return exchange.promise;
}

/** A reply that outgrew its bound: the connection is failed, since what is left of it would never drain. */
function replyTooLarge(command: EncodedCommand, maxBytes: number): Pop3ProtocolError {
  return new Pop3ProtocolError(`The reply to ${command.verb} is larger than ${maxBytes} octets`, { code: 'POP3_REPLY_TOO_LARGE', command: command.display });
}

export function sendListing<T>(engine: Engine, command: EncodedCommand, options: SendOptions, sink: ListingSink<T>): Promise<T> {
  const exchange = new ListingExchange(command, options, sink);
  engine.submit(exchange, options.allowedIn);
  return exchange.promise;
}

export function sendStreamed(engine: Engine, command: EncodedCommand, options: SendOptions): Promise<StreamedReply> {
  const exchange = new StreamExchange(command, options, engine);
  engine.submit(exchange, options.allowedIn);
  return exchange.promise;
}
