import type { Engine } from '../engine.js';
import { sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { TRANSACTION } from './states.js';

/** RFC 1939 `NOOP`: proves the session is alive (the pool's check before reusing one). */
export async function noop(engine: Engine): Promise<void> {
  await sendLine(engine, encodeCommand('NOOP'), { allowedIn: TRANSACTION });
}
