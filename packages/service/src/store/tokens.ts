import type { Kysely } from 'kysely';
import { createHash, randomBytes } from 'node:crypto';
import { EVERY_ACCOUNT, type AccountFilter } from './account-filter.js';
import type { Database } from './schema.js';

/**
 * What a token may do. `admin` is everything; the others are the parts a deployment hands out
 * apart: `read` (accounts, runs, jobs, messages), `write` (create, change, delete, test and sync
 * accounts), `metrics` (only /metrics, for a Prometheus scraper). http/access.ts maps routes to them.
 */
export const SCOPES = ['admin', 'read', 'write', 'metrics'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

export interface TokenOptions {
  /** Default `admin`, as every token made before scopes existed. */
  readonly scopes?: readonly Scope[] | undefined;
  /** Account ids the token is restricted to; undefined: every account. An empty list is a token that sees no account. */
  readonly accounts?: readonly number[] | undefined;
  /** Refused from this time on (ms since the epoch); undefined or null: never expires. */
  readonly expiresAt?: number | null | undefined;
}

/** A token as listed: never the token, never its hash. */
export interface TokenView {
  readonly id: number;
  readonly name: string;
  readonly scopes: readonly Scope[];
  /** `all`, or the accounts it is restricted to (by id and key). */
  readonly accounts: 'all' | ReadonlyArray<{ readonly id: number; readonly key: string }>;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly lastUsedAt: number | null;
}

/** What a valid token grants to the request that carried it. */
export interface TokenGrant {
  readonly id: number;
  readonly scopes: ReadonlySet<Scope>;
  readonly accounts: AccountFilter;
}

/** The outcome of presenting a token: its grant, or why not (an expired token is told so; anything else is just unknown). */
export type TokenCheck = { readonly ok: true; readonly grant: TokenGrant } | { readonly ok: false; readonly reason: 'unknown' } | { readonly ok: false; readonly reason: 'expired'; readonly expiredAt: number };

/** `pw_` makes a leaked token easy to recognise (secret scanners, logs); 32 random bytes make it unguessable. */
const PREFIX = 'pw_';
const TOKEN_BYTES = 32;
/** last_used_at is a hint for people ("is this token still in use?"), not an audit log: one write a minute at most. */
const TOUCH_EVERY_MS = 60_000;

/**
 * API bearer tokens. Only the SHA-256 of a token is stored, so a copy of the database gives no
 * usable token. A token is looked up by its hash: the comparison the database makes is between
 * digests, so how long it takes tells an attacker nothing about the token (a SHA-256 preimage
 * would be needed to steer it), which is what a constant-time compare of the tokens would buy.
 */
export class TokenStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Makes a token; the returned `token` is the only time it exists in clear. */
  async create(name: string, options: TokenOptions = {}): Promise<{ id: number; token: string }> {
    const scopes = [...new Set(options.scopes ?? ['admin'])];
    if (scopes.length === 0) throw new RangeError('a token needs at least one scope');
    const token = PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
    const accounts = options.accounts === undefined ? undefined : [...new Set(options.accounts)];
    const id = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('api_tokens')
        .values({
          name,
          token_hash: hashToken(token),
          created_at: this.now(),
          last_used_at: null,
          scopes: scopes.join(','),
          all_accounts: accounts === undefined ? 1 : 0,
          expires_at: options.expiresAt ?? null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (accounts !== undefined && accounts.length > 0) {
        await trx.insertInto('api_token_accounts').values(accounts.map((account_id) => ({ token_id: row.id, account_id }))).execute();
      }
      return row.id;
    });
    return { id, token };
  }

  /** Whether the token is one of ours and not expired. */
  async verify(token: string): Promise<boolean> {
    return (await this.check(token)).ok;
  }

  /** Looks the token up; records its use (at most once a minute) when it is valid. */
  async check(token: string): Promise<TokenCheck> {
    // Not a token of ours: no query (and no hashing of a 1 MB header).
    if (!token.startsWith(PREFIX) || token.length > 100) return { ok: false, reason: 'unknown' };
    const row = await this.db
      .selectFrom('api_tokens')
      .select(['id', 'last_used_at', 'scopes', 'all_accounts', 'expires_at'])
      .where('token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (row === undefined) return { ok: false, reason: 'unknown' };
    const now = this.now();
    if (row.expires_at !== null && now >= row.expires_at) return { ok: false, reason: 'expired', expiredAt: row.expires_at };
    if (row.last_used_at === null || now - row.last_used_at >= TOUCH_EVERY_MS) {
      await this.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
    }
    const accounts: AccountFilter = row.all_accounts === 1 ? EVERY_ACCOUNT : { kind: 'token', tokenId: row.id };
    return { ok: true, grant: { id: row.id, scopes: new Set(parseScopes(row.scopes)), accounts } };
  }

  async list(): Promise<TokenView[]> {
    const rows = await this.db.selectFrom('api_tokens').select(['id', 'name', 'scopes', 'all_accounts', 'created_at', 'expires_at', 'last_used_at']).orderBy('id').execute();
    const grants = await this.db
      .selectFrom('api_token_accounts')
      .innerJoin('accounts', 'accounts.id', 'api_token_accounts.account_id')
      .select(['api_token_accounts.token_id', 'accounts.id', 'accounts.key'])
      .orderBy('accounts.id')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      scopes: parseScopes(r.scopes),
      accounts: r.all_accounts === 1 ? 'all' : grants.filter((g) => g.token_id === r.id).map((g) => ({ id: g.id, key: g.key })),
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      lastUsedAt: r.last_used_at,
    }));
  }

  /** Whether there was such a token. A revoked token fails its next request. */
  async revoke(id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('api_tokens').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

/** A scope this version does not know (written by a newer one) grants nothing. */
function parseScopes(text: string): Scope[] {
  return text.split(',').filter(isScope);
}

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
