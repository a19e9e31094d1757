import type { Readable } from 'node:stream';

/**
 * Where fetched messages go. One message at a time: `deliver` is never called again before the
 * previous call settled. Durability comes in batches: `deliver` writes a whole message, `commit`
 * makes every message written so far durable with one round of fsyncs (see docs/architecture.md,
 * "Fetch: group commit").
 */
export interface Delivery {
  /**
   * Whether a committed message is durable: written and fsynced, so that a crash of the machine
   * right after `commit` resolves cannot lose it. Only then may the message be deleted from the
   * server. (On stdout it is not: the bytes are only handed to whoever reads them.)
   */
  readonly durable: boolean;
  /**
   * Writes message `n`, streaming `body` (never holding the whole message), and resolves once the
   * whole message is written: not yet durable, and in a Maildir not yet visible, until `commit`.
   * On failure, whatever part of the message was written is removed before it rejects, so that
   * the destination holds only whole messages. `onRead`, if given, is told the size of each chunk
   * of `body` as it is read (for progress).
   */
  deliver(n: number, body: Readable, onRead?: (octets: number) => void): Promise<void>;
  /**
   * Makes every message whose `deliver` resolved before this call durable (if `durable`) and
   * visible to readers, and resolves once it is. One commit at a time, but `deliver` may run
   * meanwhile: the message it writes waits for the next commit. If it rejects, the messages it
   * covered are not delivered (removed where possible) and every later call rejects too.
   */
  commit(): Promise<void>;
  /** Releases what the destination holds (an open file, a lock); a message not committed is removed. */
  close(): Promise<void>;
  /**
   * The synchronous last resort for a process that exits now (a second Ctrl-C): removes the
   * partial message being written, if any, and releases the lock. Safe to call at any time.
   */
  abandon(): void;
}

/**
 * The destination could not take a message (disk full, permission denied, a lock held by another
 * program). `cause` is the system's error.
 */
export class DeliveryError extends Error {
  override readonly name: string = 'DeliveryError';
}
