import type { Socket } from 'node:net';
import {
  Pop3ConnectionError,
  Pop3Error,
  Pop3ProtocolError,
  Pop3TimeoutError,
  Pop3UsageError,
} from './errors.js';
import type { EncodedCommand } from './protocol/command.js';
import { DotDecoder } from './protocol/dot-decoder.js';
import { LineReader } from './protocol/line-reader.js';
import { parseStatusLine, type StatusLine } from './protocol/status.js';

/** RFC 1939 section 3. `closed` is ours: the connection is gone, nothing more can be sent. */
export type SessionState = 'authorization' | 'transaction' | 'update' | 'closed';

export interface TraceEvent {
  /** `client`: a line we wrote (secrets shown as `***`); `server`: a status line, or a block summary. */
  readonly direction: 'client' | 'server';
  readonly line: string;
}

export type TraceFn = (event: TraceEvent) => void;

/**
 * One command in flight, from the engine's side: it is written, then fed its reply.
 * The generic kinds (one line, a buffered block, a streamed block) are in `exchanges.ts`.
 */
export interface Exchange {
  /** Undefined only for the greeting, which is a reply to the connection itself. */
  readonly command: EncodedCommand | undefined;
  /**
   * Nothing is written after a barrier until its reply is complete, even when pipelining: a
   * command whose outcome changes the session (USER, PASS, AUTH, STLS) must not have others
   * queued behind it on the wire.
   */
  readonly barrier: boolean;
  /**
   * After this command's +OK the connection changes hands (STLS: to the TLS handshake), so any
   * byte after that reply is an attack, not a reply.
   */
  readonly handsOverConnection?: boolean;
  /**
   * Longest line accepted while this exchange is at the head, instead of the session's bound: SASL
   * challenges (a SCRAM or GSSAPI token, an OAuth error document) can exceed a status line's.
   */
  readonly maxLineLength?: number;
  /**
   * The server's continuation lines (`+ ...`) carry SASL data, traced as `+ ***`: a challenge can
   * be replayed or reveal the user (LOGIN's challenges, SCRAM's salt and nonce, the OAuth error
   * document), and the trace promises every SASL line is `***` in both directions.
   */
  readonly secretContinuations?: boolean;
  /**
   * The status line arrived. `block`: a multi-line body follows; `more`: a SASL exchange goes on
   * (the exchange wrote its response); `done`: this reply is complete.
   */
  onStatus(line: StatusLine): 'done' | 'block' | 'more';
  /** Body content, dot-unstuffed: a view of the socket's chunk. */
  onData(chunk: Buffer): void;
  /** The terminating `.` line arrived. */
  onEnd(): void;
  /** The connection failed, or was closed, before this exchange was complete. */
  onFail(error: Pop3Error): void;
}

export interface EngineOptions {
  /** Milliseconds without a byte from the server, while a reply is awaited, before giving up. */
  readonly timeout: number;
  /** Longest status line accepted; see LineReader for the threat. */
  readonly maxLineLength: number;
  /** Commands in flight at once when the server pipelines (RFC 2449 PIPELINING). */
  readonly pipelineDepth: number;
  /**
   * Body octets received but not yet read by their consumers, past which the socket is paused.
   * It bounds memory however slow the consumer, and however many small pipelined bodies arrive
   * before it gets to them.
   */
  readonly maxBufferedBytes: number;
  readonly trace?: TraceFn | undefined;
  /** Told when the protocol broke while several commands were in flight (see Pop3Client). */
  readonly onPipelineFailure?: (() => void) | undefined;
}

/**
 * The session engine: a queue of commands, the one reader of the socket, and the session state.
 *
 * Replies are matched to commands strictly in order. Each socket chunk is framed in place: status
 * lines by the LineReader, bodies by the DotDecoder, and a single chunk may hold the end of one
 * body and the replies to several pipelined commands after it. A body whose consumer went away is
 * drained here, so the next reply is always read from a line start.
 *
 * Without PIPELINING the next command is written the moment the previous reply is complete; with
 * it, up to `pipelineDepth` commands are on the wire and each completed reply lets one more go
 * (a sliding window, never batch-then-wait). The window bounds what the server can have queued
 * for us, so a slow consumer pauses the socket instead of growing memory.
 */
export class Engine {
  state: SessionState = 'authorization';
  /** Set once the server has advertised PIPELINING (and the caller did not turn it off). */
  pipelining = false;

  private socket: Socket;
  private readonly waiting = new Fifo<Exchange>();
  private readonly inflight = new Fifo<Exchange>();
  private readonly lines: LineReader;
  private readonly dot = new DotDecoder();
  private inBlock = false;
  private blockBytes = 0;
  /** Octets in body streams not yet read by their consumer (see `trackBuffered`). */
  private buffered = 0;
  private paused = false;
  /** Inside submitMany: commands are queued, not yet written. */
  private holding = false;
  private depth: number;
  /** Whether a command now in flight was written before the reply to an earlier one. */
  private overlapped = false;
  private failure: Pop3Error | undefined;
  private readonly closeWaiters: Array<() => void> = [];
  private readonly emit = (chunk: Buffer): void => {
    this.blockBytes += chunk.length;
    (this.inflight.peek() as Exchange).onData(chunk);
  };

