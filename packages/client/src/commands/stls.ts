import type { Engine } from '../engine.js';
import { sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { AUTHORIZATION } from './states.js';

/** RFC 2595 section 4 `STLS`: after +OK the next bytes on the wire are the TLS handshake. */
export async function stls(engine: Engine): Promise<void> {
  await sendLine(engine, encodeCommand('STLS'), { allowedIn: AUTHORIZATION, barrier: true, handsOverConnection: true });
}
