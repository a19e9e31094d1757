export { Pop3Client, type Pop3ClientOptions, type TlsMode } from './client.js';
export type { Capabilities } from './capabilities.js';
export { parseCapabilities } from './capabilities.js';
export type { MailboxStat } from './commands/stat.js';
export type { MessageSize, MessageSizes } from './commands/list.js';
export type { MessageUid, MessageUids } from './commands/uidl.js';
export { DEFAULT_MAX_LISTING_ENTRIES } from './commands/listing.js';
export type { SessionState, TraceEvent, TraceFn } from './engine.js';
export {
  Pop3Error,
  Pop3ServerError,
  Pop3AuthenticationError,
  Pop3ConnectionError,
  Pop3TimeoutError,
  Pop3ProtocolError,
  Pop3UsageError,
  Pop3AbortError,
  isPop3Error,
  isRetryableResponseCode,
  isTemporaryRefusal,
  describeResponseCode,
  type Pop3ErrorCode,
  type Pop3ErrorKind,
  type ResponseCode,
} from './errors.js';
export { parsePop3Url, schemePortWarning, type Pop3Url } from './url.js';
export { DotDecoder } from './protocol/dot-decoder.js';
export { LineReader } from './protocol/line-reader.js';
export { parseMessage, parseHeaders, DEFAULT_MAX_IN_MEMORY_BYTES, type ParsedMessage, type ParsedHeaders, type ParseOptions, type MessageSource } from './message.js';
export type { ParsedAttachment, Address, AddressGroup, DateSource, Mailbox, HeaderField } from './message.js';
export { retry, type RetryPolicy, type RetryAttempt, type RetriedError } from './retry.js';
export { Pop3Pool, type Pop3PoolOptions, type Pop3Account, type AcquireOptions, type PoolStats } from './pool.js';
export type {
  ConnectionTestReport,
  ConnectionTestStep,
  ConnectionTestStepName,
  ConnectionTestError,
  CertificateInfo,
} from './connection-test.js';
export { deadline, type Deadline } from './deadline.js';
