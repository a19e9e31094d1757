import { DestinationRefused, type Destination } from '../destinations/destination.js';
import { envelopeSender, messageDate, withUidHeader } from '../destinations/message.js';
import type { DeliveryAnswer } from '../store/deliveries.js';
import type { AccountDestination } from '../store/schema.js';
import type { Store } from '../store/store.js';

/** A destination of this run: its row (the delivery state's key) and the open-able destination. */
export interface HandoverTarget {
  readonly row: AccountDestination;
  readonly destination: Destination;
  /** The envelope recipient (RCPT TO, the MDA's %T). */
  readonly recipient: string;
}

export interface OutboxOptions {
  /** Prepend `X-Popwire-UID: UID` so that a destination can drop a duplicate. Default true. */
  readonly uidHeader?: boolean | undefined;
  /**
   * Messages handed over between two records of their answers: the in-flight window. A process
   * killed between a destination's answer and its record hands those messages over again; at
   * most this many per destination. Each record is one transaction (an fsync), so the smaller
   * the window, the more fsyncs: 1 would make one per message.
   */
  readonly recordEvery?: number | undefined;
  /** Stop handing over at the next message boundary (what is left stays due, and on the server). */
  readonly stop?: AbortSignal | undefined;
  /** The envelope sender for every message (`--from`), instead of each message's Return-Path. */
  readonly sender?: string | undefined;
  /** The destinations were opened by the caller (to find one that is unreachable before the POP3 session). */
  readonly opened?: boolean | undefined;
  /** Told after each message's answers (progress). */
  readonly onMessage?: (() => void) | undefined;
}

/** One refusal, for the run's report. */
export interface Refusal {
  readonly uid: string;
  readonly destination: string;
  readonly reply: string;
  readonly temporary: boolean;
}

export interface HandoverOutcome {
  /** Messages handed over (to at least one destination). */
  readonly handedOver: number;
  /** Answers: accepted, refused for now (tried again next run), refused (kept on the server; tried again too). */
  readonly delivered: number;
  readonly temporary: number;
  readonly permanent: number;
  /** The first refusals (at most MAX_REFUSALS_KEPT), for the report. */
  readonly refusals: readonly Refusal[];
}

export const DEFAULT_RECORD_EVERY = 100;
const MAX_REFUSALS_KEPT = 20;
/** Messages read from the store in one query before they are handed over. */
const READ_AHEAD = 64;
const READ_AHEAD_BYTES = 8 * 1024 * 1024;

/**
 * The account's outbox: after the store has committed, every stored message some destination of
 * this run has not accepted is handed to it, oldest first, and each answer recorded in the store
 * (store/deliveries.ts). Destinations are opened when first needed and stay open for the run.
 *
 * Order of the promise: stored (exactly once) → handed over → answer recorded → DELE may be sent
 * (session.ts asks `undelivered` and leaves those on the server). A crash before the record hands
 * the unrecorded messages over again on the next run: at-least-once, duplicates bounded by
 * `recordEvery`.
 */
export class Outbox {
  private readonly opened = new Set<HandoverTarget>();
  private readonly uidHeader: boolean;
  private readonly recordEvery: number;

  constructor(
    private readonly store: Store,
    private readonly accountId: number,
    readonly targets: readonly HandoverTarget[],
    private readonly now: () => number,
    private readonly options: OutboxOptions = {},
  ) {
    this.uidHeader = options.uidHeader ?? true;
    this.recordEvery = Math.max(1, options.recordEvery ?? DEFAULT_RECORD_EVERY);
    if (options.opened === true) for (const target of targets) this.opened.add(target);
  }

