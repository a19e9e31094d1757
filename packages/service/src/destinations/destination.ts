/**
 * External destinations: where a fetched message is handed to the user's mail system (an MDA
 * command, an LMTP or SMTP server, an IMAP folder) instead of, or besides, a Maildir or mbox.
 *
 * This file is the contract. `popwire fetch` (cli/fetch/) uses it, and so does the work of helper
 * 14b: `popwire sync` and each account of `popwire serve` (the API's `destinations` list), which
 * record delivery per message and destination in the store. Keep it small and stable: add, do not
 * rename. The spec parser is in spec.ts, the envelope and header helpers in message.ts, and
 * `openDestination` (index.ts) makes a Destination from a spec, loading nodemailer or ImapFlow
 * only when one is used.
 *
 * Errors, by one question: does the failure concern this message, or the destination itself?
 * - DestinationRefused: the destination answered for this message and refused it. The next
 *   message may still be tried. `temporary` says whether trying the same message later may work:
 *     LMTP/SMTP 4xx            temporary   5xx                   permanent (never bounced)
 *     MDA exit 75 (EX_TEMPFAIL) temporary  any other exit/signal permanent; killed by the time limit: temporary
 *     IMAP NO                  temporary (quota, a folder being moved: IMAP has no permanent/temporary
 *                              split, and a NO is usually fixed by the user)   IMAP BAD   permanent
 *   Either way the message stays on the POP3 server; nothing is bounced to its sender.
 * - DestinationUnavailable: the destination cannot take any message now (connection refused, DNS,
 *   TLS, login refused, the connection dropped, a timeout). The run stops: nothing more is
 *   retrieved for it, and nothing it did not accept is deleted.
 * - DestinationSpecError: a destination spec that cannot be parsed (found before connecting).
 * All three extend DeliveryError, so the CLI maps them to exit 6 (delivery) unless it says more.
 */
import { DeliveryError } from '../delivery/delivery.js';

export type DestinationKind = 'mda' | 'lmtp' | 'smtp' | 'imap' | 'maildir' | 'mbox';

export interface Envelope {
  /** The envelope sender (MAIL FROM): from the Return-Path header, else '' (the null sender, `<>`). */
  readonly sender: string;
  /** The envelope recipient (RCPT TO, the MDA's %T): --to, by default the POP3 user. */
  readonly recipient: string;
}

/** What a destination is told about a message besides its bytes. */
export interface MessageMeta {
  /** The POP3 UIDL, when known (what X-Popwire-UID carries). */
  readonly uid?: string;
  /** The message number in this POP3 session. */
  readonly n: number;
  /** Octets of the message as handed over (after any X-Popwire-UID line). */
  readonly size: number;
  readonly envelope: Envelope;
  /** The message's Date header: the IMAP internal date. Absent or unparseable: the server's now. */
  readonly date?: Date;
}

/**
 * One external destination. Used one message at a time: `deliver` is not called again before the
 * previous call settled. A message counts as delivered when `deliver` resolves: the destination
 * took responsibility for it (LMTP/SMTP 250 after DATA, MDA exit 0, IMAP APPEND OK).
 *
 * The message is a Buffer, the bytes as retrieved (CRLF line endings, with any X-Popwire-UID line
 * already prepended by the caller): IMAP needs its length before the first byte (a literal), the
 * envelope sender needs its header, and several destinations each need the same bytes. Messages
 * are bounded by the caller's size cap.
 */
export interface Destination {
  readonly kind: DestinationKind;
  /** For people and logs, e.g. "LMTP 127.0.0.1:24", "IMAP imaps://me@imap.example.com/INBOX". Never a secret. */
  describe(): string;
  /** Connects and logs in where there is something to connect to. Rejects with DestinationUnavailable. */
  open(signal?: AbortSignal): Promise<void>;
  /** Rejects with DestinationRefused (this message) or DestinationUnavailable (the destination). */
  deliver(message: Buffer, meta: MessageMeta): Promise<void>;
  /** Ends the session politely (QUIT, LOGOUT); never rejects. */
  close(): Promise<void>;
}

/**
 * How a destination is opened: the same TLS policy as POP3 (certificates verified against the
 * system's CAs plus `ca`, `insecure` to accept any), and clear text only where nothing can read it
 * (loopback, a Unix socket) unless `allowPlaintext` opts in. See docs/architecture.md, "Destinations".
 */
export interface DestinationOptions {
  readonly tls?: {
    readonly ca?: string | Buffer;
    readonly insecure?: boolean;
    /** Hand messages (and an IMAP password) to a non-loopback server without TLS. */
    readonly allowPlaintext?: boolean;
  };
  /** IMAP login (the user comes from the URL when not given here), SMTP AUTH. */
  readonly auth?: { readonly user?: string; readonly password?: string; readonly accessToken?: string };
  /** Each network step (connect, greeting, a reply), and the MDA's whole run. Default 30 s / 5 min. */
  readonly timeoutMs?: number;
  /** How much of an MDA's stderr is kept for the report (default 4 KiB). */
  readonly stderrLimit?: number;
  /** IMAP: store the message with \Seen. */
  readonly seen?: boolean;
  /** Where a destination says something worth showing (an MDA's stderr on success). */
  readonly onNote?: (line: string) => void;
}

export type DestinationErrorCode = 'DESTINATION_REFUSED' | 'DESTINATION_UNAVAILABLE' | 'DESTINATION_SPEC_INVALID';

export abstract class DestinationError extends DeliveryError {
  abstract readonly code: DestinationErrorCode;
}

/** The destination refused this message; see the table at the top for `temporary`. */
export class DestinationRefused extends DestinationError {
  override readonly name = 'DestinationRefused';
  readonly code = 'DESTINATION_REFUSED';

  constructor(
    /** describe() of the destination. */
    readonly destination: string,
    /** The server's words (`452 4.2.2 Mailbox full`), or the MDA's exit and stderr. */
    readonly reply: string,
    readonly temporary: boolean,
    options?: { cause?: unknown },
  ) {
    super(`${destination} ${temporary ? 'deferred' : 'refused'} the message: ${reply}`, options);
  }
}

/** The destination could not take any message now; the run stops. */
export class DestinationUnavailable extends DestinationError {
  override readonly name = 'DestinationUnavailable';
  readonly code = 'DESTINATION_UNAVAILABLE';

  constructor(
    readonly destination: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Cannot deliver to ${destination}: ${reason}`, options);
  }
}

/** A destination spec (`--lmtp`, `--imap`, an API `destinations` entry) that cannot be used. */
export class DestinationSpecError extends DestinationError {
  override readonly name = 'DestinationSpecError';
  readonly code = 'DESTINATION_SPEC_INVALID';
}

export function isDestinationRefused(error: unknown): error is DestinationRefused {
  return error instanceof DestinationRefused;
}
