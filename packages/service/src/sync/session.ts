import { Pop3ConnectionError, Pop3ServerError, type Pop3Client } from 'popwire';
import type { Store } from '../store/store.js';
import type { IdentityMode } from '../store/schema.js';
import type { SeenEntry } from '../store/seen-uids.js';
import { askUids, MAX_HEADER_BYTES, readListing, type ListedMessage } from './listing.js';
import type { AccountLock } from './lock.js';
import type { HandoverOutcome, Outbox } from './handover.js';
import { planDeletions, planSession } from './plan.js';
import type { SyncPolicy } from './policy.js';
import { MessageWriter, type CommittedMessage, type WriterOptions } from './writer.js';

export type SyncPhase = 'connecting' | 'listing' | 'retrieving' | 'deleting' | 'quitting';

export interface SyncProgress {
  readonly phase: SyncPhase;
  readonly session: number;
  /** Messages to retrieve in this session; how many have been received whole, and how many of those are committed. */
  readonly total: number;
  readonly received: number;
  readonly done: number;
  readonly bytes: number;
}

/** What one session did. */
export interface SessionOutcome {
  readonly identity: IdentityMode;
  readonly listed: number;
  readonly stored: number;
  readonly headersOnly: number;
  readonly alreadyHad: number;
  readonly skipped: readonly ListedMessage[];
  readonly deleted: number;
  readonly bytes: number;
  readonly duplicates: number;
  readonly reused: number;
  /** RETR answered -ERR (another session expunged it): not stored now, tried again next run. */
  readonly unavailable: number;
  /** Stored UIDs not deleted by us that the server no longer lists. */
  readonly gone: number;
  /** Known messages retrieved again, their bytes not stored again (see `retrievedAgain` below). */
  readonly retrievedAgain: number;
  /** skip-existing: UIDs on the server at the account's first sync, recorded as seen, not retrieved. */
  readonly ignoredExisting: number;
  /** What the destinations answered this session; undefined without destinations. */
  readonly handover: HandoverOutcome | undefined;
  /** Stored messages on the server that some destination has not accepted: kept there. */
  readonly undelivered: number;
}

export interface SessionContext {
  readonly store: Store;
  readonly accountId: number;
  readonly policy: SyncPolicy;
  readonly lock: AccountLock;
  readonly session: number;
  /** The account's seen UIDs, read while the session connected (run.ts); read here when absent. */
  readonly seen?: Promise<Map<string, SeenEntry>> | undefined;
  readonly now: () => number;
  readonly writer?: WriterOptions | undefined;
  /** Stop retrieving at the next message boundary, then finish the session cleanly. */
  readonly stop?: AbortSignal | undefined;
  readonly progress: (progress: SyncProgress) => void;
  readonly onCommit?: ((messages: readonly CommittedMessage[]) => void) | undefined;
  /**
   * With Gmail's partial listings (run.ts `repeat`), after a run that did not end well: the UIDs
   * retrieved again so far in this run. Gmail hides a message only after a QUIT that follows its
   * RETR. One stored in a session that died before its QUIT stays listed and known, and a
   * listing window full of such messages would hide the rest of the mailbox from every later
   * session. So a session with nothing new retrieves the known messages it keeps on the server
   * again, reads and drops their bytes, and its QUIT hides them; each UID at most once per run,
   * so that a server that lists them again anyway (Gmail's "recent" mode) costs one extra
   * session, not a loop.
   */
  readonly retrievedAgain?: Set<string> | undefined;
  /** The destinations to hand each stored message to before it may be deleted (handover.ts). */
  readonly outbox?: Outbox | undefined;
  /** At the account's first sync (no UID seen yet): record every listed UID as seen, retrieve none. */
  readonly skipExisting?: boolean | undefined;
}

/**
 * One POP3 session of a sync: UIDL diff, retrieve and commit, DELE what is committed, QUIT.
 *
 * The order is the promise. A message's DELE is sent only after the transaction holding its
 * bytes and its UID has committed; the deletions take effect only at QUIT, after which they are
 * recorded. A failure anywhere before QUIT drops the connection without QUIT, so the server
 * rolls every DELE of this session back (RFC 1939 section 6); what was committed stays
 * committed, and the next run finds those UIDs known and does not store them again.
 */