  constructor(
    socket: Socket,
    private readonly options: EngineOptions,
  ) {
    this.lines = new LineReader(options.maxLineLength);
    this.depth = options.pipelineDepth;
    this.socket = socket;
    this.attach(socket);
  }

  /** Commands in flight at once when pipelining. */
  get pipelineDepth(): number {
    return this.depth;
  }

  /**
   * Lowers the pipelining window, for a server that pipelines without having said so (see
   * commands/pipelining-probe.ts): it earned a window, not the one a promise would.
   */
  limitPipelineDepth(max: number): void {
    this.depth = Math.min(this.depth, max);
  }

  /** Whether anything has gone wrong or the session ended: no command can be sent. */
  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** The greeting is the reply to connecting: expected before any command is written. */
  expectGreeting(exchange: Exchange): void {
    this.inflight.push(exchange);
  }

  /**
   * Queues a command. It is refused here, before anything is written, if the session is closed
   * or in a state where POP3 does not allow it.
   */
  submit(exchange: Exchange, allowedIn: readonly SessionState[]): void {
    if (this.failure !== undefined) {
      exchange.onFail(
        new Pop3UsageError(`The connection is closed; ${exchange.command?.verb ?? 'the command'} was not sent`, {
          code: 'POP3_CLOSED',
          command: exchange.command?.display,
          cause: this.failure,
        }),
      );
      return;
    }
    if (!allowedIn.includes(this.state)) {
      exchange.onFail(
        new Pop3UsageError(
          `${exchange.command?.verb} is not allowed in the ${this.state.toUpperCase()} state` +
            ` (allowed in: ${allowedIn.map((s) => s.toUpperCase()).join(', ')})`,
          { code: 'POP3_INVALID_STATE', command: exchange.command?.display },
        ),
      );
      return;
    }
    this.waiting.push(exchange);
    this.pump();
  }

  /**
   * Queues the commands `submitAll` submits, and only then writes what the window allows: a batch
   * goes out in one write. (Submitted one by one, each RETR of retrieveMany's first window of
   * 1,024 went out in a write(2) of its own: 1,030 writes for 10,000 messages.)
   */
  submitMany(submitAll: () => void): void {
    this.holding = true;
    try {
      submitAll();
    } finally {
      this.holding = false;
    }
    this.pump();
  }

  /** Writes a line inside the current exchange (a SASL response after a `+` challenge). */
  writeContinuation(command: EncodedCommand): void {
    this.write(command);
  }

  /**
   * Body streams report here what they hold unread: + when fed, - when read or destroyed. Past
   * `maxBufferedBytes` the socket is paused (after the current chunk); it resumes once the
   * consumers have read enough.
   */
  trackBuffered(delta: number): void {
    this.buffered += delta;
    if (delta < 0) this.resume();
  }

  /** Resumes reading if a pause is no longer needed. */
  resume(): void {
    if (!this.paused || this.failure !== undefined || this.buffered > this.options.maxBufferedBytes) return;
    this.paused = false;
    this.socket.resume();
    // A paused socket had its idle timer ignored; start the count afresh.
    this.socket.setTimeout(this.options.timeout);
  }

  /**
   * Hands the socket over for a TLS upgrade after +OK to STLS. Any byte already received past that
   * reply arrived before the handshake, in the clear: it is injected and the session is failed
   * (RFC 2595 section 3.1; the class of CVE-2011-0411).
   */
  detachForUpgrade(): Socket {
    if (this.failure !== undefined) throw this.failure;
    if (this.lines.pending > 0 || this.inflight.length > 0) {
      const error = stlsInjection();
      this.fail(error);
      throw error;
    }
    this.detach(this.socket);
    return this.socket;
  }

  /** Continues the session on the upgraded socket. */
  reattach(socket: Socket): void {
    this.socket = socket;
    this.attach(socket);
  }

  /** Fails everything queued and in flight with `error`, and destroys the socket. Idempotent. */
  fail(error: Pop3Error): void {
    if (this.failure !== undefined) return;
    if (error instanceof Pop3ProtocolError && this.overlapped) this.options.onPipelineFailure?.();
    this.failure = error;
    this.state = 'closed';
    this.socket.destroy();
    for (const exchange of this.inflight.drain()) exchange.onFail(error);
    for (const exchange of this.waiting.drain()) exchange.onFail(error);
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }

