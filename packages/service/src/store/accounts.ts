import type { Kysely, Updateable } from 'kysely';
import { accountCondition, EVERY_ACCOUNT, type AccountFilter } from './account-filter.js';
import { StoreError } from './errors.js';
import type { Account, AccountTable, Database, NewAccount } from './schema.js';

export type AccountFields = Omit<NewAccount, 'id' | 'created_at' | 'updated_at'>;
export type AccountChanges = Omit<Updateable<AccountTable>, 'id' | 'key' | 'created_at' | 'updated_at'>;

/**
 * Accounts. `filter` (Store.restrictedTo) limits every read and change to the accounts an API
 * token was granted; such a view makes new accounts granted to its token, and never updates an
 * account of another through upsert.
 */
export class AccountStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly filter: AccountFilter = EVERY_ACCOUNT,
  ) {}

  private visible() {
    const condition = accountCondition('accounts.id', this.filter);
    const query = this.db.selectFrom('accounts');
    return condition === undefined ? query : query.where(condition);
  }

  /** The account with this key, made or brought up to date with `fields`. */
  async upsert(fields: AccountFields, now: number): Promise<Account> {
    const { key, ...rest } = fields;
    const filter = this.filter;
    if (filter.kind === 'token') {
      // Made for a restricted token: granted to it in the same transaction. A key taken by an
      // account it cannot see is left alone (no row back: "not found" for a race the caller lost).
      return this.db.transaction().execute(async (trx) => {
        const row = await trx
          .insertInto('accounts')
          .values({ ...fields, created_at: now, updated_at: now })
          .onConflict((oc) => oc.column('key').doNothing())
          .returningAll()
          .executeTakeFirst();
        if (row === undefined) return missing(key);
        await trx.insertInto('api_token_accounts').values({ token_id: filter.tokenId, account_id: row.id }).execute();
        return row;
      });
    }
    return this.db
      .insertInto('accounts')
      .values({ ...fields, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('key').doUpdateSet({ ...rest, updated_at: now }))
      .returningAll()
      .executeTakeFirstOrThrow()
      .then((row) => row ?? missing(key));
  }

  async get(id: number): Promise<Account> {
    return (await this.visible().selectAll().where('id', '=', id).executeTakeFirst()) ?? missing(String(id));
  }

  async findByKey(key: string): Promise<Account | undefined> {
    return this.visible().selectAll().where('key', '=', key).executeTakeFirst();
  }

  /**
   * Whether any account, visible or not, has this key. Keys are unique across tenants; the
   * caller named the key, so being told it is taken says no more than the conflict would.
   */
  async keyInUse(key: string): Promise<boolean> {
    return (await this.db.selectFrom('accounts').select('id').where('key', '=', key).executeTakeFirst()) !== undefined;
  }

  /** Whether any account holds a sealed secret: then a new key would make them unreadable. */
  async holdsSealedSecrets(): Promise<boolean> {
    const row = await this.db
      .selectFrom('accounts')
      .select('id')
      .where((eb) => eb.or([eb('credentials', 'is not', null), eb('webhook_secret', 'is not', null)]))
      .limit(1)
      .executeTakeFirst();
    if (row !== undefined) return true;
    return (await this.db.selectFrom('account_destinations').select('id').where('credentials', 'is not', null).limit(1).executeTakeFirst()) !== undefined;
  }

  async list(): Promise<Account[]> {
    return this.visible().selectAll().orderBy('id').execute();
  }

  /**
   * The accounts not deleted, by id, with the columns the API shows: GET /v1/accounts. Not the
   * sealed secrets nor the lock (a list opens no secret), and the deleted ones left out by the
   * query rather than after it. Bench (e) asks for this every 100 ms while 200 accounts sync.
   */
  async listShown(): Promise<ShownAccount[]> {
    return this.visible().select(SHOWN_COLUMNS).where('deleted_at', 'is', null).orderBy('id').execute();
  }

  /** Hides a deleted account whose messages are kept: frees its key, drops its secrets, stops its syncs. */
  async markDeleted(id: number, freedKey: string, now: number): Promise<void> {
    await this.mustSee(id);
    await this.db
      .updateTable('accounts')
      .set({ key: freedKey, deleted_at: now, paused: 1, credentials: null, webhook_secret: null, updated_at: now })
      .where('id', '=', id)
      .execute();
  }

  /** Deletes the account and, by cascade, its messages, UIDs, runs and jobs. */
  async remove(id: number): Promise<void> {
    await this.mustSee(id);
    await this.db.transaction().execute(async (trx) => {
      // message_chunks reference messages, not accounts: remove them first so the cascade has less to do on SQLite.
      const messages = trx.selectFrom('messages').select('id').where('account_id', '=', id);
      await trx.deleteFrom('message_chunks').where('message_id', 'in', messages).execute();
      await trx.deleteFrom('accounts').where('id', '=', id).execute();
    });
  }

  async update(id: number, changes: AccountChanges, now: number): Promise<void> {
    await this.mustSee(id);
    await this.db.updateTable('accounts').set({ ...changes, updated_at: now }).where('id', '=', id).execute();
  }

  /** A restricted view changes only accounts it can see: the others are not found. */
  private async mustSee(id: number): Promise<void> {
    if (this.filter.kind !== 'all') await this.get(id);
  }
}

/** What the API shows of an account (accounts/service.ts view()). */
export const SHOWN_COLUMNS = [
  'id',
  'key',
  'name',
  'host',
  'port',
  'tls',
  'username',
  'auth',
  'credential_type',
  'sync_interval',
  'policy',
  'keep_days',
  'max_size',
  'oversize',
  'policy_owner',
  'webhook_url',
  'paused',
  'needs_attention',
  'status_note',
  'identity',
  'login_delay',
  'retry_after',
  'next_sync_at',
  'created_at',
  'updated_at',
  'skip_existing',
] as const satisfies ReadonlyArray<keyof Account>;

export type ShownAccount = Pick<Account, (typeof SHOWN_COLUMNS)[number]>;

function missing(which: string): never {
  throw new StoreError('STORE_ACCOUNT_NOT_FOUND', `no account ${which}`);
}
