import type { Kysely } from 'kysely';

/**
 * The kind of an account's credentials (`password`, `oauth2`...) in clear, beside the sealed
 * secret: listing accounts shows it, and needs no key to do so. A list that opened every
 * account's secret failed whole when one secret's key was missing, and opened secrets nobody
 * asked for. Rows from before are filled in at the next start (accounts/key-check.ts), when the
 * key ring is at hand.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('accounts').addColumn('credential_type', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('accounts').dropColumn('credential_type').execute();
}
