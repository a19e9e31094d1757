import { AUTHORIZATION } from '../commands/states.js';
import type { Engine, Exchange } from '../engine.js';
import { Pop3AuthenticationError, Pop3Error, Pop3ProtocolError } from '../errors.js';
import { withResponseCode } from './user-pass.js';
import { CapaBehind } from '../commands/capa.js';
import { encodeCommand, encodeSaslResponse, MAX_COMMAND_LINE, Sensitive, type EncodedCommand } from '../protocol/command.js';
import type { StatusLine } from '../protocol/status.js';
import type { SaslMechanismName } from './select.js';

/**
 * The client side of one SASL mechanism (RFC 4422 section 5). The exchange below speaks POP3's
 * framing (RFC 5034); a mechanism sees only the decoded bytes of challenges and answers with bytes.
 */
export interface SaslMechanism {
  readonly name: SaslMechanismName;
  /**
   * The client's first message for a client-first mechanism (PLAIN, SCRAM, the OAuth ones), or
   * undefined for a server-first one (LOGIN, CRAM-MD5). Runs before AUTH is written, so a
   * credential that cannot be used (a NUL in a PLAIN password, a token function that throws)
   * fails with nothing sent.
   */
  start(): Promise<Buffer | undefined>;
  /**
   * Keep the initial response off the AUTH line even when it fits, and send it after the server's
   * empty `+` instead (RFC 5034 section 4 allows both).
   */
  readonly deferInitialResponse?: boolean;
  /** The answer to a challenge. A Pop3Error thrown here cancels the exchange with `*`. */
  step(challenge: Buffer): Promise<Buffer>;
  /**
   * True once the response `step` just returned is the mechanism's last: the server's next line
   * can only be +OK or -ERR, never another challenge (SCRAM's empty answer to server-final,
   * LOGIN's password, CRAM-MD5's digest). Only then may a CAPA go out right behind it: sent
   * while a challenge could still come, the server would read "CAPA" as our answer to it.
   */
  isComplete?(): boolean;
  /**
   * Runs at +OK. Throws when the server claims success without proving what the mechanism requires
   * of it (SCRAM's server signature): the connection is then closed, not used.
   */
  finish?(): void;
  /** What the server said inside the mechanism about a failure (OAuth's error document, SCRAM's `e=`). */
  readonly failureDetail?: string | undefined;
}

/**
 * Longest challenge line accepted during AUTH. The session's status-line bound (8 KiB by default)
 * is too small for some challenges (a Kerberos ticket, an OAuth error document with a long scope
 * list); 64 KiB is far above any we know of and still stops a server that never ends the line.
 */
export const MAX_CHALLENGE_LINE = 64 * 1024;

/**
 * Runs `AUTH mechanism` to its end (RFC 5034 section 4). Resolves at +OK, with the session in the
 * TRANSACTION state; rejects with a Pop3AuthenticationError carrying the server's response code
 * at -ERR; after a local failure, sends `*`, waits for the server's -ERR and rejects with that
 * failure.
 */
export async function runSasl(engine: Engine, mechanism: SaslMechanism, capaBehind?: CapaBehind): Promise<void> {
  const initial = await mechanism.start();
  // RFC 5034 section 4: a zero-length initial response is sent as "=" on the AUTH line.
  const inline = initial === undefined ? undefined : initial.length === 0 ? '=' : initial.toString('base64');
  // RFC 2449 section 4: the whole AUTH line, CRLF included, must stay within 255 octets.
  const fits = inline !== undefined && `AUTH ${mechanism.name} ${inline}\r\n`.length <= MAX_COMMAND_LINE;
  const exchange =
    fits && mechanism.deferInitialResponse !== true
      ? new SaslExchange(engine, mechanism, encodeCommand('AUTH', mechanism.name, new Sensitive(inline)), true, undefined, capaBehind)
      : new SaslExchange(engine, mechanism, encodeCommand('AUTH', mechanism.name), false, initial, capaBehind);
  engine.submit(exchange, AUTHORIZATION);
  return exchange.promise;
}

/** A challenge the mechanism cannot answer: a server that does not follow it, or an impostor. */
export function badChallenge(mechanism: SaslMechanismName, what: string): Pop3ProtocolError {
  return new Pop3ProtocolError(`${mechanism}: ${what}`, { code: 'POP3_BAD_REPLY' });
}

/** RFC 5801 section 4 (SCRAM's and OAUTHBEARER's GS2 header): "=" and "," in a name become "=3D" and "=2C". */
export function escapeSaslName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

