/**
 * Several destinations at once: a message counts as delivered only when every one accepted it.
 *
 * They are tried in order, and the first that does not accept ends the attempt: the ones after it
 * do not get the message, because it stays on the POP3 server and comes back next run, and every
 * destination that got it this time gets it again then (a duplicate X-Popwire-UID lets it drop the
 * copy). Stopping at the first failure keeps those duplicates to the destinations before it.
 */
import type { Destination, MessageMeta } from './destination.js';

export async function deliverToAll(destinations: readonly Destination[], message: Buffer, meta: MessageMeta): Promise<void> {
  for (const destination of destinations) await destination.deliver(message, meta);
}

/** Opens each in order; if one fails, those already open are closed and the failure is thrown. */
export async function openAll(destinations: readonly Destination[], signal?: AbortSignal): Promise<void> {
  const opened: Destination[] = [];
  try {
    for (const destination of destinations) {
      await destination.open(signal);
      opened.push(destination);
    }
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
}

export async function closeAll(destinations: readonly Destination[]): Promise<void> {
  await Promise.all(destinations.map((destination) => destination.close().catch(() => undefined)));
}