export async function runSession(client: Pop3Client, ctx: SessionContext): Promise<SessionOutcome> {
  const { store, accountId, policy, now } = ctx;
  const writer = new MessageWriter(store, accountId, now, ctx.writer, ctx.onCommit);
  let bytes = 0;
  let received = 0;
  const report = (phase: SyncPhase, total = 0) => ctx.progress({ phase, session: ctx.session, total, received, done: writer.committed.length, bytes });
  try {
    report('listing');
    // UIDL first: the server lists while the store reads (listing.ts askUids).
    const asked = askUids(client);
    const seen = await (ctx.seen ?? store.seen.forSession(accountId));
    const known = new Map<string, number>();
    // Only LIST's sizes expose a UID the server gave to another message (plan.ts): without them
    // such a newcomer looks stored, and a policy that deletes would delete it unread. So the
    // LIST-less listing (UIDL only, all known) is for runs that delete nothing.
    const listless = policy.retention === 'leave';
    // Stored and not deleted by us: what the server may still list (for `gone` below).
    let held = 0;
    for (const row of seen.values()) {
      if (row.state !== 'stored' || row.deleted_at !== null) continue;
      held++;
      if (listless) known.set(row.uid, row.listed_size);
    }
    const listing = await readListing(client, known, asked);
    const ignoredExisting = ctx.skipExisting === true && seen.size === 0 ? await store.seen.markIgnored(accountId, listing.messages, seen, now()) : 0;
    const plan = planSession(listing.messages, seen, policy);
    const sessionStart = now();
    const firstSeen = (uid: string) => seen.get(uid)?.first_seen_at ?? sessionStart;

    const total = plan.retrieve.length + plan.headers.length;
    if (total > 0) await writer.ready();
    report('retrieving', total);
    let unavailable = 0;
    let stored = 0;
    const each = async (message: ListedMessage, body: AsyncIterable<Buffer>, headersOnly: boolean) => {
      bytes += await writer.write(message, firstSeen(message.uid), body, headersOnly);
      stored++;
      received++;
      report('retrieving', total);
    };
    unavailable += await retrieveEach(client, plan.retrieve, (m, body) => each(m, body, false), ctx.stop);
    for (const message of plan.headers) {
      if (ctx.stop?.aborted) break;
      try {
        await each(message, oneChunk(await client.top(message.n, 0, MAX_HEADER_BYTES)), true);
      } catch (error) {
        if (!(error instanceof Pop3ServerError)) throw error;
        unavailable++;
      }
    }
    await writer.flush();
    const newlySkipped = plan.skipped.filter((m) => seen.get(m.uid)?.state !== 'skipped' || seen.get(m.uid)?.listed_size !== m.size);
    await store.seen.markSkipped(
      accountId,
      newlySkipped.map((m) => ({ uid: m.uid, listedSize: m.size })),
      now(),
    );

    // Then the destinations get what they have not accepted (this session's messages and any
    // left from before); a message one of them has not accepted stays on the server.
    const handover = await ctx.outbox?.handOver();
    const undelivered = ctx.outbox === undefined ? new Set<string>() : await ctx.outbox.undelivered();

    // Only now, with every commit returned, may anything be deleted. (Under `leave`, nothing is:
    // a run with nothing new need not walk the listing again to find that out.)
    const committed = new Map<string, { firstSeenAt: number }>();
    if (policy.retention !== 'leave') {
      for (const m of plan.known) {
        const row = seen.get(m.uid);
        if (row?.state === 'stored') committed.set(m.uid, { firstSeenAt: row.first_seen_at });
      }
      for (const m of writer.committed) if (!m.headersOnly) committed.set(m.uid, m);
      for (const uid of undelivered) committed.delete(uid);
    }
    const toDelete = planDeletions(listing.messages, committed, policy, now());
    let again: ListedMessage[] = [];
    if (ctx.retrievedAgain !== undefined && total === 0) {
      const deleting = new Set(toDelete.map((m) => m.uid));
      again = plan.known.filter((m) => !deleting.has(m.uid) && !ctx.retrievedAgain!.has(m.uid));
      for (const m of again) ctx.retrievedAgain.add(m.uid);
      await retrieveEach(client, again, drain, ctx.stop);
    }
    ctx.lock.check();
    report('deleting', total);
    const deleted = await deleteEach(client, toDelete);

    report('quitting', total);
    // quit() on a connection that already dropped returns quietly; here that would record
    // deletions the server never applied.
    if (client.state === 'closed') throw new Pop3ConnectionError('The connection closed before QUIT', { code: 'POP3_CONNECTION_CLOSED' });
    await client.quit();
    await store.seen.markDeleted(accountId, deleted, now());

    // Listed UIDs are unique (disambiguate): those still held, less those listed, are gone.
    let listedHeld = 0;
    for (const m of listing.messages) {
      const row = seen.get(m.uid);
      if (row?.state === 'stored' && row.deleted_at === null) listedHeld++;
    }
    const gone = held - listedHeld;
    return {
      identity: listing.identity,
      listed: listing.messages.length,
      stored,
      headersOnly: writer.committed.filter((m) => m.headersOnly).length,
      alreadyHad: plan.known.length,
      skipped: plan.skipped,
      deleted: deleted.length,
      bytes,
      duplicates: listing.duplicates,
      reused: plan.reused.length,
      unavailable,
      gone,
      retrievedAgain: again.length,
      ignoredExisting,
      handover,
      undelivered: undelivered.size === 0 ? 0 : listing.messages.filter((m) => undelivered.has(m.uid)).length,
    };
  } catch (error) {
    // Whatever arrived whole is kept; the failure is reported after. A second failure here (the
    // database gone) must not hide the first.
    await writer.flush().catch(() => {});
    client.close();
    throw error;
  }
}

