import type { Readable } from 'node:stream';
import { isPop3Error, Pop3ServerError, type Pop3Client } from 'popwire';
import { DeliveryError, type Delivery } from '../../delivery/delivery.js';

export interface TransferOptions {
  /** DELE each message once it is delivered. */
  readonly delete: boolean;
  /** Asked between messages: true stops the transfer after the message being written. */
  readonly shouldStop: () => boolean;
  readonly onBytes: (count: number) => void;
  readonly onDelivered: (n: number) => void;
}

export interface TransferResult {
  /** Messages delivered (durably, when the delivery is durable). */
  readonly delivered: number;
  /** Their octets, as retrieved (before any mbox conversion). */
  readonly bytes: number;
  /** DELE answered +OK: these go at QUIT. */
  readonly markedDeleted: number;
  /** RETR answered -ERR: skipped, still on the server. */
  readonly unretrievable: readonly MessageFailure[];
  /** DELE answered -ERR (or never answered): delivered, but still on the server. */
  readonly notDeleted: readonly MessageFailure[];
  /** What ended the transfer early, if anything did: a delivery or connection failure. */
  readonly failure: unknown;
}

export interface MessageFailure {
  readonly n: number;
  readonly error: unknown;
}

/**
 * Retrieves `numbers` in order, pipelined, and delivers each; with `delete`, marks each deleted
 * once `deliver` has resolved (the message is durable), never before. Resolves once every DELE
 * has been answered, so the caller can QUIT knowing what QUIT will commit.
 *
 * The DELEs are pipelined with the retrievals: each is written as soon as its message is
 * delivered, and its reply is collected later, so no round trip is spent waiting on it.
 *
 * It does not throw: a failure that ends the transfer (the destination failed, the connection
 * broke) is returned in `failure`, along with what was done before it, because the caller still
 * has to decide whether to QUIT. A -ERR to one RETR (a message another session removed, a
 * server-side error reading it) skips that message and goes on.
 */
export async function transfer(
  client: Pop3Client,
  numbers: readonly number[],
  delivery: Delivery,
  options: TransferOptions,
): Promise<TransferResult> {
  let delivered = 0;
  let bytes = 0;
  let markedDeleted = 0;
  const unretrievable: MessageFailure[] = [];
  const notDeleted: MessageFailure[] = [];
  const deletions: Array<Promise<void>> = [];
  let failure: unknown;
  // numbers[next] is the message the retrieval yields next: they come in order.
  let next = 0;

  // Lazy: once a stop is asked for, no further RETR is queued (those already sent are drained).
  function* remaining(from: number): Generator<number> {
    for (let index = from; index < numbers.length && !options.shouldStop(); index++) yield numbers[index] as number;
  }

  while (next < numbers.length && !options.shouldStop()) {
    try {
      for await (const { n, body } of client.retrieveMany(remaining(next))) {
        if (options.shouldStop()) break;
        let octets = 0;
        await deliverOne(delivery, n, body, (count) => {
          octets += count;
          options.onBytes(count);
        });
        next += 1;
        delivered += 1;
        bytes += octets;
        options.onDelivered(n);
        if (options.delete) {
          deletions.push(
            client.delete(n).then(
              () => void (markedDeleted += 1),
              (error: unknown) => void notDeleted.push({ n, error }),
            ),
          );
        }
        if (options.shouldStop()) break;
      }
      break;
    } catch (error) {
      const n = numbers[next] as number;
      if (error instanceof Pop3ServerError && error.command === `RETR ${n}` && client.state === 'transaction') {
        // retrieveMany ends at its first error, so the retrieval starts again after this message:
        // the RETRs already pipelined behind it are drained and asked again. A rare case (a
        // server-side fault), so the waste is accepted rather than worked around.
        unretrievable.push({ n, error });
        next += 1;
        continue;
      }
      failure = error;
      break;
    }
  }
  // Every DELE settles: answered, or failed with the connection.
  await Promise.all(deletions);
  return { delivered, bytes, markedDeleted, unretrievable, notDeleted, failure };
}

async function deliverOne(delivery: Delivery, n: number, body: Readable, onRead: (octets: number) => void): Promise<void> {
  try {
    await delivery.deliver(n, body, onRead);
  } catch (error) {
    // The connection's failures stay what they are; anything else is the destination's.
    if (isPop3Error(error) || error instanceof DeliveryError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new DeliveryError(`Could not deliver message ${n}: ${reason}`, { cause: error });
  }
}
