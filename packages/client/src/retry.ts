import { setTimeout as sleep } from 'node:timers/promises';
import type { Pop3Client, Pop3ClientOptions } from './client.js';
import { isRetryableResponseCode, Pop3AbortError, Pop3Error, Pop3UsageError } from './errors.js';

/**
 * Retrying what can succeed later, and nothing else.
 *
 * The one question is the error's `retryable` flag (errors.ts): connection refused or reset,
 * timeouts, a greeting that refuses us for now, and the RFC 2449 / RFC 3206 codes [SYS/TEMP],
 * [IN-USE] (another session holds the maildrop lock) and [LOGIN-DELAY] (we logged in too
 * recently). A rejected password ([AUTH], or a plain -ERR to PASS or AUTH) is never retried:
 * repeating it is how accounts get locked.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included. Default 3. */
  readonly attempts?: number | undefined;
  /** Milliseconds before the second attempt; each later wait doubles. Default 1,000. */
  readonly baseDelay?: number | undefined;
  /** Longest backoff wait, in milliseconds. Default 30,000. A server's [LOGIN-DELAY] is still honoured above it. */
  readonly maxDelay?: number | undefined;
  /**
   * The share of each wait that is random, from 0 (none) to 1 ("full jitter"). Default 0.5.
   * Clients that failed together (a server restart) then do not all come back in the same second.
   */
  readonly jitter?: number | undefined;
  /**
   * Seconds to wait after [LOGIN-DELAY] when the server does not announce its delay in CAPA
   * (RFC 2449 section 6.8). Default 60.
   */
  readonly loginDelay?: number | undefined;
  /** Told of each failed attempt, with the wait before the next (undefined when none follows). */
  readonly onAttempt?: ((attempt: RetryAttempt) => void) | undefined;
  /** Ends the waits (the attempt in flight is the operation's own business). */
  readonly signal?: AbortSignal | undefined;
}

export interface RetryAttempt {
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly error: Pop3Error;
  /** Milliseconds until the next attempt, or undefined when this was the last. */
  readonly delay: number | undefined;
}

/** The error a retried operation finally fails with: the last attempt's, with every attempt. */
export type RetriedError = Pop3Error & { readonly attempts: readonly RetryAttempt[] };

export interface RetryHooks {
  /** Seconds the server asks between logins, when it can be found out (see connectWithRetry). */
  readonly loginDelaySeconds?: () => Promise<number | undefined>;
}

const DEFAULTS = { attempts: 3, baseDelay: 1_000, maxDelay: 30_000, jitter: 0.5, loginDelay: 60 };

/** Runs `operation` until it succeeds, fails for good, or the attempts are spent. */
export async function retry<T>(operation: (attempt: number) => Promise<T>, policy: RetryPolicy = {}, hooks: RetryHooks = {}): Promise<T> {
  const settings = readPolicy(policy);
  const attempts: RetryAttempt[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (!(error instanceof Pop3Error)) throw error;
      const last = attempt >= settings.attempts || !canRetry(error);
      const delay = last ? undefined : await waitFor(error, attempt, settings, hooks);
      const record: RetryAttempt = { attempt, error, delay };
      attempts.push(record);
      settings.onAttempt?.(record);
      if (delay === undefined) throw withAttempts(error, attempts);
      try {
        // Referenced, unlike the library's other timers: the caller is awaiting this wait, and
        // with nothing else pending an unref'd timer would let the process exit in the middle.
        await sleep(delay, undefined, settings.signal === undefined ? {} : { signal: settings.signal });
      } catch {
        throw withAttempts(new Pop3AbortError(settings.signal?.reason), attempts);
      }
    }
  }
}

/**
 * `Pop3Client.connect` with a retry policy (the `retry` option). On [LOGIN-DELAY] the wait is
 * what the server announces in CAPA: the failed session is gone by then, so a connection without
 * credentials asks for it (greeting and CAPA only, no login attempt), once per call.
 */
export function connectWithRetry(
  options: Pop3ClientOptions,
  policy: RetryPolicy,
  connect: (options: Pop3ClientOptions) => Promise<Pop3Client>,
): Promise<Pop3Client> {
  const once = { ...options, retry: undefined };
  let announced: Promise<number | undefined> | undefined;
  const probe = async () => {
    const client = await connect({ ...once, user: undefined, password: undefined, accessToken: undefined });
    const seconds = client.capabilities().loginDelay;
    await client.quit().catch(() => client.close());
    return seconds;
  };
  const loginDelaySeconds = () => (announced ??= probe().catch(() => undefined));
  const signal = policy.signal ?? options.signal;
  return retry(() => connect(once), { ...policy, signal }, { loginDelaySeconds });
}

function canRetry(error: Pop3Error): boolean {
  // errors.ts already marks a rejected password not retryable; this line makes sure no other
  // path (a subclass, a future flag) can make one retryable.
  if (error.kind === 'authentication' && !isRetryableResponseCode(error.responseCode)) return false;
  return error.retryable;
}

type Settings = Required<Pick<RetryPolicy, 'attempts' | 'baseDelay' | 'maxDelay' | 'jitter' | 'loginDelay'>> & RetryPolicy;

async function waitFor(error: Pop3Error, attempt: number, settings: Settings, hooks: RetryHooks): Promise<number> {
  const backoff = Math.min(settings.maxDelay, settings.baseDelay * 2 ** (attempt - 1));
  const jittered = Math.round(backoff * (1 - settings.jitter * Math.random()));
  if (error.responseCode?.toUpperCase() !== 'LOGIN-DELAY') return jittered;
  const seconds = (await hooks.loginDelaySeconds?.()) ?? settings.loginDelay;
  return Math.max(jittered, seconds * 1000);
}

function withAttempts(error: Pop3Error, attempts: readonly RetryAttempt[]): RetriedError {
  return Object.assign(error, { attempts: [...attempts] });
}

function readPolicy(policy: RetryPolicy): Settings {
  const settings = { ...DEFAULTS, ...definedOnly(policy) };
  const check = (ok: boolean, name: string, value: unknown) => {
    if (!ok) throw new Pop3UsageError(`retry.${name} is out of range: ${String(value)}`, { code: 'POP3_INVALID_ARGUMENT' });
  };
  check(Number.isSafeInteger(settings.attempts) && settings.attempts >= 1, 'attempts', settings.attempts);
  check(Number.isFinite(settings.baseDelay) && settings.baseDelay >= 0, 'baseDelay', settings.baseDelay);
  check(Number.isFinite(settings.maxDelay) && settings.maxDelay >= 0, 'maxDelay', settings.maxDelay);
  check(settings.jitter >= 0 && settings.jitter <= 1, 'jitter', settings.jitter);
  check(Number.isFinite(settings.loginDelay) && settings.loginDelay >= 0, 'loginDelay', settings.loginDelay);
  return settings;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
