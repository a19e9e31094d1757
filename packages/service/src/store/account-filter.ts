import { sql, type RawBuilder, type SqlBool } from 'kysely';

/**
 * Which accounts a reader may reach: every one, or those granted to one API token
 * (api_token_accounts). The repositories take it when they are made (Store.restrictedTo), so a
 * route holding a restricted store cannot read past it: every read that names an account, a
 * message, a run or a job adds the condition below.
 *
 * A subquery on the grants, not a list of ids read at login: an account the token creates is
 * granted in the same transaction and visible to its next query, and one deleted is gone at once.
 */
export type AccountFilter = { readonly kind: 'all' } | { readonly kind: 'token'; readonly tokenId: number };

export const EVERY_ACCOUNT: AccountFilter = { kind: 'all' };

/** `column in (the token's accounts)`, or undefined when every account is visible. */
export function accountCondition(column: string, filter: AccountFilter): RawBuilder<SqlBool> | undefined {
  if (filter.kind === 'all') return undefined;
  return sql<SqlBool>`${sql.ref(column)} in (select account_id from api_token_accounts where token_id = ${filter.tokenId})`;
}
