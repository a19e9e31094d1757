import type { AccountFields } from '../../store/accounts.js';
import type { Account } from '../../store/schema.js';
import type { Store } from '../../store/store.js';
import type { SyncPolicy } from '../../sync/policy.js';
import { UsageError } from '../failure.js';
import type { PolicyOptions } from './account.js';

/** What `popwire sync` does with the account's row, and the policy this run uses. */
export interface ClaimedAccount {
  readonly account: Account;
  readonly policy: SyncPolicy;
  /** A line for stderr: the run follows, or just replaced, a policy set through the API. */
  readonly note?: string | undefined;
}

/**
 * One writer owns an account's policy (store/migrations/0003): `popwire sync` once turned the
 * `keep 30 days` an API client had set into its own default `leave` (and with --delete would
 * have switched it to deleting), silently, in the store `popwire serve` runs on.
 *
 * - An account the CLI made (or took over): its row follows this run's options, as it always did.
 * - An account whose policy was set through the API:
 *   - no policy option given: this run follows the account's policy, and says so;
 *   - options that ask for the same policy: nothing to say;
 *   - options that ask for another: refused (exit 2), nothing is connected or changed, unless
 *     --replace-policy says to make them the account's policy (popwire serve then follows them
 *     too; the CLI owns the policy from then on), which is said on stderr.
 *   Its connection settings (TLS mode, mechanism, opt-ins) are the API's too: left as they are.
 */
export async function claimAccount(store: Store, fields: AccountFields, policy: SyncPolicy, options: PolicyOptions & { readonly replacePolicy?: boolean }, now: number): Promise<ClaimedAccount> {
  const existing = await store.accounts.findByKey(fields.key);
  if (existing === undefined || existing.policy_owner !== 'api') {
    // The same options as the last run (the usual cron job): no write, so a run with nothing new
    // does not commit (and fsync) an account row it did not change.
    if (existing?.policy_owner === 'cli' && unchanged(existing, fields)) return { account: existing, policy };
    return { account: await store.accounts.upsert({ ...fields, policy_owner: 'cli' }, now), policy };
  }
  const theirs = policyOfRow(existing);
  if (options.replacePolicy === true) {
    await store.accounts.update(existing.id, { policy: fields.policy, keep_days: fields.keep_days, max_size: fields.max_size, oversize: fields.oversize, policy_owner: 'cli' }, now);
    const note = samePolicy(theirs, policy)
      ? undefined
      : `${fields.key}: the policy set through the API (${describePolicy(theirs)}) is replaced by this one (${describePolicy(policy)}); popwire serve follows it from now on`;
    return { account: await store.accounts.get(existing.id), policy, note };
  }
  if (!policyGiven(options)) {
    return { account: existing, policy: theirs, note: `${fields.key} follows the policy set through the API: ${describePolicy(theirs)} (--replace-policy with policy options changes it)` };
  }
  if (samePolicy(theirs, policy)) return { account: existing, policy: theirs };
  throw new UsageError(
    `${fields.key}'s policy was set through the API: ${describePolicy(theirs)}; this sync asks for: ${describePolicy(policy)}. ` +
      'Run it without --delete, --keep-days, --max-size and --oversize to follow the account\'s policy, or add --replace-policy to make yours the account\'s policy (popwire serve follows it too)',
  );
}

/** Whether the row already holds every field this run would write. */
function unchanged(row: Account, fields: AccountFields): boolean {
  return (Object.keys(fields) as Array<keyof AccountFields>).every((name) => row[name] === fields[name]);
}

function policyGiven(options: PolicyOptions): boolean {
  return options.delete !== undefined || options.keepDays !== undefined || options.maxSize !== undefined || options.oversize !== undefined;
}

function policyOfRow(row: Account): SyncPolicy {
  return { retention: row.policy, keepDays: row.keep_days ?? undefined, maxSize: row.max_size ?? undefined, oversize: row.oversize };
}

function samePolicy(a: SyncPolicy, b: SyncPolicy): boolean {
  const keep = (p: SyncPolicy) => (p.retention === 'keep' ? p.keepDays : undefined);
  // Without a size limit, what happens over it does not matter.
  const oversize = (p: SyncPolicy) => (p.maxSize === undefined ? undefined : p.oversize);
  return a.retention === b.retention && keep(a) === keep(b) && a.maxSize === b.maxSize && oversize(a) === oversize(b);
}

/** `keep on the server 30 days, then delete; messages over 1000000 octets: headers only`. */
export function describePolicy(policy: SyncPolicy): string {
  const retention =
    policy.retention === 'leave'
      ? 'leave every message on the server'
      : policy.retention === 'delete'
        ? 'delete each message from the server once stored'
        : `delete a message from the server ${policy.keepDays ?? 0} day(s) after it was first seen`;
  if (policy.maxSize === undefined) return retention;
  return `${retention}; messages over ${policy.maxSize} octets: ${policy.oversize === 'headers' ? 'headers only' : 'skipped'}`;
}
