import type { Readable } from 'node:stream';

/**
 * Where fetched messages go. One message at a time: `deliver` is never called again before the
 * previous call settled.
 */
export interface Delivery {
  /**
   * Whether a delivered message is durable: written and fsynced, so that a crash of the machine
   * right after `deliver` resolves cannot lose it. Only then may the message be deleted from the
   * server. (On stdout it is not: the bytes are only handed to whoever reads them.)
   */
  readonly durable: boolean;
  /**
   * Writes message `n`, streaming `body` (never holding the whole message), and resolves once the
   * message is delivered, durably if `durable`. On failure, whatever part of the message was
   * written is removed before it rejects, so that the destination holds only whole messages.
   * `onRead`, if given, is told the size of each chunk of `body` as it is read (for progress).
   */
  deliver(n: number, body: Readable, onRead?: (octets: number) => void): Promise<void>;
  /** Releases what the destination holds (an open file, a lock). */
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
