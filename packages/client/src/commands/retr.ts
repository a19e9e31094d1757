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
