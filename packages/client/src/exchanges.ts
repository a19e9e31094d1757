import type { Readable } from 'node:stream';
import { BodyStream } from './body-stream.js';
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