class SaslExchange implements Exchange {
  readonly barrier = true;
  readonly maxLineLength = MAX_CHALLENGE_LINE;
  readonly secretContinuations = true;
  readonly promise: Promise<void>;
  private resolve!: () => void;
  private reject!: (error: Pop3Error) => void;
  private settled = false;
  /** A challenge is being answered (a step may be slow: SCRAM runs PBKDF2 off the event loop). */
  private busy = false;
  /** Set once `*` is sent: the failure to report when the server confirms the cancel with -ERR. */
  private cancelled: Pop3Error | undefined;
  constructor(
    private readonly engine: Engine,
    private readonly mechanism: SaslMechanism,
    readonly command: EncodedCommand,
    /**
     * Whether anything besides the mechanism's name reached the server. Until then, a -ERR refuses
     * the mechanism, not the credentials.
     */
    private answered: boolean,
    /** A client-first message kept off the AUTH line: the answer to the server's first, empty `+`. */
    private pendingInitial: Buffer | undefined,
    /**
     * A CAPA to write behind the mechanism's last response, when the server offered PIPELINING.
     * Its reply follows AUTH's +OK or -ERR and is read here, before the engine moves on.
     */
    private readonly capaBehind: CapaBehind | undefined,
  ) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onStatus(status: StatusLine): 'done' | 'block' | 'more' {
    // AUTH's own reply was read: this one is the pipelined CAPA's.
    if (this.settled && this.capaBehind?.sent === true) return this.capaBehind.onStatus(status);
    if (status.status === 'continue') {
      if (this.capaBehind?.sent === true) {
        // The mechanism said its last response was sent, so the server had no challenge left to send.
        throw badChallenge(this.mechanism.name, 'the server sent a challenge after the last response');
      }
      if (this.busy || this.cancelled !== undefined) {
        throw badChallenge(this.mechanism.name, 'the server sent a challenge before the previous one was answered');
      }
      this.busy = true;
      void this.answer(status.text);
      return 'more';
    }
    // What is thrown here makes the engine close the connection, and reach us again via onFail.
    if (status.status === 'ok') {
      // The server says we are in, and we cannot trust it.
      if (this.cancelled !== undefined) throw this.cancelled;
      if (this.busy) throw badChallenge(this.mechanism.name, 'the server accepted the login before its challenge was answered');
      // SCRAM's server signature was checked in `step` before its last response (and CAPA) were
      // written; this refuses a +OK that skipped it. Nothing but CAPA is read before it runs.
      this.mechanism.finish?.();
      this.settled = true;
      this.engine.state = 'transaction';
      this.resolve();
      return this.capaBehind?.sent === true ? 'more' : 'done';
    }
    // After "*": a failure of the server's making (a bad signature, a malformed challenge) closes
    // the connection; one of ours (a response too long to send) leaves it usable.
    if (this.cancelled !== undefined && !this.cancelled.connectionUsable) throw this.cancelled;
    this.settled = true;
    this.reject(this.cancelled ?? this.refusal(status));
    // CAPA is valid in AUTHORIZATION too: its reply follows the -ERR and is read, not mistaken for another.
    return this.capaBehind?.sent === true ? 'more' : 'done';
  }

  onData(chunk: Buffer): void {
    this.capaBehind?.onData(chunk);
  }

  onEnd(): void {
    this.capaBehind?.onEnd();
  }

  onFail(error: Pop3Error): void {
    if (this.capaBehind?.sent === true) this.capaBehind.onFail(error);
    if (this.settled) return;
    this.settled = true;
    this.reject(this.cancelled ?? error);
  }

  private async answer(text: string): Promise<void> {
    let response: Buffer;
    try {
      if (this.pendingInitial !== undefined) {
        // RFC 4422 section 5: the server's challenge to a client-first mechanism is empty; its
        // text, if any, is not base64 data and carries nothing for us.
        response = this.pendingInitial;
        this.pendingInitial = undefined;
      } else {
        response = await this.mechanism.step(decodeChallenge(this.mechanism.name, text));
      }
      if (this.settled || this.engine.closed) return;
      this.busy = false;
      this.answered = true;
      const encoded = encodeResponse(response);
      if (this.capaBehind !== undefined && this.engine.pipelining && this.mechanism.isComplete?.() === true) {
        // One write: the last response and CAPA, read back in that order (RFC 2449 PIPELINING).
        this.capaBehind.sent = true;
        this.engine.writeContinuation({
          verb: encoded.verb,
          bytes: Buffer.concat([encoded.bytes, CapaBehind.command.bytes]),
          display: `${encoded.display}\n${CapaBehind.command.display}`,
        });
      } else {
        this.engine.writeContinuation(encoded);
      }
    } catch (error) {
      if (this.settled || this.engine.closed) return;
      this.busy = false;
      this.cancelled = asPop3Error(this.mechanism.name, error);
      // RFC 5034 section 4: "*" cancels; the server must answer -ERR.
      this.engine.writeContinuation(encodeSaslResponse('*'));
    }
  }

  private refusal(status: StatusLine): Pop3AuthenticationError {
    const name = this.mechanism.name;
    const options = { command: this.command.display, response: status.text, responseCode: status.code };
    if (!this.answered && status.code === undefined) {
      // Only "AUTH <name>" was sent, so no credential was judged: the server will not do this
      // mechanism here (RFC 5034 section 4), whatever its CAPA said.
      return new Pop3AuthenticationError(`The server refused ${name}: ${status.text || '-ERR'}`, {
        ...options,
        code: 'POP3_AUTH_MECHANISM_UNAVAILABLE',
      });
    }
    const detail = this.mechanism.failureDetail === undefined ? '' : ` (${this.mechanism.failureDetail})`;
    return new Pop3AuthenticationError(`Login with ${name} failed: ${withResponseCode(status)}${detail}`, {
      ...options,
      code: 'POP3_AUTH_FAILED',
    });
  }
}

/** Strict base64 (RFC 4648 section 4), as RFC 5034 section 4 requires of challenges. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeChallenge(mechanism: SaslMechanismName, text: string): Buffer {
  if (!BASE64.test(text)) throw badChallenge(mechanism, 'the server sent a challenge that is not base64');
  return Buffer.from(text, 'base64');
}

function encodeResponse(response: Buffer): EncodedCommand {
  if (response.length > 0) return encodeSaslResponse(new Sensitive(response.toString('base64')));
  // RFC 5034 section 4: an empty response is an empty line (the answer to SCRAM's server-final
  // message and to XOAUTH2's error challenge). encodeSaslResponse refuses empty arguments, and an
  // empty line has nothing in it to check.
  return { verb: 'AUTH', bytes: Buffer.from('\r\n'), display: '***' };
}

function asPop3Error(mechanism: SaslMechanismName, error: unknown): Pop3Error {
  if (error instanceof Pop3Error) return error;
  return new Pop3ProtocolError(`${mechanism} failed inside the client: ${String(error)}`, {
    code: 'POP3_BAD_REPLY',
    cause: error,
  });
}
