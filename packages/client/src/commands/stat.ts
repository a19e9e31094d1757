import type { Engine } from '../engine.js';
import { sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { parseCount, tokens } from './listing.js';
import { TRANSACTION } from './states.js';

export interface MailboxStat {
  /** Messages in the maildrop, not counting those marked deleted in this session. */
  readonly count: number;
  /** Their total size in octets, as the server counts it (see `list` on why that is approximate). */
  readonly size: number;
}

/** RFC 1939: `STAT` -> `+OK nn mm`. */
export function stat(engine: Engine): Promise<MailboxStat> {
  return sendLine(engine, encodeCommand('STAT'), { allowedIn: TRANSACTION }, ({ text }) => {
    const [count, size] = tokens(text);
    return {
      count: parseCount(count, 'the message count', 'STAT', text),
      size: parseCount(size, 'the size', 'STAT', text),
    };
  });
}
