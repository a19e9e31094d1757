import type { Kysely, Updateable } from 'kysely';
import { StoreError } from './errors.js';
import type { Account, AccountTable, Database, NewAccount } from './schema.js';

export type AccountFields = Omit<NewAccount, 'id' | 'created_at' | 'updated_at'>;
export type AccountChanges = Omit<Updateable<AccountTable>, 'id' | 'key' | 'created_at' | 'updated_at'>;

export class AccountStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The account with this key, made or brought up to date with `fields`. */
  async upsert(fields: AccountFields, now: number): Promise<Account> {
    const { key, ...rest } = fields;
    return this.db
      .insertInto('accounts')
      .values({ ...fields, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('key').doUpdateSet({ ...rest, updated_at: now }))
      .returningAll()
      .executeTakeFirstOrThrow()
      .then((row) => row ?? missing(key));
  }

  async get(id: number): Promise<Account> {
    return (await this.db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst()) ?? missing(String(id));
  }

  async findByKey(key: string): Promise<Account | undefined> {
    return this.db.selectFrom('accounts').selectAll().where('key', '=', key).executeTakeFirst();
  }

  async list(): Promise<Account[]> {
    return this.db.selectFrom('accounts').selectAll().orderBy('id').execute();
  }

  /** Hides a deleted account whose messages are kept: frees its key, drops its secrets, stops its syncs. */
  async markDeleted(id: number, freedKey: string, now: number): Promise<void> {
    await this.db
      .updateTable('accounts')
      .set({ key: freedKey, deleted_at: now, paused: 1, credentials: null, webhook_secret: null, updated_at: now })
      .where('id', '=', id)
      .execute();
  }

  /** Deletes the account and, by cascade, its messages, UIDs, runs and jobs. */
  async remove(id: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      // message_chunks reference messages, not accounts: remove them first so the cascade has less to do on SQLite.
      const messages = trx.selectFrom('messages').select('id').where('account_id', '=', id);
      await trx.deleteFrom('message_chunks').where('message_id', 'in', messages).execute();
      await trx.deleteFrom('accounts').where('id', '=', id).execute();
    });
  }

  async update(id: number, changes: AccountChanges, now: number): Promise<void> {
    await this.db.updateTable('accounts').set({ ...changes, updated_at: now }).where('id', '=', id).execute();
  }
}

function missing(which: string): never {
  throw new StoreError('STORE_ACCOUNT_NOT_FOUND', `no account ${which}`);
}
