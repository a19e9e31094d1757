import cliProgress from 'cli-progress';
import type { SyncProgress } from '../../sync/session.js';
import { formatBytes } from '../fetch/progress.js';

/** What sync tells the progress display; it does nothing with it when there is no terminal. */
export interface SyncProgressDisplay {
  /** Takes each of the engine's progress events. */
  update(progress: SyncProgress): void;
  /** Draws the final state and gives the line back; idempotent. Call before writing to stderr. */
  stop(): void;
}

const NO_PROGRESS: SyncProgressDisplay = { update() {}, stop() {} };

/**
 * A bar for each session that retrieves something, on `stream` (stderr) if it is a terminal:
 * messages received of those the session retrieves, octets, rate. On anything else, nothing at
 * all: a log file or cron's mail gets no control characters.
 *
 * The engine reports `retrieving` once as the retrieval starts, then once per message written.
 * Its `done` counts committed messages, which move in batches (up to 256 at a time), so the bar
 * counts those events instead: messages received, each committed with its batch before any DELE.
 */
export function createSyncProgress(stream: NodeJS.WriteStream, options: { readonly enabled: boolean }): SyncProgressDisplay {
  if (!options.enabled || stream.isTTY !== true) return NO_PROGRESS;
  const bar = new cliProgress.SingleBar({
    stream,
    format: '{bar} {percentage}% | {value}/{total} messages | {bytes} | {rate}',
    barsize: 24,
    hideCursor: true,
    // Ours to decide: sync handles the signals itself and stops the bar first.
    gracefulExit: false,
  });
  let session = 0;
  let running = false;
  let received = 0;
  let started = 0;

  const payload = (bytes: number) => {
    const seconds = (Date.now() - started) / 1000;
    return { bytes: formatBytes(bytes), rate: seconds < 0.2 ? '-' : `${formatBytes(bytes / seconds)}/s` };
  };
  const stop = () => {
    if (!running) return;
    running = false;
    bar.stop();
  };

  return {
    update(progress) {
      if (progress.phase !== 'retrieving') return stop();
      if (progress.session !== session) {
        // The first event of a session's retrieval: how many it will retrieve.
        session = progress.session;
        if (progress.total === 0) return;
        received = 0;
        started = Date.now();
        running = true;
        bar.start(progress.total, 0, payload(0));
        return;
      }
      if (!running) return;
      received = Math.min(received + 1, progress.total);
      bar.update(received, payload(progress.bytes));
    },
    stop,
  };
}
