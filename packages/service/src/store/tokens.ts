import type { Kysely } from 'kysely';
import { createHash, randomBytes } from 'node:crypto';
import type { Database } from './schema.js';

/** A token as listed: never the token, never its hash. */
export interface TokenView {
  readonly id: number;
  readonly name: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

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
  async create(name: string): Promise<{ id: number; token: string }> {
    const token = PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
    const { id } = await this.db
      .insertInto('api_tokens')
      .values({ name, token_hash: hashToken(token), created_at: this.now(), last_used_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id, token };
  }

  async verify(token: string): Promise<boolean> {
    // Not a token of ours: no query (and no hashing of a 1 MB header).
    if (!token.startsWith(PREFIX) || token.length > 100) return false;
    const row = await this.db.selectFrom('api_tokens').select(['id', 'last_used_at']).where('token_hash', '=', hashToken(token)).executeTakeFirst();
    if (row === undefined) return false;
    const now = this.now();
    if (row.last_used_at === null || now - row.last_used_at >= TOUCH_EVERY_MS) {
      await this.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
    }
    return true;
  }

  async list(): Promise<TokenView[]> {
    const rows = await this.db.selectFrom('api_tokens').select(['id', 'name', 'created_at', 'last_used_at']).orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at }));
  }

  /** Whether there was such a token. A revoked token fails its next request. */
  async revoke(id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('api_tokens').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
