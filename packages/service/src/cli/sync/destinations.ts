/**
 * popwire sync's destinations: the same options as fetch (cli/fetch/destinations.ts defines them
 * once), each found or added in the store as one of the account's destinations (keyed by its
 * spec, so the next run with the same option finds its delivery state), and opened before the
 * POP3 session so that an unreachable one stops the run before anything is retrieved.
 */
import type { Store } from '../../store/store.js';
import type { HandoverTarget, OutboxOptions } from '../../sync/handover.js';
import { externalSpecs, openExternal, type DeliveryOptions, type ExternalContext } from '../fetch/destinations.js';

export interface SyncDestinations {
  readonly targets: readonly HandoverTarget[];
  readonly options: OutboxOptions;
}

/** The specs the options name (checked, nothing opened): a usage error comes before any connection. */
export async function syncSpecs(options: DeliveryOptions) {
  // fetch refuses --skip-existing (it remembers nothing); sync's store does.
  return externalSpecs({ ...options, skipExisting: undefined });
}

export async function openSyncDestinations(
  store: Store,
  accountId: number,
  specs: Awaited<ReturnType<typeof syncSpecs>>,
  options: DeliveryOptions,
  context: ExternalContext,
): Promise<SyncDestinations | undefined> {
  if (specs.length === 0) return undefined;
  const { formatDestination } = await import('../../destinations/spec.js');
  const rows = await store.deliveries.ensure(
    accountId,
    'cli',
    specs.map((spec) => {
      const key = formatDestination(spec);
      // No secret: an IMAP password is read from its file or the environment at each run.
      return { key, kind: spec.kind, spec: JSON.stringify({ spec: key }), credentials: null };
    }),
    Date.now(),
  );
  const destinations = await openExternal(specs, options, context);
  return {
    targets: rows.map((row, i) => ({ row, destination: destinations[i]!, recipient: options.to ?? context.pop3User })),
    options: { uidHeader: options.uidHeader !== false, sender: options.from, opened: true },
  };
}
