import { constants } from 'node:os';
import { CommanderError } from 'commander';
import { isTemporaryRefusal, Pop3Error, type Pop3ErrorKind } from 'popwire';
import { DeliveryError } from '../delivery/delivery.js';
import { StoreError } from '../store/errors.js';
import { SyncError } from '../sync/errors.js';
import { jsonWritten, report, writeReport } from './output.js';

/** The exit codes are part of the command line's contract: scripts branch on them. */
export const ExitCode = {
  ok: 0,
  /** Anything else: a bug in popwire, or the system failed (stdout unwritable, out of memory). */
  internal: 1,
  usage: 2,
  connection: 3,
  authentication: 4,
  server: 5,
  /** fetch: a message could not be written where it was to go (disk full, permissions, mbox locked). */
  delivery: 6,
  /**
   * Not now, and nothing is wrong, on every command: the server asks to come back later
   * ([IN-USE]: another session holds the maildrop; [LOGIN-DELAY]: we logged in too recently;
   * [SYS/TEMP]), or (sync) another popwire sync of the same account is running. Never a rejected
   * password (4): a script (cron) just waits for its next turn.
   */
  deferred: 7,
  /** sync, messages, show, export: the store cannot be opened, read or written (folder, disk, PostgreSQL). */
  store: 8,
} as const;

/** 128 + the signal's number, as a shell reports a process the signal killed: 130 for SIGINT, 143 for SIGTERM. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** A mistake in how popwire was called, found before anything was sent. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const EXIT_CODE_BY_KIND: Record<Pop3ErrorKind, number> = {
  usage: ExitCode.usage,
  connection: ExitCode.connection,
  timeout: ExitCode.connection,
  aborted: ExitCode.connection,
  authentication: ExitCode.authentication,
  server: ExitCode.server,
  protocol: ExitCode.server,
};

const EXIT_CODE_BY_SYNC_ERROR: Record<SyncError['code'], number> = {
  SYNC_LOCKED: ExitCode.deferred,
  SYNC_NO_IDENTITY: ExitCode.server,
  SYNC_MESSAGE_TOO_LARGE: ExitCode.server,
  SYNC_TOO_MANY_SESSIONS: ExitCode.server,
  // The sync command ends a stopped run with 128 + the signal's number; nothing else stops one.
  SYNC_ABORTED: ExitCode.internal,
};

const EXIT_CODE_BY_STORE_ERROR: Record<StoreError['code'], number> = {
  STORE_INVALID_LOCATION: ExitCode.usage,
  STORE_OPEN_FAILED: ExitCode.store,
  STORE_MIGRATION_FAILED: ExitCode.store,
  STORE_NOT_FOUND: ExitCode.store,
  STORE_MESSAGE_NOT_FOUND: ExitCode.usage,
  STORE_ACCOUNT_NOT_FOUND: ExitCode.usage,
};

/**
 * A failure that knows its own exit code and says more than its cause: fetch's, which tell what
 * was delivered and deleted before it stopped.
 */
export class CommandFailure extends Error {
  override readonly name = 'CommandFailure';

  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Failure {
  readonly exitCode: number;
  /** The line for stderr; none when there is nothing to tell (help was shown, the reader left). */
  readonly message?: string;
}

/**
 * Prints a failure as one `popwire: ...` line on stderr and returns its exit code. No stack trace:
 * the message is the whole story, and no message that reaches here holds the password.
 *
 * With --json, the failure is also `{"error": {"code", "message"}}` on stdout, unless the command
 * already printed its JSON report (sync and test report a failed run in their own JSON, which has
 * the same `error` member). The exit code is the same either way.
 */
export async function reportFailure(error: unknown, asJson = false): Promise<number> {
  const { exitCode, message } = failureOf(error);
  if (message === undefined) return exitCode;
  const line = oneLine(message);
  process.stderr.write(`popwire: ${line}\n`);
  if (asJson && !jsonWritten()) {
    await writeReport(report([], { error: { code: errorCode(error, exitCode), message: line } }), true).catch(() => undefined);
  }
  return exitCode;
}

const CODE_BY_EXIT: Record<number, string> = {
  [ExitCode.internal]: 'INTERNAL',
  [ExitCode.usage]: 'USAGE',
  [ExitCode.connection]: 'CONNECTION',
  [ExitCode.authentication]: 'AUTHENTICATION',
  [ExitCode.server]: 'SERVER',
  [ExitCode.delivery]: 'DELIVERY',
  [ExitCode.deferred]: 'DEFERRED',
  [ExitCode.store]: 'STORE',
};

/**
 * The `code` of a failure in --json: the error's own literal code where it has one (POP3_*,
 * SYNC_*, STORE_*, also as the cause of a failure that says more), else the class of its exit
 * code (USAGE, CONNECTION, DELIVERY...; INTERRUPTED for 128 + a signal).
 */
function errorCode(error: unknown, exitCode: number): string {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    if (cause instanceof CommanderError) break;
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9]*_[A-Z0-9_]+$/.test(code)) return code;
  }
  return CODE_BY_EXIT[exitCode] ?? (exitCode > 128 ? 'INTERRUPTED' : 'INTERNAL');
}

