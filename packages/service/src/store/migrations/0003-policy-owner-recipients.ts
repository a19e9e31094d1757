import { sql, type Kysely } from 'kysely';

/**
 * Two facts about an account, and one about a message.
 *
 * Accounts: two facts that the scheduler and `popwire sync` need:
 *
 * - `policy_owner`: who set the account's policy (and connection settings) last, `cli` or
 *   `api`. One writer owns them: `popwire sync` into the store of `popwire serve` must not
 *   turn an API account's `keep 30 days` into its own default `leave` (or, with --delete,
 *   into deleting) without being told to (cli/commands/sync.ts). Accounts made before this
 *   migration are the API's when they hold credentials, which only the API stores.
 * - `login_delay`: the seconds of the server's RFC 2449 LOGIN-DELAY, as CAPA announced it after
 *   the last login; scheduled syncs never come more often (jobs/common.ts).
 *
 * Messages: `to_mailboxes`, the To mailboxes with their names as JSON (`[{"name", "address"}]`),
 * so that the API, webhooks and `--json` give one address shape. `to_addresses` stays for
 * what it was; rows stored before this migration have no names (views give `name: ""`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('accounts').addColumn('policy_owner', 'text', (c) => c.notNull().defaultTo('cli')).execute();
  await db.schema.alterTable('accounts').addColumn('login_delay', 'integer').execute();
  await sql`update accounts set policy_owner = 'api' where credentials is not null`.execute(db);
  await db.schema.alterTable('messages').addColumn('to_mailboxes', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').dropColumn('to_mailboxes').execute();
  await db.schema.alterTable('accounts').dropColumn('login_delay').execute();
  await db.schema.alterTable('accounts').dropColumn('policy_owner').execute();
}