  /**
   * Hands over what is due. A DestinationRefused is this message's answer (recorded; the next
   * message is tried); any other failure (DestinationUnavailable, a broken connection) records
   * the answers so far and is thrown: the run fails, and nothing undelivered is deleted.
   */
  async handOver(): Promise<HandoverOutcome> {
    const rows = this.targets.map((t) => t.row);
    const due = await this.store.deliveries.due(this.accountId, rows);
    const byId = new Map(this.targets.map((t) => [t.row.id, t]));
    let answers: DeliveryAnswer[] = [];
    let pendingMessages = 0;
    const counts = { handedOver: 0, delivered: 0, temporary: 0, permanent: 0 };
    const refusals: Refusal[] = [];
    const record = async () => {
      const batch = answers;
      answers = [];
      pendingMessages = 0;
      await this.store.deliveries.record(batch, this.now());
    };
    // Read ahead: small messages a batch at a time; a large one (chunks of 1 MiB) alone.
    let ahead = new Map<number, Buffer>();
    const read = async (index: number): Promise<Buffer | undefined> => {
      const id = due[index]!.messageId;
      if (!ahead.has(id)) {
        const batch = [id];
        for (let next = index + 1, bytes = due[index]!.size; next < due.length && batch.length < READ_AHEAD && bytes + due[next]!.size <= READ_AHEAD_BYTES; next++) {
          bytes += due[next]!.size;
          batch.push(due[next]!.messageId);
        }
        ahead = await this.store.deliveries.bytes(batch);
      }
      return ahead.get(id);
    };
    try {
      for (const [index, message] of due.entries()) {
        if (this.options.stop?.aborted) break;
        const stored = await read(index);
        ahead.delete(message.messageId);
        // Purged through the API since `due` was read: nothing left to hand over.
        if (stored === undefined) continue;
        const bytes = this.uidHeader ? withUidHeader(stored, message.uid) : stored;
        const sender = this.options.sender ?? envelopeSender(stored);
        const date = messageDate(stored);
        const targets = message.destinationIds.map((id) => byId.get(id)!);
        const settled = await Promise.allSettled(
          targets.map(async (target) => {
            await this.open(target);
            await target.destination.deliver(bytes, {
              uid: message.uid,
              n: 0,
              size: bytes.length,
              envelope: { sender, recipient: target.recipient },
              ...(date === undefined ? {} : { date }),
            });
          }),
        );
        counts.handedOver++;
        let failure: unknown;
        for (const [i, result] of settled.entries()) {
          const target = targets[i]!;
          if (result.status === 'fulfilled') {
            answers.push({ messageId: message.messageId, destinationId: target.row.id, state: 'delivered', reply: null });
            counts.delivered++;
          } else if (result.reason instanceof DestinationRefused) {
            const refused = result.reason;
            answers.push({ messageId: message.messageId, destinationId: target.row.id, state: refused.temporary ? 'temporary' : 'permanent', reply: refused.reply });
            counts[refused.temporary ? 'temporary' : 'permanent']++;
            if (refusals.length < MAX_REFUSALS_KEPT) refusals.push({ uid: message.uid, destination: target.destination.describe(), reply: refused.reply, temporary: refused.temporary });
          } else {
            failure ??= result.reason;
          }
        }
        if (failure !== undefined) throw failure;
        this.options.onMessage?.();
        if (++pendingMessages >= this.recordEvery) await record();
      }
    } catch (error) {
      // What the destinations answered is recorded even when one of them failed the run; a
      // second failure (the database gone) must not hide the first.
      await record().catch(() => {});
      throw error;
    }
    await record();
    return { ...counts, refusals };
  }

  /** The UIDs of stored messages some destination of this run has not accepted: not to be deleted. */
  async undelivered(): Promise<Set<string>> {
    const due = await this.store.deliveries.due(
      this.accountId,
      this.targets.map((t) => t.row),
    );
    return new Set(due.map((m) => m.uid));
  }

  /** Ends every destination's session (QUIT, LOGOUT); never rejects. */
  async close(): Promise<void> {
    const opened = [...this.opened];
    this.opened.clear();
    await Promise.all(opened.map((t) => t.destination.close().catch(() => {})));
  }

  private async open(target: HandoverTarget): Promise<void> {
    if (this.opened.has(target)) return;
    await target.destination.open(this.options.stop);
    this.opened.add(target);
  }
}
