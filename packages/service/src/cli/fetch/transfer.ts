import { Readable } from 'node:stream';
import { isPop3Error, Pop3ServerError, type Pop3Client } from 'popwire';
import { DeliveryError, type Delivery } from '../../delivery/delivery.js';
import { DestinationRefused } from '../../destinations/destination.js';

export interface TransferOptions {
  /** DELE each message once a commit has made it durable. */
  readonly delete: boolean;
  /** Asked between messages: true stops the transfer after the message being written. */
  readonly shouldStop: () => boolean;
  readonly onBytes: (count: number) => void;
  readonly onDelivered: (n: number) => void;
  /**
   * The external destinations (LMTP, SMTP, IMAP, MDA; see destinations/), if any: handed each
   * whole message before `delivery` writes it, and resolving once every one accepted it. A
   * DestinationRefused skips the message (not written, not deleted: it stays on the server) and
   * the transfer goes on; any other rejection ends it like a failed delivery.
   */
  readonly handOver?: (n: number, message: Buffer) => Promise<void>;
  /**
   * Called once the transfer will send nothing more: with `delete`, when every DELE it will send
   * is written (after the last commit, so after the last fsync); without, when the last body has
   * been read, while the last commit may still run (QUIT then deletes nothing, so it needs no
   * durable point). A caller may send QUIT there: it goes out pipelined behind the DELEs instead
   * of a round trip after their replies, and the server's expunge overlaps the wait for them.
   */
  readonly onAllSent?: () => void;
}

export interface TransferResult {
  /** Messages delivered: written and committed (durably, when the delivery is durable). */
  readonly delivered: number;
  /** Their octets, as retrieved (before any mbox conversion). */
  readonly bytes: number;
  /** DELE answered +OK: these go at QUIT. */
  readonly markedDeleted: number;
  /** A destination refused them (4xx, 5xx, MDA exit 75...): skipped, still on the server. */
  readonly refused: readonly MessageFailure[];
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

/** What transfer() uses of the client (a narrower type lets a test watch the calls). */
export type TransferClient = Pick<Pop3Client, 'retrieveMany' | 'delete' | 'state'>;

/**
 * Retrieves `numbers` in order, pipelined, and delivers each; with `delete`, marks each deleted
 * once a commit of the delivery has made it durable, never before. Resolves once every DELE has
 * been answered, so the caller can QUIT knowing what QUIT will commit.
 *
 * Group commit: messages are written as they arrive, and one commit at a time runs beside the
 * retrieval, covering every message written before it started; when it ends, the next covers
 * all written meanwhile. A slow disk makes the batches bigger instead of adding its latency
 * to every message, and a fast one keeps them small. The DELEs of a committed batch are written at once, pipelined
 * behind the RETRs already queued, and their replies collected later, so no round trip is spent
 * waiting on them. Whatever ends the transfer, what was written whole is committed at the end.
 *
 * It does not throw: a failure that ends the transfer (the destination failed, the connection
 * broke) is returned in `failure`, along with what was done before it, because the caller still
 * has to decide whether to QUIT. A -ERR to one RETR (a message another session removed, a
 * server-side error reading it) skips that message and goes on.
 */
export async function transfer(
  client: TransferClient,
  numbers: readonly number[],
  delivery: Delivery,
  options: TransferOptions,
): Promise<TransferResult> {
  let delivered = 0;
  let bytes = 0;
  let markedDeleted = 0;
  const unretrievable: MessageFailure[] = [];
  const refused: MessageFailure[] = [];
  const notDeleted: MessageFailure[] = [];
  const deletions: Array<Promise<void>> = [];
  let failure: unknown;
  /** Written whole, not yet covered by a commit. */
  let written: Array<{ readonly n: number; readonly octets: number }> = [];
  /** The commit running now, if one is. */
  let committing: Promise<void> | undefined;
  /** Why a commit failed: it ends the transfer like a failed delivery. */
  let commitFailure: unknown;
  // numbers[next] is the message the retrieval yields next: they come in order.
  let next = 0;

  const startCommit = () => {
    const batch = written;
    written = [];
    committing = commitBatch(delivery, batch.length).then(
      () => {
        for (const { n, octets } of batch) {
          delivered += 1;
          bytes += octets;
          if (!options.delete) continue;
          deletions.push(
            client.delete(n).then(
              () => void (markedDeleted += 1),
              (error: unknown) => void notDeleted.push({ n, error }),
            ),
          );
        }
      },
      (error: unknown) => void (commitFailure ??= error),
    );
    void committing.finally(() => {
      committing = undefined;
      // What was written while this commit ran goes in the next one; at the end, the caller commits.
      if (written.length > 0 && commitFailure === undefined && !ended) startCommit();
    });
  };
  let ended = false;
  const stopping = () => commitFailure !== undefined || options.shouldStop();

  // Lazy: once a stop is asked for, no further RETR is queued (those already sent are drained).
  function* remaining(from: number): Generator<number> {
    for (let index = from; index < numbers.length && !stopping(); index++) yield numbers[index] as number;
  }

  while (next < numbers.length && !stopping()) {
    try {
      for await (const { n, body } of client.retrieveMany(remaining(next))) {
        if (stopping()) break;
        let octets = 0;
        const onRead = (count: number) => {
          octets += count;
          options.onBytes(count);
        };
        if (options.handOver === undefined) {
          await deliverOne(delivery, n, body, onRead);
        } else {
          const message = await readWhole(body, onRead);
          try {
            await options.handOver(n, message);
          } catch (error) {
            if (!(error instanceof DestinationRefused)) throw error;
            refused.push({ n, error });
            next += 1;
            continue;
          }
          await deliverOne(delivery, n, Readable.from([message]), () => undefined);
        }
        next += 1;
        written.push({ n, octets });
        options.onDelivered(n);
        if (committing === undefined) startCommit();
        if (stopping()) break;
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
  ended = true;
  if (!options.delete) options.onAllSent?.();
  // The last batch: every message written whole is made durable (and then deleted), whatever
  // ended the transfer. A failed commit leaves them undelivered, and on the server.
  await committing;
  if (written.length > 0 && commitFailure === undefined) {
    startCommit();
    await committing;
  }
  // A failed commit is the cause; a delivery refused after it only follows from it.
  failure = commitFailure ?? failure;
  // Each commit wrote its DELEs before `committing` settled: all are on their way.
  if (options.delete) options.onAllSent?.();
  // Every DELE settles: answered, or failed with the connection.
  await Promise.all(deletions);
  return { delivered, bytes, markedDeleted, refused, unretrievable, notDeleted, failure };
}

/** The whole message, for destinations that need its length or header first (IMAP's literal, the envelope). */
async function readWhole(body: Readable, onRead: (octets: number) => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    onRead((chunk as Buffer).length);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

async function commitBatch(delivery: Delivery, count: number): Promise<void> {
  try {
    await delivery.commit();
  } catch (error) {
    if (error instanceof DeliveryError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new DeliveryError(`Could not make the last ${count === 1 ? 'message' : `${count} messages`} durable (fsync failed): ${reason}`, { cause: error });
  }
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
