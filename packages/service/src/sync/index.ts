export { syncAccount, type SyncRequest, type SyncReport } from './run.js';
export type { SyncProgress, SyncPhase } from './session.js';
export { DEFAULT_POLICY, type SyncPolicy } from './policy.js';
export { SyncError, type SyncErrorCode } from './errors.js';
export type { CommittedMessage } from './writer.js';
