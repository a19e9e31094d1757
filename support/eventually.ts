/**
 * Polls `check` every `everyMs` until it returns a value (not undefined, not false), or fails
 * with `what` after `ms`: for end-to-end tests that wait on another process (a service's sync,
 * a browser's page). The deadline is a bound on a hang, not a timing assertion.
 */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