/** The exit code of an error, and the line to print for it. */
export function failureOf(error: unknown): Failure {
  if (error instanceof CommanderError) return commanderFailure(error);
  if (error instanceof CommandFailure) return { exitCode: error.exitCode, message: error.message };
  if (error instanceof UsageError) return { exitCode: ExitCode.usage, message: error.message };
  if (isTemporaryRefusal(error)) return { exitCode: ExitCode.deferred, message: pop3Message(error as Pop3Error) };
  if (error instanceof Pop3Error) return { exitCode: EXIT_CODE_BY_KIND[error.kind], message: pop3Message(error) };
  // The reader of our stdout went away (`popwire retr 1 URL | head -c 10`): it has all it wanted.
  if (isBrokenPipe(error)) return { exitCode: ExitCode.ok };
  if (error instanceof DeliveryError) return { exitCode: ExitCode.delivery, message: error.message };
  if (error instanceof SyncError) return { exitCode: EXIT_CODE_BY_SYNC_ERROR[error.code], message: error.message };
  if (error instanceof StoreError) return { exitCode: EXIT_CODE_BY_STORE_ERROR[error.code], message: error.message };
  if (isListenError(error)) return { exitCode: ExitCode.connection, message: listenMessage(error) };
  if (isDatabaseError(error)) return { exitCode: ExitCode.store, message: `The store failed: ${(error as Error).message}` };
  // A bad setting of `popwire serve` (config.ts) or a bad secret key (accounts/secrets.ts): by
  // name, so that every command does not load the config schema's library at start-up.
  if (error instanceof Error && (error.name === 'ConfigError' || error.name === 'SecretKeyError')) return { exitCode: ExitCode.usage, message: error.message };
  return { exitCode: ExitCode.internal, message: error instanceof Error ? error.message : String(error) };
}

function commanderFailure(error: CommanderError): Failure {
  // --help, or `popwire help`: not a failure at all.
  if (error.exitCode === 0) return { exitCode: ExitCode.ok };
  // `popwire` with no command: the help on stderr already says what is missing.
  if (error.code === 'commander.help') return { exitCode: ExitCode.usage };
  return { exitCode: ExitCode.usage, message: error.message.replace(/^error: /, '') };
}

/** The library's message, where it speaks in API terms, said in command-line terms. */
function pop3Message(error: Pop3Error): string {
  switch (error.code) {
    case 'POP3_TLS_UNAVAILABLE':
      return (
        'The server does not offer STLS, so the connection cannot be encrypted. Use pop3s:// if the ' +
        'server has it, or --allow-plaintext to log in without TLS.'
      );
    case 'POP3_TLS_FAILED':
      // Only where --ca can help: not for a server that speaks clear text, an expired certificate or another name.
      if (!UNTRUSTED_CERTIFICATE.has(String((error.cause as { code?: unknown } | undefined)?.code))) return error.message;
      return `${error.message} (if a private CA signed the server's certificate, trust it with --ca FILE)`;
    default:
      return error.message;
  }
}

/** OpenSSL's verdicts on a chain that ends at no CA we trust: what an extra CA (--ca) fixes. */
const UNTRUSTED_CERTIFICATE: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/** `popwire serve` could not listen: the port is taken (EADDRINUSE) or not ours to take (EACCES). */
function isListenError(error: unknown): error is NodeJS.ErrnoException & { address?: string; port?: number } {
  return error instanceof Error && (error as NodeJS.ErrnoException).syscall === 'listen';
}

function listenMessage(error: NodeJS.ErrnoException & { address?: string; port?: number }): string {
  const where = error.port === undefined ? 'the configured address' : `${error.address ?? ''}:${error.port}`;
  const why =
    error.code === 'EADDRINUSE'
      ? 'the port is in use (another popwire serve, or another program)'
      : error.code === 'EACCES'
        ? 'not allowed (ports below 1024 need privileges)'
        : error.message;
  return `Cannot listen on ${where}: ${why}; choose another with --port, POPWIRE_HTTP_PORT or http.port in the configuration file`;
}

/**
 * An error of the database under the store, told by its shape: the drivers are not imported
 * here, because every popwire command loads this file (see cli/store-option.ts). better-sqlite3
 * names its errors SqliteError; pg's DatabaseError carries a severity and a SQLSTATE code.
 */
function isDatabaseError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'SqliteError') return true;
  const { severity, code } = error as { severity?: unknown; code?: unknown };
  return typeof severity === 'string' && typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/** EPIPE, itself or as the cause of a failed delivery to stdout. */
function isBrokenPipe(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (error as NodeJS.ErrnoException).code === 'EPIPE' || (error.cause !== undefined && isBrokenPipe(error.cause));
}

/** Commander appends suggestions on a second line ("(Did you mean list?)"); a failure gets one line. */
function oneLine(message: string): string {
  return message.trim().replace(/\s*\n\s*/g, ' ');
}
