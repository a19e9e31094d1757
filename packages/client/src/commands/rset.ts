import type { Engine } from '../engine.js';
import { sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { TRANSACTION } from './states.js';

/** RFC 1939 `RSET`: unmarks every message marked deleted in this session. */
export async function rset(engine: Engine): Promise<void> {
  await sendLine(engine, encodeCommand('RSET'), { allowedIn: TRANSACTION });
}
