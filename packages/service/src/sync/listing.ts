import { createHash } from 'node:crypto';
import { Pop3ServerError, type Pop3Client } from 'popwire';
import type { IdentityMode } from '../store/schema.js';
import { SyncError } from './errors.js';

/** One message of the session's maildrop: its number now, its identity across sessions, its size. */
export interface ListedMessage {
  readonly n: number;
  /** The UID, made unique within the listing (see `disambiguate`). */
  readonly uid: string;
  readonly size: number;
}

export interface Listing {
  readonly messages: readonly ListedMessage[];
  readonly identity: IdentityMode;
  /** How many listed UIDs repeated an earlier one in the same listing. */
  readonly duplicates: number;
}

/**
 * TOP commands in flight at once when digesting. Each reply is held whole (up to MAX_HEADER_BYTES),
 * so this bounds what a hostile server can make the digest hold: 32 MiB.
 */
const DIGEST_BATCH = 32;

/**
 * Largest header block (TOP n 0) held, for a digest or a headers-only copy. Real header blocks
 * are kilobytes; a server that sends an endless one is cut off here, with a protocol error that
 * ends the session, instead of growing a buffer up to the client's 256 MiB message bound.
 */
export const MAX_HEADER_BYTES = 1024 * 1024;

/**
 * UIDL, and LIST when sizes are needed, joined by message number.
 *
 * `known` gives the recorded size of every UID stored before (and not deleted by us since).
 * When UIDL lists only those, LIST is not sent: a run with nothing new costs UIDL and QUIT.
 * Otherwise LIST gives the sizes the size limit needs and that expose a reused UID.
 *
 * Without UIDL (RFC 1939 makes it optional; some old servers lack it, and a -ERR to UIDL says
 * so too), each message is named by a digest of its header block (TOP n 0) and its size, as
 * fetchmail and getmail do: stable as long as the server sends the same headers, and headers
 * carry Received and Message-ID lines that make two messages' digests differ in practice.
 */
export async function readListing(
  client: Pop3Client,
  known: ReadonlyMap<string, number>,
  /** UIDL already asked (askUids), so the server built it while the caller read its store. */
  asked: ReturnType<typeof askUids> = askUids(client),
): Promise<Listing> {
  const uids = await asked;
  if (uids !== undefined) {
    // One pass over the compact listing, by index: each UID read once, named as disambiguate
    // names it, and looked up in `known` once; no object per UIDL line beside the one kept here,
    // and no second walk to ask whether all are known (cold code in a fresh process: with nothing
    // new, this loop is most of what the run does between UIDL and QUIT).
    const messages = new Array<ListedMessage>(uids.length);
    const names = new RepeatNames();
    let allKnown = true;
    for (let i = 0; i < uids.length; i++) {
      const uid = names.name(uids.uid(i));
      // A repeated UID's size is the one recorded under its own name (`dup #2`), not the first's:
      // with the first's, a LIST-less run took the second for a reused UID and fetched it again.
      const size = known.get(uid);
      if (size === undefined) allKnown = false;
      messages[i] = { n: uids.n(i), uid, size: size ?? -1 };
    }
    const named: Listing = { messages, identity: 'uidl', duplicates: names.duplicates };
    if (allKnown) return named;
    const sizes = new Map((await client.list()).map((m) => [m.n, m.size]));
    // A server whose UIDL and LIST disagree on the messages cannot be trusted with either: digest them.
    if (sizes.size === named.messages.length && named.messages.every((m) => sizes.has(m.n))) {
      return { ...named, messages: named.messages.map((m) => ({ ...m, size: sizes.get(m.n)! })) };
    }
  }
  const sizes = await client.list();
  if (sizes.length > 0 && client.capabilities().lines.length > 0 && !client.capabilities().top) {
    throw new SyncError('SYNC_NO_IDENTITY', 'the server offers neither UIDL nor TOP, so messages cannot be told apart between sessions');
  }
  const named: Array<{ n: number; uid: string; size: number }> = [];
  for (let i = 0; i < sizes.length; i += DIGEST_BATCH) {
    const batch = sizes.slice(i, i + DIGEST_BATCH);
    // Issued together, so a pipelining server gets them in one write.
    const heads = await Promise.all(batch.map((m) => client.top(m.n, 0, MAX_HEADER_BYTES)));
    batch.forEach((m, k) => named.push({ n: m.n, uid: digestUid(heads[k]!, m.size), size: m.size }));
  }
  return disambiguate(named, 'digest');
}

/**
 * Sends UIDL now and resolves with its listing, or undefined when the server has none. Asked
 * before the session reads its seen UIDs from the store, the server's work and the store's
 * overlap: a run with nothing new is little more than UIDL and QUIT, so what it does between
 * them is what it costs over a raw session.
 */
export function askUids(client: Pop3Client): ReturnType<typeof readUids> {
  const asked = readUids(client);
  // Awaited by readListing; a failure before then (the store failed first) must not go unhandled.
  asked.catch(() => {});
  return asked;
}

async function readUids(client: Pop3Client) {
  const caps = client.capabilities();
  // CAPA is optional (RFC 2449): a server without it may still have UIDL, so ask and see.
  if (caps.lines.length > 0 && !caps.uidl) return undefined;
  try {
    return await client.uidListing();
  } catch (error) {
    if (error instanceof Pop3ServerError) return undefined;
    throw error;
  }
}

export function digestUid(head: Buffer, size: number): string {
  return `digest-${createHash('sha256').update(head).update(`\0${size}`).digest('hex').slice(0, 40)}`;
}

/**
 * RFC 1939 says a UID is unique within the maildrop; servers have broken that (a restored
 * backup, a Maildir copied into itself). A repeated UID gets ` #2`, ` #3`, in listing order: a UID
 * never contains a space (RFC 1939: 0x21 to 0x7E), so the name cannot collide with a real one.
 */
export function disambiguate(listed: ReadonlyArray<{ n: number; uid: string; size: number }>, identity: IdentityMode): Listing {
  const names = new RepeatNames();
  const messages = listed.map((m) => {
    const uid = names.name(m.uid);
    return uid === m.uid ? m : { n: m.n, uid, size: m.size };
  });
  return { messages, identity, duplicates: names.duplicates };
}

/** Names UIDs in listing order as disambiguate does: the first as it is, a repeat ` #2`, ` #3`. */
class RepeatNames {
  private readonly counts = new Map<string, number>();
  duplicates = 0;

  name(base: string): string {
    const count = (this.counts.get(base) ?? 0) + 1;
    this.counts.set(base, count);
    if (count === 1) return base;
    this.duplicates++;
    return `${base} #${count}`;
  }
}
