import type { Readable } from 'node:stream';
import { BodyStream } from '../body-stream.js';
import type { Engine, Exchange } from '../engine.js';
import { Pop3ProtocolError, type Pop3Error } from '../errors.js';
import { sendBuffered, sendStreamed, serverError, type StreamedReply } from '../exchanges.js';
import { encodeCommand, type EncodedCommand } from '../protocol/command.js';
import type { StatusLine } from '../protocol/status.js';
import { messageNumber } from './list.js';
import { TRANSACTION } from './states.js';

/** RFC 1939 `RETR n`: the message's bytes, dot-unstuffed, as a stream. */
export function retrStream(engine: Engine, n: number): Promise<StreamedReply> {
  return sendStreamed(engine, encodeCommand('RETR', messageNumber(n)), { allowedIn: TRANSACTION });
}

/** The same bytes in one Buffer, for callers that want the whole message anyway. */
export function retrBuffer(engine: Engine, n: number, maxBytes: number): Promise<Buffer> {
  return sendBuffered(engine, encodeCommand('RETR', messageNumber(n)), { allowedIn: TRANSACTION }, maxBytes, asIs);
}

export const asIs = (body: Buffer): Buffer => body;

export interface RetrievedMessage {
  readonly n: number;
  /** The message's exact bytes. Valid until the loop moves on: read it (or pipe it) before then. */
  readonly body: Readable;
}

/** What `retrMany` needs before its first RETR; worked out at the first `next()`, as a generator's body would be. */
export interface RetrievalPlan {
  readonly numbers: Iterable<number>;
  /** RETR commands kept queued ahead of the one being read. */
  readonly ahead: number;
}

/**
 * Retrieves many messages in order, each as a stream, keeping `ahead` RETR commands queued so
 * the engine can pipeline them (or, without PIPELINING, send each the moment the last reply ends).
 *
 * Moving to the next message destroys a body the caller left unread, so the engine drains it and
 * the session never stalls behind it. Leaving the loop early (break, throw) drains what was
 * already asked for, and the session stays usable. A -ERR (no such message) is thrown at its
 * turn, and ends the loop the same way.
 *
 * An async generator in behaviour (next, return, throw; the plan is made at the first next()),
 * written by hand: with a generator and a promise per RETR, the per-message machinery (the
 * promise, its catch, the generator's resumptions, `yield*` through retrieveMany) was the
 * largest part of the library's CPU in a profile of 10,000 messages of 4 KB. Here the RETRs'
 * exchanges wake the one waiting `next()` themselves.
 */
export function retrMany(engine: Engine, plan: () => Promise<RetrievalPlan> | RetrievalPlan): AsyncGenerator<RetrievedMessage, undefined> {
  return new Retrieval(engine, plan);
}

type Result = IteratorResult<RetrievedMessage, undefined>;
const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