  /** Resolves once the socket has closed (after QUIT, the server closes it). */
  whenClosed(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  private pump(): void {
    if (this.holding) return;
    const depth = this.depth;
    // Refill a pipelined window in batches of an eighth, not one command per reply: one write
    // (one syscall, one TCP segment) then carries many commands, and the window stays at least
    // seven eighths full, so the line never goes idle.
    if (this.pipelining && this.inflight.length > 0 && depth - this.inflight.length < Math.min(this.waiting.length, Math.ceil(depth / 8))) {
      return;
    }
    let corked = false;
    while (this.waiting.length > 0) {
      const next = this.waiting.peek() as Exchange;
      const last = this.inflight.last();
      if (last !== undefined) {
        if (!this.pipelining || next.barrier || last.barrier) break;
        if (this.inflight.length >= depth) break;
      }
      if (!corked) {
        // Gather the commands of one turn into one write (one TCP segment, one syscall).
        this.socket.cork();
        corked = true;
      }
      this.waiting.shift();
      if (this.inflight.length > 0) this.overlapped = true;
      this.inflight.push(next);
      this.write(next.command as EncodedCommand);
    }
    if (corked) this.socket.uncork();
  }

  private write(command: EncodedCommand): void {
    const trace = this.options.trace;
    // One line per command: a display holds several when one write carries several commands.
    if (trace !== undefined) for (const line of command.display.split('\n')) trace({ direction: 'client', line });
    this.socket.write(command.bytes);
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.frame(chunk);
    } catch (error) {
      this.fail(
        error instanceof Pop3Error
          ? error
          : new Pop3ProtocolError('Internal error while reading a reply', { code: 'POP3_BAD_REPLY', cause: error }),
      );
      return;
    }
    if (this.buffered > this.options.maxBufferedBytes && this.failure === undefined && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.pump();
  };

  private frame(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && this.failure === undefined) {
      const exchange = this.inflight.peek();
      if (exchange === undefined) {
        throw new Pop3ProtocolError('The server sent data that answers no command', { code: 'POP3_BAD_REPLY' });
      }
      if (this.inBlock) {
        const end = this.dot.decode(chunk, offset, this.emit);
        if (end === -1) return;
        offset = end;
        this.inBlock = false;
        this.options.trace?.({ direction: 'server', line: `[${this.blockBytes} octets, then .]` });
        // Still at the head while it finishes: if it throws (a malformed listing), it is failed too.
        exchange.onEnd();
        this.complete();
        continue;
      }
      this.lines.setMaxLength(exchange.maxLineLength ?? this.options.maxLineLength);
      const end = this.lines.push(chunk, offset);
      if (end === -1) return;
      offset = end;
      const status = parseStatusLine(this.lines.take());
      this.options.trace?.({ direction: 'server', line: traceStatus(status, exchange.secretContinuations === true) });
      if (exchange.handsOverConnection && status.status === 'ok' && offset < chunk.length) throw stlsInjection();
      switch (exchange.onStatus(status)) {
        case 'block':
          this.inBlock = true;
          this.blockBytes = 0;
          this.dot.reset();
          break;
        case 'done':
          this.complete();
          break;
        case 'more':
          break;
      }
    }
  }

  private complete(): void {
    this.inflight.shift();
    if (this.inflight.length === 0) this.overlapped = false;
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('timeout', this.onTimeout);
    socket.setTimeout(this.options.timeout);
    if (this.paused) socket.pause();
  }

  private detach(socket: Socket): void {
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
    socket.off('timeout', this.onTimeout);
    socket.setTimeout(0);
    socket.pause();
  }

  private readonly onError = (error: Error): void => {
    this.fail(new Pop3ConnectionError(`Connection error: ${error.message}`, { code: 'POP3_CONNECTION_CLOSED', cause: error }));
  };

  private readonly onClose = (): void => {
    const pending = this.inflight.peek() ?? this.waiting.peek();
    const what = pending?.command ? ` while waiting for the reply to ${pending.command.verb}` : '';
    this.fail(
      new Pop3ConnectionError(`The server closed the connection${what}`, {
        code: this.state === 'update' && pending === undefined ? 'POP3_CLOSED' : 'POP3_CONNECTION_CLOSED',
        command: pending?.command?.display,
      }),
    );
  };

  private readonly onTimeout = (): void => {
    // Idle with nothing asked, or paused because our own consumer is slow: not the server's fault.
    if (this.inflight.length === 0 || this.paused) return;
    const pending = this.inflight.peek() as Exchange;
    this.fail(
      new Pop3TimeoutError(
        `No reply from the server within ${this.options.timeout} ms` +
          (pending.command ? ` to ${pending.command.verb}` : ' (greeting)'),
        { command: pending.command?.display },
      ),
    );
  };
}

function stlsInjection(): Pop3ProtocolError {
  return new Pop3ProtocolError('The server sent data after +OK to STLS, before the TLS handshake', {
    code: 'POP3_STLS_INJECTION',
  });
}

function traceStatus(status: StatusLine, secretContinuation: boolean): string {
  if (status.status === 'continue' && secretContinuation) return '+ ***';
  const head = status.status === 'ok' ? '+OK' : status.status === 'err' ? '-ERR' : '+';
  const code = status.code === undefined ? '' : ` [${status.code}]`;
  return `${head}${code}${status.text ? ` ${status.text}` : ''}`;
}

/**
 * A first-in first-out queue with O(1) shift: a pipelined retrieval of a large mailbox queues
 * tens of thousands of commands, and Array.prototype.shift is O(n).
 */
class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  last(): T | undefined {
    return this.length > 0 ? this.items[this.items.length - 1] : undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes and returns everything, in order. */
  drain(): T[] {
    const rest = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}
