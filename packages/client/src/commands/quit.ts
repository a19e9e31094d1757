import type { Engine } from '../engine.js';
import { sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { ANY_OPEN } from './states.js';

/**
 * RFC 1939 `QUIT`. In TRANSACTION it moves the session to UPDATE, where the server removes the
 * messages marked deleted; its +OK is the only proof that deletions happened. A -ERR here means
 * some deletions failed (RFC 1939 section 6), and reaches the caller as a Pop3ServerError.
 */
export async function quit(engine: Engine): Promise<void> {
  await sendLine(engine, encodeCommand('QUIT'), {
    allowedIn: ANY_OPEN,
    barrier: true,
    // From AUTHORIZATION the server just closes; from TRANSACTION it enters UPDATE first.
    onOk: () => {
      engine.state = engine.state === 'transaction' ? 'update' : 'closed';
    },
  });
}
