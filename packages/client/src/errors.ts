/**
 * One family of errors for everything popwire can fail at.
 *
 * Every error answers two questions a caller (and the pool, and the retry loop) must ask:
 * - `connectionUsable`: is the session still in a known state? A `-ERR` leaves it usable; a
 *   malformed reply, a timeout or EOF means the reader may be mid-reply, so the connection is
 *   destroyed and must never be handed out again.
 * - `retryable`: can the same operation succeed later without the caller changing anything?
 *
 * `code` is a literal per kind of failure, under one scheme (`POP3_*`); the catalogue is in the README.
 */

/** RFC 2449 section 8 and RFC 3206 response codes, plus any extension a server sends. */
export type ResponseCode =
  | 'IN-USE'
  | 'LOGIN-DELAY'
  | 'SYS/TEMP'
  | 'SYS/PERM'
  | 'AUTH'
  | 'UTF8'
  | (string & {});

export type Pop3ErrorKind =
  | 'server'
  | 'authentication'
  | 'connection'
  | 'timeout'
  | 'protocol'
  | 'usage'
  | 'aborted';

export type Pop3ErrorCode =
  /** The server answered -ERR; the session goes on. */
  | 'POP3_ERR_REPLY'
  /** The server rejected the credentials (or the login for another stated reason). */
  | 'POP3_AUTH_FAILED'
  /** No mechanism the server offers fits the credentials, or the server refused the one asked for. */
  | 'POP3_AUTH_MECHANISM_UNAVAILABLE'
  /** The access-token function given for XOAUTH2 or OAUTHBEARER threw or returned no token. */
  | 'POP3_AUTH_TOKEN_FAILED'
  /** SCRAM: the server did not prove it knows the password (RFC 5802 section 9); maybe an impostor. */
  | 'POP3_SASL_SERVER_SIGNATURE'
  /** TCP connect failed: refused, unreachable, DNS. */
  | 'POP3_CONNECT_FAILED'
  /** The `lookup` option refused the destination (its error's code was `ADDRESS_REFUSED`): nothing was sent. */
  | 'POP3_ADDRESS_REFUSED'
  /** The server closed or reset the connection, or refused us in its greeting. */
  | 'POP3_CONNECTION_CLOSED'
  /** TLS handshake or certificate verification failed. */
  | 'POP3_TLS_FAILED'
  /** TLS was required but the server does not offer STLS. */
  | 'POP3_TLS_UNAVAILABLE'
  | 'POP3_TIMEOUT'
  /** A reply that is not POP3: bad status line, malformed listing, data nobody asked for. */
  | 'POP3_BAD_REPLY'
  /** A status line (or listing) longer than the bound that protects memory. */
  | 'POP3_LINE_TOO_LONG'
  | 'POP3_REPLY_TOO_LARGE'
  /** Bytes after the +OK to STLS and before the TLS handshake: plaintext injection. */
  | 'POP3_STLS_INJECTION'
  | 'POP3_ABORTED'
  /** An argument that would break the command line (CR, LF, NUL, too long) was refused locally. */
  | 'POP3_INVALID_ARGUMENT'
  /** A command sent in a state where POP3 does not allow it; refused locally. */
  | 'POP3_INVALID_STATE'
  /** Credentials would travel without TLS and the caller did not opt in. */
  | 'POP3_PLAINTEXT_REFUSED'
  /** The client was closed (by quit(), close() or a fatal error) before this command. */
  | 'POP3_CLOSED'
  /** The pool was closed: no more sessions are lent. */
  | 'POP3_POOL_CLOSED';

export interface Pop3ErrorOptions {
  code: Pop3ErrorCode;
  /** The command as sent, secrets replaced by `***`. */
  command?: string | undefined;
  /** The server's reply text, without `-ERR` and without the response code. */
  response?: string | undefined;
  responseCode?: ResponseCode | undefined;
  cause?: unknown;
  retryable?: boolean;
}

const RETRYABLE_RESPONSE_CODES: ReadonlySet<string> = new Set(['IN-USE', 'LOGIN-DELAY', 'SYS/TEMP']);

export abstract class Pop3Error extends Error {
  abstract readonly kind: Pop3ErrorKind;
  abstract readonly connectionUsable: boolean;
  readonly code: Pop3ErrorCode;
  readonly command: string | undefined;
  readonly response: string | undefined;
  readonly responseCode: ResponseCode | undefined;
  readonly retryable: boolean;

