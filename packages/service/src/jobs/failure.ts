import Sqlite from 'better-sqlite3';
import { Pop3AuthenticationError, Pop3Error, Pop3ProtocolError } from 'popwire';
import { SecretKeyError } from '../accounts/secrets.js';
import { isPostgresError } from '../store/database.js';
import { StoreError } from '../store/errors.js';
import { SyncError } from '../sync/errors.js';

/**
 * What a failed or deferred sync is counted as (the `kind` label of popwire_sync_errors_total):
 * the client's own kind for a POP3 failure (authentication, connection, timeout, server,
 * protocol, usage, aborted); `server` for a server that lacks what sync needs (no UIDL nor
 * TOP, the same grouping as the CLI's exit codes); `locked` when the account's sync lock was
 * lost mid-run; `store` when the database failed; `internal` for anything else.
 */
export function errorKind(error: unknown): string {
  if (error instanceof Pop3Error) return error.kind;
  if (error instanceof SyncError) return error.code === 'SYNC_LOCKED' ? 'locked' : error.code === 'SYNC_ABORTED' ? 'aborted' : 'server';
  if (isStoreError(error)) return 'store';
  return 'internal';
}

/**
 * The error as an API reader or a webhook receiver may see it. POP3 and sync errors carry
 * messages written for people, with secrets already redacted by the client; a database or
 * internal error may carry anything (a query, a path), so only its kind is told.
 */
export function publicError(error: unknown): { code: string; message: string } {
  // A line that broke the protocol is whatever the other end sent: an internal service's banner
  // if the host is not a POP3 server. It stays in the operator's log, not in what the API shows.
  if (error instanceof Pop3ProtocolError && error.response !== undefined) {
    return { code: error.code, message: error.message.replaceAll(error.response, '(not shown)') };
  }
  if (error instanceof Pop3Error || error instanceof SyncError) return { code: error.code, message: error.message };
  if (isStoreError(error)) return { code: 'STORE_FAILED', message: 'the store failed during the sync' };
  // Which key is missing is for the operator's log and the start-up check, not for API readers.
  if (error instanceof SecretKeyError) return { code: 'SECRET_KEY_MISSING', message: "the account's stored secret cannot be opened with the service's key ring" };
  return { code: 'INTERNAL', message: 'an internal error ended the sync' };
}

/**
 * The server rejected the credentials: trying again with the same ones cannot succeed, and
 * repeating a rejected password is how accounts get locked. Not a temporary refusal
 * ([IN-USE], [LOGIN-DELAY], [SYS/TEMP] make the error retryable), and not a failure to find a
 * mechanism or an OAuth token endpoint that could not be reached (those come back on their own
 * or need a settings change, not new credentials).
 */
export function credentialsRejected(error: unknown): boolean {
  return error instanceof Pop3AuthenticationError && !error.retryable && error.code === 'POP3_AUTH_FAILED';
}

function isStoreError(error: unknown): boolean {
  return error instanceof StoreError || error instanceof Sqlite.SqliteError || isPostgresError(error);
}
