import type { SeenEntry } from '../store/seen-uids.js';
import type { ListedMessage } from './listing.js';
import { DAY_MS, type SyncPolicy } from './policy.js';

/** What one session will do with each listed message. Pure: the tests walk it through every case. */
export interface SessionPlan {
  /** New (or a UID back with another size, or a size limit since raised): RETR. */
  readonly retrieve: readonly ListedMessage[];
  /** Over the size limit, with the `headers` policy, and not kept before: TOP n 0. */
  readonly headers: readonly ListedMessage[];
  /** Over the size limit and not stored. Reported every run until the limit allows them. */
  readonly skipped: readonly ListedMessage[];
  /** Stored before (whole, or its headers while still over the limit). */
  readonly known: readonly ListedMessage[];
  /** Known UIDs listed with a size other than the one recorded: a server that reused a UID. Retrieved again. */
  readonly reused: readonly ListedMessage[];
}

export function planSession(listing: readonly ListedMessage[], seen: ReadonlyMap<string, SeenEntry>, policy: SyncPolicy): SessionPlan {
  const retrieve: ListedMessage[] = [];
  const headers: ListedMessage[] = [];
  const skipped: ListedMessage[] = [];
  const known: ListedMessage[] = [];
  const reused: ListedMessage[] = [];
  const fits = (m: ListedMessage) => policy.maxSize === undefined || m.size <= policy.maxSize;

  for (const message of listing) {
    const row = seen.get(message.uid);
    // A UID we saw deleted (QUIT acknowledged) that is listed again is another message under a reused UID.
    const sameSize = row?.listed_size === message.size && row.deleted_at === null;
    if (row !== undefined && row.state !== 'skipped' && !sameSize) reused.push(message);
    // What we already hold of this very message.
    const have = sameSize ? row?.state : undefined;
    // `ignored` (skip-existing): seen, never retrieved, never deleted.
    if (have === 'stored' || have === 'ignored') known.push(message);
    else if (fits(message)) retrieve.push(message);
    else if (policy.oversize === 'headers') (have === 'headers' ? known : headers).push(message);
    else skipped.push(message);
  }
  return { retrieve, headers, skipped, known, reused };
}

/**
 * The listed messages to DELE: only those whose whole message is committed (`stored`), never
 * one kept as headers or skipped; all of them for `delete`, those first seen at least
 * `keepDays` ago for `keep`, none for `leave`.
 */
export function planDeletions(
  listing: readonly ListedMessage[],
  stored: ReadonlyMap<string, { readonly firstSeenAt: number }>,
  policy: SyncPolicy,
  now: number,
): ListedMessage[] {
  if (policy.retention === 'leave') return [];
  const cutoff = policy.retention === 'keep' ? now - (policy.keepDays ?? 0) * DAY_MS : Infinity;
  return listing.filter((m) => {
    const entry = stored.get(m.uid);
    return entry !== undefined && entry.firstSeenAt <= cutoff;
  });
}