  constructor(message: string, options: Pop3ErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.command = options.command;
    this.response = options.response;
    this.responseCode = options.responseCode;
    this.retryable = options.retryable ?? false;
  }
}

/** The server said -ERR to a command. The session is intact. */
export class Pop3ServerError extends Pop3Error {
  readonly kind: Pop3ErrorKind = 'server';
  readonly connectionUsable: boolean = true;

  constructor(message: string, options: Pop3ErrorOptions) {
    super(message, {
      ...options,
      retryable: options.retryable ?? isRetryableResponseCode(options.responseCode),
    });
  }
}

/**
 * Login refused. Retryable only when the server says the refusal is temporary
 * ([IN-USE], [LOGIN-DELAY], [SYS/TEMP]); a rejected password is never retried,
 * because retrying it is how accounts get locked.
 */
export class Pop3AuthenticationError extends Pop3ServerError {
  override readonly kind: Pop3ErrorKind = 'authentication';
}

/** The connection is gone or never came up. */
export class Pop3ConnectionError extends Pop3Error {
  readonly kind: Pop3ErrorKind = 'connection';
  readonly connectionUsable: boolean = false;

  constructor(message: string, options: Pop3ErrorOptions) {
    super(message, { ...options, retryable: options.retryable ?? true });
  }
}

export class Pop3TimeoutError extends Pop3ConnectionError {
  override readonly kind: Pop3ErrorKind = 'timeout';
  /** Set when the session's `deadline` passed (not one reply's `timeout`): when it was. */
  readonly deadline: Date | undefined;

  constructor(message: string, options: Omit<Pop3ErrorOptions, 'code'> & { deadline?: Date | undefined } = {}) {
    super(message, { ...options, code: 'POP3_TIMEOUT', retryable: options.retryable ?? true });
    this.deadline = options.deadline;
  }
}

/** The server broke the protocol. The reader's position is unknown, so the connection is closed. */
export class Pop3ProtocolError extends Pop3Error {
  readonly kind: Pop3ErrorKind = 'protocol';
  readonly connectionUsable: boolean = false;
}

/** The caller asked for something popwire refuses to do; nothing was sent. */
export class Pop3UsageError extends Pop3Error {
  readonly kind: Pop3ErrorKind = 'usage';
  readonly connectionUsable: boolean = true;
}

export class Pop3AbortError extends Pop3Error {
  readonly kind: Pop3ErrorKind = 'aborted';
  readonly connectionUsable: boolean = false;

  constructor(reason?: unknown) {
    super('The operation was aborted', { code: 'POP3_ABORTED', cause: reason });
  }
}

/**
 * What a response code means, in words, for a message: `-ERR [LOGIN-DELAY] wait` alone reads like a
 * rejected password, and a person (or a cron job's log) must see that the server only said "later".
 */
const RESPONSE_CODE_MEANINGS: Readonly<Record<string, string>> = {
  'IN-USE': 'another session holds the mailbox; try again once it has ended',
  'LOGIN-DELAY': 'the server asks to wait between logins; try again later',
  'SYS/TEMP': 'a temporary failure on the server; try again later',
  'SYS/PERM': 'a permanent failure on the server; retrying will not help',
  AUTH: 'the credentials were rejected',
};

/** `[LOGIN-DELAY] (the server asks to wait between logins; ...)`: the code and what it means; '' for none. */
export function describeResponseCode(code: ResponseCode | undefined): string {
  if (code === undefined) return '';
  const meaning = RESPONSE_CODE_MEANINGS[code.toUpperCase()];
  return meaning === undefined ? `[${code}]` : `[${code}] (${meaning})`;
}

/**
 * Whether an error is the server's temporary refusal ([IN-USE], [LOGIN-DELAY], [SYS/TEMP]): the
 * credentials were not judged wrong, and the same call can succeed later unchanged.
 */
export function isTemporaryRefusal(error: unknown): boolean {
  return error instanceof Pop3ServerError && isRetryableResponseCode(error.responseCode);
}

export function isRetryableResponseCode(code: ResponseCode | undefined): boolean {
  return code !== undefined && RETRYABLE_RESPONSE_CODES.has(code.toUpperCase());
}

export function isPop3Error(value: unknown): value is Pop3Error {
  return value instanceof Pop3Error;
}
