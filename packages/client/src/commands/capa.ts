import { NO_CAPABILITIES, parseCapabilities, type Capabilities } from '../capabilities.js';
import type { Engine } from '../engine.js';
import { Pop3ServerError } from '../errors.js';
import { sendBuffered } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { listingLines } from './listing.js';
import { ANY_OPEN } from './states.js';

/** A capability list is a few hundred octets; 64 KiB is generous and still bounded. */
const MAX_CAPA_BYTES = 64 * 1024;

/**
 * RFC 2449 `CAPA`. A server from before RFC 2449 answers -ERR: that means "no capabilities",
 * not a failure.
 */
export async function capa(engine: Engine): Promise<Capabilities> {
  try {
    return await sendBuffered(engine, encodeCommand('CAPA'), { allowedIn: ANY_OPEN }, MAX_CAPA_BYTES, (body) =>
      parseCapabilities(listingLines(body)),
    );
  } catch (error) {
    if (error instanceof Pop3ServerError) return NO_CAPABILITIES;
    throw error;
  }
}
