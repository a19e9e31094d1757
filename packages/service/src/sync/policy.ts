import type { OversizePolicy, RetentionPolicy } from '../store/schema.js';

/** What a sync does besides storing: whether it removes mail from the server, and what it does with large messages. */
export interface SyncPolicy {
  /** `leave` (default): never DELE. `delete`: DELE every stored message. `keep`: DELE those first seen `keepDays` ago or earlier. */
  readonly retention: RetentionPolicy;
  readonly keepDays?: number | undefined;
  /** Messages LIST says are larger are not retrieved. Undefined: no limit. */
  readonly maxSize?: number | undefined;
  /** For those: `skip` (remember and report them) or `headers` (store the header block, from TOP n 0). */
  readonly oversize: OversizePolicy;
}

export const DEFAULT_POLICY: SyncPolicy = { retention: 'leave', oversize: 'skip' };

export const DAY_MS = 86_400_000;
