import { parsePop3Url, type Pop3Url } from 'popwire';
import type { AccountFields } from '../../store/accounts.js';
import type { OversizePolicy } from '../../store/schema.js';
import type { SyncPolicy } from '../../sync/policy.js';
import { UsageError } from '../failure.js';

/** The policy options of `popwire sync`, as commander hands them over. */
export interface PolicyOptions {
  readonly delete?: boolean;
  readonly keepDays?: number;
  readonly maxSize?: number;
  readonly oversize?: OversizePolicy;
}

/** What the options ask for; contradictions are usage errors, found before anything is asked or opened. */
export function policyOf(options: PolicyOptions): SyncPolicy {
  if (options.delete === true && options.keepDays !== undefined) {
    throw new UsageError(
      '--delete and --keep-days cannot be used together: --delete removes every stored message from the server, --keep-days N only those first seen N days ago',
    );
  }
  if (options.oversize !== undefined && options.maxSize === undefined) {
    throw new UsageError('--oversize says what to do with messages over --max-size: give --max-size BYTES too');
  }
  const retention = options.delete === true ? 'delete' : options.keepDays !== undefined ? 'keep' : 'leave';
  return { retention, keepDays: options.keepDays, maxSize: options.maxSize, oversize: options.oversize ?? 'skip' };
}

/** A URL with a user in it: what a sync logs in with. */
export type LoginUrl = Pop3Url & { readonly user: string };

export function loginUrl(url: string): LoginUrl {
  const target = parsePop3Url(url);
  if (target.user === undefined) throw new UsageError('sync needs a login: put the user in the URL, as in pop3://USER@HOST');
  return { ...target, user: target.user };
}

/**
 * What names the mailbox in the store: `user@host:port`. Not the password, nor the TLS mode or
 * the mechanism: the same mailbox reached another way is still the same mailbox, and its next
 * sync must find what the last one stored. The host is case-insensitive (RFC 4343).
 */
export function accountKey(target: LoginUrl): string {
  const host = target.host.toLowerCase();
  return `${target.user}@${host.includes(':') ? `[${host}]` : host}:${target.port}`;
}

/** How the session options reached the server, as the account's row records it. */
export interface ReachOptions {
  readonly allowPlaintext?: boolean;
  readonly insecure?: boolean;
}

/** The account's row: how this run reached it and the policy it uses. */
export function accountFields(target: LoginUrl, reach: ReachOptions, policy: SyncPolicy): AccountFields {
  return {
    key: accountKey(target),
    host: target.host,
    port: target.port,
    tls: target.tls,
    username: target.user,
    auth: target.auth ?? null,
    allow_plaintext_auth: reach.allowPlaintext === true ? 1 : 0,
    tls_insecure: reach.insecure === true ? 1 : 0,
    policy: policy.retention,
    keep_days: policy.keepDays ?? null,
    max_size: policy.maxSize ?? null,
    oversize: policy.oversize,
  };
}
