import type { Engine } from '../engine.js';
import { Pop3UsageError } from '../errors.js';
import { sendBuffered, sendStreamed, type StreamedReply } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { messageNumber } from './list.js';
import { asIs } from './retr.js';
import { TRANSACTION } from './states.js';

/** RFC 1939 `TOP n lines`: the headers, the blank line, and the first `lines` lines of the body. */
export function topStream(engine: Engine, n: number, lines: number): Promise<StreamedReply> {
  return sendStreamed(engine, topCommand(n, lines), { allowedIn: TRANSACTION });
}

export function topBuffer(engine: Engine, n: number, lines: number, maxBytes: number): Promise<Buffer> {
  return sendBuffered(engine, topCommand(n, lines), { allowedIn: TRANSACTION }, maxBytes, asIs);
}

function topCommand(n: number, lines: number) {
  if (!Number.isSafeInteger(lines) || lines < 0) {
    throw new Pop3UsageError(`TOP takes a line count from 0 up; got ${String(lines)}`, { code: 'POP3_INVALID_ARGUMENT' });
  }
  return encodeCommand('TOP', messageNumber(n), lines);
}
