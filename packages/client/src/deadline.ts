import { Pop3TimeoutError, Pop3UsageError } from './errors.js';

/**
 * A signal that aborts when `ms` have passed (with a `TimeoutError`, as AbortSignal.timeout
 * does) or when `signal` aborts, whichever comes first.
 *
 * Why not `AbortSignal.any([AbortSignal.timeout(ms), signal])`: on Node 20 the timeout signal
 * inside such a composite is held only weakly, and once the garbage collector takes it, its
 * timer is cleared and the deadline never comes (nodejs/node#57736). A connect against a server
 * that accepts and then stalls would then wait forever, under exactly the memory pressure of a
 * busy sync service. Here the timer holds the controller until it fires or `clear()` runs.
 *
 * The timer is unref'd: a deadline alone does not keep the process alive. `reason`, if given,
 * makes the abort reason instead of the TimeoutError.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Stops the timer and lets go of `signal`; the deadline then never fires. */
  clear(): void;
}

export function deadline(ms: number, signal?: AbortSignal, reason?: () => unknown): Deadline {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  const timer = setTimeout(
    () => controller.abort(reason === undefined ? new DOMException('The operation was aborted due to timeout', 'TimeoutError') : reason()),
    Math.max(0, ms),
  );
  timer.unref();
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** The `deadline` option as a Date (a number is milliseconds from now); checked before anything is sent. */
export function sessionEnd(value: number | Date | undefined): Date | undefined {
  if (value === undefined) return undefined;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new Pop3UsageError('deadline is an invalid Date', { code: 'POP3_INVALID_ARGUMENT' });
    return value;
  }
  if (!Number.isFinite(value) || value <= 0) {
    throw new Pop3UsageError(`deadline must be a positive number of milliseconds or a Date; got ${String(value)}`, { code: 'POP3_INVALID_ARGUMENT' });
  }
  return new Date(Date.now() + value);
}

/**
 * A signal that aborts at `end` with a Pop3TimeoutError naming it, or when `signal` aborts. The
 * engine fails whatever is in flight with that error (see the constructor's onAbort).
 */
export function sessionDeadline(end: Date | undefined, signal: AbortSignal | undefined): Deadline | undefined {
  if (end === undefined) return undefined;
  return deadline(end.getTime() - Date.now(), signal, () => deadlinePassed(end));
}

export function deadlinePassed(end: Date): Pop3TimeoutError {
  return new Pop3TimeoutError(`The session's deadline passed (${end.toISOString()}): the server was too slow overall, though each reply kept coming`, {
    // Trying again cannot help: the time is gone (and a retry loop must not spin on it).
    retryable: false,
    deadline: end,
  });
}