/**
 * RETR the messages in order, pipelined, handing each body to `each`. A message the server
 * answers -ERR for (another session expunged it) is counted and passed over; the connection
 * is still good, so retrieval goes on from the next one. Returns how many were passed over.
 */
async function retrieveEach(
  client: Pop3Client,
  messages: readonly ListedMessage[],
  each: (message: ListedMessage, body: AsyncIterable<Buffer>) => Promise<void>,
  stop: AbortSignal | undefined,
): Promise<number> {
  let index = 0;
  let unavailable = 0;
  while (index < messages.length && !stop?.aborted) {
    const iterator = client.retrieveMany(untilStopped(messages.slice(index).map((m) => m.n), stop));
    try {
      for (;;) {
        let next: IteratorResult<{ n: number; body: AsyncIterable<Buffer> }>;
        try {
          next = await iterator.next();
        } catch (error) {
          if (!(error instanceof Pop3ServerError)) throw error;
          unavailable++;
          index++;
          break;
        }
        if (next.done) return unavailable;
        await each(messages[index]!, next.value.body);
        index++;
        if (stop?.aborted) break;
      }
    } finally {
      await iterator.return(undefined);
    }
  }
  return unavailable;
}

/**
 * The message numbers, read lazily by retrieveMany as it fills its pipeline: once `stop` fires,
 * no further RETR is asked for, so a stop waits for the messages already requested, not for the
 * whole mailbox.
 */
function* untilStopped(numbers: readonly number[], stop: AbortSignal | undefined): Generator<number> {
  for (const n of numbers) {
    if (stop?.aborted) return;
    yield n;
  }
}

/**
 * DELE each message; every command is sent at once (pipelined when the server allows it).
 * Returns the UIDs the server accepted. A -ERR (another session took the message first) leaves
 * that one out; a broken connection fails the session, and nothing is deleted.
 */
async function deleteEach(client: Pop3Client, messages: readonly ListedMessage[]): Promise<string[]> {
  const replies = await Promise.allSettled(messages.map((m) => client.delete(m.n)));
  const broken = replies.find((r) => r.status === 'rejected' && !(r.reason instanceof Pop3ServerError));
  if (broken !== undefined) throw (broken as PromiseRejectedResult).reason;
  return messages.filter((_, i) => replies[i]!.status === 'fulfilled').map((m) => m.uid);
}

async function drain(_message: ListedMessage, body: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of body) void chunk;
}

async function* oneChunk(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}
