import { Pop3UsageError } from '../errors.js';

/**
 * A value that must never be shown: a password, a token, a SASL response. It is marked where it is
 * created, so the trace, error messages and `util.inspect` all see `***`.
 */
export class Sensitive {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '***';
  }

  toJSON(): string {
    return '***';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Sensitive(***)';
  }
}

export type Argument = string | number | Sensitive;

export interface EncodedCommand {
  /** The verb, upper case: what the engine and errors name the command by. */
  readonly verb: string;
  /** The exact bytes to write, CRLF included. */
  readonly bytes: Buffer;
  /** The line as it may be shown: secrets replaced by `***`. */
  readonly display: string;
}

/** RFC 2449 section 4: a command line is at most 255 octets, CRLF included. */
export const MAX_COMMAND_LINE = 255;

/**
 * RFC 5034 section 4: a server must accept SASL client responses of at least 12,288 octets;
 * OAuth tokens and SCRAM messages need more than 255.
 */
export const MAX_SASL_RESPONSE_LINE = 12_288 + 2;

/**
 * Encodes one command. Anything that would let an argument end the line early and smuggle a
 * second command (CR, LF; NUL, which truncates the line in C servers) is refused before a byte is
 * written: `USER "alice\r\nDELE 1"` must never reach the wire.
 */
export function encodeCommand(verb: string, ...args: Argument[]): EncodedCommand {
  let line = verb;
  let display = verb;
  for (const arg of args) {
    const text = arg instanceof Sensitive ? arg.reveal() : String(arg);
    checkArgument(verb, text);
    line += ` ${text}`;
    display += ` ${arg instanceof Sensitive ? '***' : text}`;
  }
  return finish(verb, line, display, MAX_COMMAND_LINE);
}

/** Encodes a SASL client response line (RFC 5034): base64 or `*`, always shown as `***`. */
export function encodeSaslResponse(response: Sensitive | '*'): EncodedCommand {
  const text = response instanceof Sensitive ? response.reveal() : response;
  checkArgument('AUTH', text);
  return finish('AUTH', text, response instanceof Sensitive ? '***' : '*', MAX_SASL_RESPONSE_LINE);
}

function checkArgument(verb: string, text: string): void {
  if (text.length === 0) {
    throw new Pop3UsageError(`An argument of ${verb} is empty`, { code: 'POP3_INVALID_ARGUMENT', command: verb });
  }
  if (/[\r\n\0]/.test(text)) {
    throw new Pop3UsageError(`An argument of ${verb} contains CR, LF or NUL, which would break the command line`, {
      code: 'POP3_INVALID_ARGUMENT',
      command: verb,
    });
  }
}

function finish(verb: string, line: string, display: string, limit: number): EncodedCommand {
  const bytes = Buffer.from(`${line}\r\n`, 'utf8');
  if (bytes.length > limit) {
    throw new Pop3UsageError(`The ${verb} command line would be ${bytes.length} octets; the limit is ${limit}`, {
      code: 'POP3_INVALID_ARGUMENT',
      command: display,
    });
  }
  return { verb, bytes, display };
}
