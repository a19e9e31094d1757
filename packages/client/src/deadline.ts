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
