import type { SessionState } from '../engine.js';

/** RFC 1939 section 3: which commands each state accepts. */
export const AUTHORIZATION: readonly SessionState[] = ['authorization'];
export const TRANSACTION: readonly SessionState[] = ['transaction'];
/** CAPA is valid in both (RFC 2449 section 5); QUIT too (RFC 1939 sections 4 and 6). */
export const ANY_OPEN: readonly SessionState[] = ['authorization', 'transaction'];
