import { ApiError } from './errors.js';

/**
 * How many message parses the API runs at once. A parse holds up to popwire's in-memory cap
 * (16 MiB) of message, and postal-mime needs several times that while it works (432 MB peak
 * measured on a 68 MB message before the cap existed), so a client asking for many large
 * messages at once could exhaust memory. Two parses run; up to 32 requests wait their turn; a
 * request past those gets 503 with Retry-After instead of one more buffer.
 */
export const PARSE_SLOTS = 2;
const MAX_WAITING = 32;

export class ParseSlots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly slots = PARSE_SLOTS,
    private readonly maxWaiting = MAX_WAITING,
  ) {}

  /** A slot, once one is free; call the returned function (once) when the parse and its result are done with. */
  async acquire(): Promise<() => void> {
    if (this.running >= this.slots) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new ApiError(503, 'BUSY', 'too many messages are being parsed now; try again shortly');
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays as it is.
      if (next !== undefined) next();
      else this.running--;
    };
  }

  /** Parses running and waiting, for tests and metrics. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
