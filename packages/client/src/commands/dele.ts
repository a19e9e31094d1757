import type { Engine } from '../engine.js';
import { sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { messageNumber } from './list.js';
import { TRANSACTION } from './states.js';

/**
 * RFC 1939 `DELE n` marks a message deleted. The server removes it only at QUIT (UPDATE state);
 * a dropped connection or RSET undoes the mark, which is what makes fetch-then-delete safe.
 */
export async function dele(engine: Engine, n: number): Promise<void> {
  await sendLine(engine, encodeCommand('DELE', messageNumber(n)), { allowedIn: TRANSACTION });
}
