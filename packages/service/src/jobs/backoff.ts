/**
 * Exponential backoff with jitter, for what the service retries on its own: failed syncs
 * (jobs/in-process.ts) and webhook deliveries (delivery/webhook.ts).
 *
 * The wait before retry n (n = 1 after the first failure) is base * 2^(n-1), capped at max,
 * of which a share `jitter` is random: with the default 0.5 the wait falls in [half, whole].
 * The same rule as the client's retry.ts, so that a thousand accounts on one server that
 * failed together (the server restarted) do not all come back in the same second.
 */
export interface Backoff {
  /** Milliseconds before the first retry. */
  readonly baseMs: number;
  /** The longest wait, in milliseconds. */
  readonly maxMs: number;
  /** 0 (none) to 1 (full jitter). */
  readonly jitter: number;
}

export function backoffDelay(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  // 2^(n-1) overflows to Infinity long after the cap applies; min() keeps it finite.
  const whole = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(whole * (1 - backoff.jitter * random()));
}

/** `defaults` with whatever `settings` gives (undefined keeps the default). */
export function backoffWith(defaults: Backoff, settings: Partial<Backoff> | undefined): Backoff {
  return {
    baseMs: settings?.baseMs ?? defaults.baseMs,
    maxMs: settings?.maxMs ?? defaults.maxMs,
    jitter: settings?.jitter ?? defaults.jitter,
  };
}
