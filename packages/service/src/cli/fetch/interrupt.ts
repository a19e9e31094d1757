/**
 * Ctrl-C (and kill, and a closed terminal) during a fetch, in two steps:
 *   - the first signal asks for a stop: the message being written is finished, the session ends
 *     with QUIT so that the deletions of messages already delivered take effect, and popwire
 *     exits with 128 + the signal's number;
 *   - a second signal means "now": `now` runs (it drops the connection, which makes the server
 *     forget every deletion of this session, and removes a partial message) and the process exits.
 * Either way no message is lost: only delivered messages were ever marked deleted.
 */

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof SIGNALS)[number];

export interface Interrupts {
  /** The first signal received, if any. */
  readonly signal: StopSignal | undefined;
  /** Removes the handlers: signals act as they did before. */
  dispose(): void;
}

export interface InterruptHandlers {
  /** Told of the first signal, to say what happens next. */
  readonly first: (signal: StopSignal) => void;
  /** Runs at the second signal, synchronously, just before the process exits. */
  readonly now: (signal: StopSignal) => void;
  /** The process's exit code for a signal. */
  readonly exitCode: (signal: StopSignal) => number;
}

export function handleInterrupts(handlers: InterruptHandlers): Interrupts {
  let received: StopSignal | undefined;
  const listener = (signal: StopSignal) => {
    if (received === undefined) {
      received = signal;
      handlers.first(signal);
      return;
    }
    handlers.now(signal);
    process.exit(handlers.exitCode(received));
  };
  for (const signal of SIGNALS) process.on(signal, listener);
  return {
    get signal() {
      return received;
    },
    dispose() {
      for (const signal of SIGNALS) process.off(signal, listener);
    },
  };
}