class Retrieval implements AsyncGenerator<RetrievedMessage, undefined> {
  /** RETRs asked for and not yet handed out, oldest first, from `head`. */
  private queue: Array<RetrExchange | undefined> = [];
  private head = 0;
  private source: Iterator<number> | undefined;
  private ahead = 0;
  /** The body handed out last: destroyed if unread when the loop moves on. */
  private current: BodyStream | undefined;
  private finished = false;
  /** The next() in progress, while it waits (for the plan, or for a status line); cleared where it is settled. */
  private pending: Promise<Result> | undefined;
  /** A `next()` waiting for the head RETR's status line. */
  private waiting: { resolve: (result: Result) => void; reject: (error: unknown) => void } | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly plan: () => Promise<RetrievalPlan> | RetrievalPlan,
  ) {}

  next(): Promise<Result> {
    if (this.finished) return Promise.resolve(DONE);
    // A second next() before the first settled: answered in order, after it.
    if (this.pending !== undefined) return this.pending.then(this.nextAfter, this.nextAfter);
    if (this.source === undefined) return (this.pending = this.start());
    const previous = this.current;
    this.current = undefined;
    if (previous !== undefined && !previous.readToEnd) previous.destroy();
    try {
      this.fill();
      const head = this.queue[this.head];
      if (head === undefined) {
        this.finished = true;
        return Promise.resolve(DONE);
      }
      if (head.settled) return Promise.resolve(this.take(head));
    } catch (error) {
      this.stop();
      return Promise.reject(error);
    }
    return (this.pending = new Promise<Result>((resolve, reject) => {
      this.waiting = { resolve, reject };
    }));
  }

  return(): Promise<Result> {
    this.stop();
    return Promise.resolve(DONE);
  }

  throw(error: unknown): Promise<Result> {
    this.stop();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.stop();
  }

  /** The head RETR's status line arrived, or it failed: a waiting next() gets it. */
  settled(exchange: RetrExchange): void {
    const waiting = this.waiting;
    if (waiting === undefined || this.queue[this.head] !== exchange) return;
    this.waiting = undefined;
    this.pending = undefined;
    try {
      waiting.resolve(this.take(exchange));
    } catch (error) {
      waiting.reject(error);
    }
  }

  private async start(): Promise<Result> {
    try {
      const { numbers, ahead } = await this.plan();
      this.source = numbers[Symbol.iterator]();
      this.ahead = ahead;
    } catch (error) {
      this.stop();
      throw error;
    }
    this.pending = undefined;
    return this.next();
  }

  private readonly nextAfter = (): Promise<Result> => this.next();

  /** Hands out the head RETR's body, or throws its error (and the loop ends). */
  private take(head: RetrExchange): Result {
    this.queue[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (head.error !== undefined) {
      this.stop();
      throw head.error;
    }
    const body = head.body as BodyStream;
    this.current = body;
    return { value: { n: head.n, body }, done: false };
  }

  private fill(): void {
    // The first window is many RETRs: queued together, they go out in one write.
    if (this.ahead - (this.queue.length - this.head) > 1) this.engine.submitMany(this.fillNow);
    else this.fillNow();
  }

  private readonly fillNow = (): void => {
    const source = this.source as Iterator<number>;
    while (this.queue.length - this.head < this.ahead) {
      const next = source.next();
      if (next.done === true) return;
      const exchange = new RetrExchange(this, this.engine, messageNumber(next.value));
      this.queue.push(exchange);
      this.engine.submit(exchange, TRANSACTION);
    }
  };

  /** The loop ended (break, throw, a -ERR, done): bodies handed out or on their way are drained. */
  private stop(): void {
    if (this.finished) return;
    this.finished = true;
    this.current?.destroy();
    this.current = undefined;
    for (let i = this.head; i < this.queue.length; i++) this.queue[i]?.abandon();
    this.queue = [];
    this.head = 0;
    const waiting = this.waiting;
    this.waiting = undefined;
    this.pending = undefined;
    waiting?.resolve(DONE);
  }
}

/**
 * One RETR of a retrieval. Its body is created when the +OK arrives; a -ERR, or a failure of the
 * connection before then, is kept for its turn in the loop.
 */
class RetrExchange implements Exchange {
  readonly command: EncodedCommand;
  readonly barrier = false;
  body: BodyStream | undefined;
  error: Pop3Error | undefined;
  settled = false;
  /** The loop ended before this reply was read: its body is discarded as it arrives. */
  private abandoned = false;

  constructor(
    private readonly retrieval: Retrieval,
    private readonly engine: Engine,
    readonly n: number,
  ) {
    this.command = retrCommand(n);
  }

  onStatus(status: StatusLine): 'done' | 'block' {
    if (status.status === 'continue') {
      throw new Pop3ProtocolError('The server sent a SASL continuation in reply to RETR', { code: 'POP3_BAD_REPLY', command: this.command.display });
    }
    if (status.status === 'err') {
      this.error = serverError(status, this.command);
      this.settle();
      return 'done';
    }
    if (!this.abandoned) {
      this.body = new BodyStream(this.engine);
      this.settle();
    }
    return 'block';
  }

  onData(chunk: Buffer): void {
    this.body?.feed(chunk);
  }

  onEnd(): void {
    this.body?.feed(null);
  }

  onFail(error: Pop3Error): void {
    if (this.body === undefined) {
      this.error = error;
      this.settle();
    } else if (!this.body.destroyed && !this.body.readableEnded) {
      this.body.destroy(error);
    }
  }

  abandon(): void {
    this.abandoned = true;
    this.body?.destroy();
  }

  private settle(): void {
    this.settled = true;
    if (!this.abandoned) this.retrieval.settled(this);
  }
}

/** `RETR n` for a number messageNumber() checked: the same bytes encodeCommand makes, without its checks per message. */
function retrCommand(n: number): EncodedCommand {
  const display = `RETR ${n}`;
  return { verb: 'RETR', bytes: Buffer.from(`${display}\r\n`, 'latin1'), display };
}
