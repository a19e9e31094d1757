/** The store's errors: a literal code each, the cause kept. */
export type StoreErrorCode =
  | 'STORE_OPEN_FAILED'
  | 'STORE_MIGRATION_FAILED'
  | 'STORE_INVALID_LOCATION'
  /** Opened with `create: false` where no store is: nothing was made. */
  | 'STORE_NOT_FOUND'
  | 'STORE_MESSAGE_NOT_FOUND'
  | 'STORE_ACCOUNT_NOT_FOUND';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
