import { NO_CAPABILITIES, parseCapabilities, type Capabilities } from '../capabilities.js';
import type { Engine } from '../engine.js';
import { Pop3ProtocolError, Pop3ServerError, type Pop3Error } from '../errors.js';
import { sendBuffered } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import type { StatusLine } from '../protocol/status.js';
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

/**
 * The reply to a CAPA written behind the last line of a login (PASS, or a SASL mechanism's last
 * response) when the server offered PIPELINING: it saves the round trip of asking after the +OK.
 * CAPA is valid in both AUTHORIZATION and TRANSACTION (RFC 2449 section 5), so it is answered
 * whether the login passed or failed. The login exchange stays at the head of the queue and hands
 * this reply the lines that follow its own, so nothing else is read or written in between.
 */
export class CapaBehind {
  static readonly command = encodeCommand('CAPA');
  /** Set by the login exchange once CAPA is on the wire: only then will `promise` settle. */
  sent = false;
  readonly promise: Promise<Capabilities>;
  private resolve!: (capabilities: Capabilities) => void;
  private reject!: (error: Pop3Error) => void;
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor() {
    this.promise = new Promise<Capabilities>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A failed login is reported by the login; this reply's failure is then nobody's to read.
    this.promise.catch(() => {});
  }

  onStatus(status: StatusLine): 'done' | 'block' {
    if (status.status === 'ok') return 'block';
    if (status.status === 'err') {
      this.resolve(NO_CAPABILITIES);
      return 'done';
    }
    throw new Pop3ProtocolError('The server sent a SASL continuation in reply to CAPA', { code: 'POP3_BAD_REPLY', command: 'CAPA' });
  }

  onData(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > MAX_CAPA_BYTES) {
      throw new Pop3ProtocolError(`The reply to CAPA is larger than ${MAX_CAPA_BYTES} octets`, { code: 'POP3_REPLY_TOO_LARGE', command: 'CAPA' });
    }
    this.chunks.push(chunk);
  }

  onEnd(): void {
    this.resolve(parseCapabilities(listingLines(Buffer.concat(this.chunks, this.size))));
  }

  onFail(error: Pop3Error): void {
    this.reject(error);
  }
}
