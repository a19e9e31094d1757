import type { Readable } from 'node:stream';
import type { Engine } from '../engine.js';
import { sendBuffered, sendStreamed, type StreamedReply } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
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

/**
 * Retrieves many messages in order, each as a stream, keeping `ahead` RETR commands queued so
 * the engine can pipeline them (or, without PIPELINING, send each the moment the last reply ends).
 *
 * Moving to the next message destroys a body the caller left unread, so the engine drains it and
 * the session never stalls behind it. Leaving the loop early (break, throw) drains what was
 * already asked for, and the session stays usable.
 */
export async function* retrMany(engine: Engine, numbers: Iterable<number>, ahead: number): AsyncGenerator<RetrievedMessage> {
  const pending: Array<{ n: number; reply: Promise<StreamedReply> }> = [];
  const source = numbers[Symbol.iterator]();
  let current: Readable | undefined;
  const fill = () => {
    while (pending.length < ahead) {
      const next = source.next();
      if (next.done) return;
      const n = messageNumber(next.value);
      const reply = retrStream(engine, n);
      // Awaited in turn below; until then a rejection must not count as unhandled.
      reply.catch(() => {});
      pending.push({ n, reply });
    }
  };
  try {
    fill();
    for (let item = pending.shift(); item !== undefined; item = pending.shift()) {
      fill();
      const { body } = await item.reply;
      current = body;
      yield { n: item.n, body };
      if (!body.readableEnded) body.destroy();
      current = undefined;
    }
  } finally {
    current?.destroy();
    for (const { reply } of pending) {
      reply.then(
        ({ body }) => body.destroy(),
        () => {}, // the caller left; a failure of a reply it will never see is not its concern
      );
    }
  }
}
