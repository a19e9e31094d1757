import cliProgress from 'cli-progress';

/** What fetch tells the progress display; it does nothing with it when there is no terminal. */
export interface Progress {
  start(totalMessages: number, totalBytes: number): void;
  /** Octets of the current message received. */
  addBytes(count: number): void;
  /** One more message delivered. */
  addMessage(): void;
  /** Draws the final state and gives the line back; idempotent. Call before writing to stderr. */
  stop(): void;
}

const NO_PROGRESS: Progress = { start() {}, addBytes() {}, addMessage() {}, stop() {} };

/** Redraws at most this often; the bar library throttles its drawing too, but not our arithmetic. */
const UPDATE_EVERY_MS = 100;
/** The rate (and so the ETA) is measured over this much recent time, so it follows changes in speed. */
const RATE_WINDOW_MS = 5_000;

/**
 * A progress bar on `stream` (stderr) if it is a terminal: messages, octets (the total from
 * LIST's sizes, which servers compute their own way, so the count may pass it a little), rate
 * and ETA. On anything else, nothing at all: a log file or a pipe gets no control characters.
 */
export function createProgress(stream: NodeJS.WriteStream, options: { readonly enabled: boolean }): Progress {
  if (!options.enabled || stream.isTTY !== true) return NO_PROGRESS;
  const bar = new cliProgress.SingleBar({
    stream,
    format: '{bar} {percentage}% | {messages}/{totalMessages} messages | {bytes}/{totalBytes} | {rate} | ETA {etaText}',
    barsize: 24,
    hideCursor: true,
    // Ours to decide: fetch handles the signals itself and stops the bar first.
    gracefulExit: false,
  });
  let totalBytes = 0;
  let totalMessages = 0;
  let bytes = 0;
  let messages = 0;
  let lastUpdate = 0;
  let running = false;
  const samples = new RateWindow(RATE_WINDOW_MS);

  const payload = () => {
    const rate = samples.rate();
    const remaining = Math.max(0, totalBytes - bytes);
    return {
      messages,
      totalMessages,
      bytes: formatBytes(bytes),
      totalBytes: formatBytes(totalBytes),
      rate: rate === undefined ? '-' : `${formatBytes(rate)}/s`,
      etaText: messages === totalMessages ? '0s' : rate === undefined || rate === 0 ? '-' : formatDuration(remaining / rate),
    };
  };
  const update = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastUpdate < UPDATE_EVERY_MS) return;
    lastUpdate = now;
    samples.add(now, bytes);
    bar.update(Math.min(bytes, totalBytes), payload());
  };

  return {
    start(messageCount, byteCount) {
      totalMessages = messageCount;
      totalBytes = byteCount;
      running = true;
      samples.add(Date.now(), 0);
      bar.start(totalBytes, 0, payload());
    },
    addBytes(count) {
      bytes += count;
      if (running) update(false);
    },
    addMessage() {
      messages += 1;
      if (running) update(true);
    },
    stop() {
      if (!running) return;
      running = false;
      update(true);
      bar.stop();
    },
  };
}

/** Octets per second over the last `windowMs`, from (time, total so far) samples. */
class RateWindow {
  private readonly samples: Array<{ time: number; total: number }> = [];

  constructor(private readonly windowMs: number) {}

  add(time: number, total: number): void {
    this.samples.push({ time, total });
    // Keep one sample older than the window, so the rate always spans it once it can.
    while (this.samples.length > 2 && (this.samples[1] as { time: number }).time <= time - this.windowMs) this.samples.shift();
  }

  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.time - first.time < 200) return undefined;
    return ((last.total - first.total) * 1000) / (last.time - first.time);
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(count: number): string {
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export function formatDuration(seconds: number): string {
  const whole = Math.ceil(seconds);
  if (whole < 60) return `${whole}s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
