import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * How a webhook receiver knows an event came from popwire, unchanged, and recently (the scheme
 * Stripe uses for its webhooks):
 *
 *   Popwire-Signature: t=1767225600,v1=<64 hex digits>
 *
 * `t` is the Unix time (seconds) of the attempt; `v1` is the hex HMAC-SHA256, keyed with the
 * webhook's shared secret, of the bytes `<t>.<body>`: the timestamp, a full stop, and the
 * request body exactly as received. The receiver recomputes it over the raw body (before any
 * JSON parsing, which would change the bytes) and compares in constant time. Signing the
 * timestamp with the body stops a replay: a captured request is refused once `t` is older than
 * the receiver's tolerance (5 minutes by default), and `t` cannot be changed without the secret.
 * Each retry is signed anew with its own `t`; Popwire-Delivery (the event's id) stays the same,
 * so a receiver can drop an event it already handled.
 *
 * Several `v1=` entries may appear (a receiver should accept any that matches), so that a
 * secret can be rotated without a window of refused events.
 */
export const SIGNATURE_HEADER = 'Popwire-Signature';
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** The header value for `body` sent at `timestamp` (Unix seconds). */
export function signatureHeader(secret: string, body: string | Uint8Array, timestamp: number): string {
  return `t=${timestamp},v1=${digest(secret, timestamp, body).toString('hex')}`;
}

/**
 * Whether `header` (the Popwire-Signature value) signs `body` with `secret`, at a time no
 * further than `toleranceSeconds` from `nowSeconds`. False for anything malformed.
 */
export function verifySignature(
  secret: string,
  header: string | null | undefined,
  body: string | Uint8Array,
  toleranceSeconds: number = DEFAULT_TOLERANCE_SECONDS,
  nowSeconds: number = Date.now() / 1000,
): boolean {
  if (typeof header !== 'string') return false;
  let timestamp: number | undefined;
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const [key, value, ...extra] = part.trim().split('=');
    if (extra.length > 0 || value === undefined) return false;
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) candidates.push(Buffer.from(value, 'hex'));
  }
  if (timestamp === undefined || candidates.length === 0) return false;
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = digest(secret, timestamp, body);
  // Every candidate is compared, so the time taken says nothing about which one matched.
  return candidates.reduce((found, candidate) => timingSafeEqual(candidate, expected) || found, false);
}

function digest(secret: string, timestamp: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}
