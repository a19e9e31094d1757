/** Why a sync could not run or finish, beyond what the POP3 client's own errors say. */
export type SyncErrorCode =
  /** Another process holds the account's sync lock. */
  | 'SYNC_LOCKED'
  /** The server offers neither UIDL nor TOP: its messages cannot be told apart without retrieving them all. */
  | 'SYNC_NO_IDENTITY'
  /** Sessions kept finding new messages past the bound (see run.ts). */
  | 'SYNC_TOO_MANY_SESSIONS'
  /** A message sent more octets than the account's size limit allows (the server's LIST said less). */
  | 'SYNC_MESSAGE_TOO_LARGE'
  | 'SYNC_ABORTED';

export class SyncError extends Error {
  override readonly name = 'SyncError';
  readonly code: SyncErrorCode;

  constructor(code: SyncErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
