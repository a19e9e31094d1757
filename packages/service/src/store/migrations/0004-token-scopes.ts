import type { Kysely } from 'kysely';

/**
 * Scoped tokens: what a token may do (`scopes`), which accounts it may reach (`all_accounts`, or
 * the rows of api_token_accounts), and until when (`expires_at`). The defaults are what every
 * token made before was: an administrator of every account that never expires, so a deployed
 * token keeps working after the upgrade.
 *
 * `all_accounts` is a column of its own, not "no rows in api_token_accounts": a tenant's token
 * whose accounts were all deleted must see none, not every account.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('api_tokens').addColumn('scopes', 'text', (c) => c.notNull().defaultTo('admin')).execute();
  await db.schema.alterTable('api_tokens').addColumn('all_accounts', 'integer', (c) => c.notNull().defaultTo(1)).execute();
  await db.schema.alterTable('api_tokens').addColumn('expires_at', 'bigint').execute();

  await db.schema
    .createTable('api_token_accounts')
    .addColumn('token_id', 'bigint', (c) => c.notNull().references('api_tokens.id').onDelete('cascade'))
    .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('api_token_accounts_pk', ['token_id', 'account_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('api_token_accounts').execute();
  for (const column of ['expires_at', 'all_accounts', 'scopes']) await db.schema.alterTable('api_tokens').dropColumn(column).execute();
}
