import type { Engine, Exchange } from '../engine.js';
import { Pop3Error, Pop3ProtocolError, Pop3ServerError } from '../errors.js';
import { encodeCommand, type EncodedCommand } from '../protocol/command.js';
import type { StatusLine } from '../protocol/status.js';
import { noop } from './noop.js';

/**
 * Whether a server that does not advertise PIPELINING (RFC 2449 section 6.6) still answers a
 * second command that reached it in the same read as the first.
 *
 * Why ask: in lock-step, popa3d (Debian's, no CAPA at all) writes `+OK`, the body and `.` in three
 * write(2)s with Nagle on. The first goes out at once; the body waits for our ACK of it, and our
 * kernel delays that ACK 40 ms because it expects to piggyback it on our next command, which waits
 * for the body. 44 ms a message, whatever we do on our side of the socket (ours has TCP_NODELAY).
 * Two or more commands in flight end it: our next write carries the ACK.
 *
 * Why not just pipeline: RFC 2449 warns that a server which did not advertise PIPELINING may
 * read a command and discard the rest of its input buffer (a patch to INetSim's POP3 server does
 * just that while its PIPELINING is off), or fail otherwise. So we ask with commands whose
 * loss is harmless, and read the answer so that no reply can be mistaken for another:
 *
 *   C: NOOP                        lock-step first: this server answers NOOP with +OK, as
 *   S: +OK                         RFC 1939 requires in TRANSACTION; anything else, no probe
 *   C: NOOP\r\nNOOP                in one write (one segment, one read at the server)
 *   S: +OK                         the first; only now the sentinel, an unknown command, which
 *   C: XPOPWIRE-PROBE              RFC 1939 section 3 says MUST be answered -ERR
 *   S: +OK                         the second NOOP: it survived the shared read
 *   S: -ERR ...                    the sentinel: the server pipelines
 *
 * A server that discarded the second NOOP answers the sentinel next: -ERR where +OK was due, so
 * we know, stay in lock-step, and nothing is left unanswered. The sentinel is written only after
 * the first reply, so the server has read (and, if it discards, dropped) the pair before it
 * arrives. A server that closes the connection instead fails this session; the caller remembers
 * the server and never probes it again in this process. Nothing here changes the mailbox.
 */
export async function probePipelining(engine: Engine): Promise<boolean> {
  try {
    await noop(engine);
  } catch (error) {
    if (error instanceof Pop3ServerError) return false;
    throw error;
  }
  const probe = new ProbeExchange(engine);
  engine.submit(probe, ['transaction']);
  return probe.promise;
}

const NOOP = encodeCommand('NOOP');
/** Two NOOPs, one write. The display has a line per command, as the trace shows them. */
const TWO_NOOPS: EncodedCommand = { verb: 'NOOP', bytes: Buffer.concat([NOOP.bytes, NOOP.bytes]), display: 'NOOP\nNOOP' };
export const PROBE_SENTINEL = encodeCommand('XPOPWIRE-PROBE');

/** The pair and the sentinel as one exchange: it stays at the head of the queue for all three replies. */
class ProbeExchange implements Exchange {
  readonly command = TWO_NOOPS;
  /** Nothing else may reach the wire while the replies are being counted. */
  readonly barrier = true;
  readonly promise: Promise<boolean>;
  private resolve!: (pipelines: boolean) => void;
  private reject!: (error: Pop3Error) => void;
  private replies = 0;

  constructor(private readonly engine: Engine) {
    this.promise = new Promise<boolean>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onStatus(status: StatusLine): 'done' | 'more' {
    if (status.status === 'continue') {
      throw new Pop3ProtocolError('The server sent a SASL continuation in reply to NOOP', { code: 'POP3_BAD_REPLY', command: 'NOOP' });
    }
    this.replies += 1;
    if (this.replies === 1) {
      this.engine.writeContinuation(PROBE_SENTINEL);
      return 'more';
    }
    if (this.replies === 2) {
      if (status.status === 'ok') return 'more'; // the second NOOP; the sentinel's reply follows
      this.resolve(false); // the sentinel's -ERR: the second NOOP was dropped
      return 'done';
    }
    // A sentinel answered +OK breaks a MUST of RFC 1939: in sync, but not a server to pipeline to.
    this.resolve(status.status === 'err');
    return 'done';
  }

  onData(): void {}

  onEnd(): void {}

  onFail(error: Pop3Error): void {
    this.reject(error);
  }
}
