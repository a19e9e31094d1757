import type { Store } from '../store/store.js';
import { sealedKeyId, SecretKeyError, type SecretBox } from './secrets.js';
import { aad } from './service.js';

/**
 * The key ring checked against the store at start. A store holding secrets that no key of the
 * ring opens makes `popwire serve` refuse to start, naming the missing key ids and the accounts
 * whose secrets need them.
 *
 * Why refuse rather than start and report it in /health: a missing key is nearly always a
 * deployment mistake (POPWIRE_SECRET_KEY from another environment, a key file not mounted, a
 * rotation that dropped the old key too early), and it hits every account sealed with that key.
 * A service that started anyway would fail each of those syncs and could not sign those
 * webhooks, while /health (public, for load balancers, saying only ok or not) stayed green: the
 * silent failure this check exists to stop. At start the operator is watching, and the message
 * says what to do. The key ids are prefixes of the keys' SHA-256: they tell the keys apart and
 * reveal nothing of them.
 *
 * With the ring at hand, it also fills in the credential type of accounts from before migration
 * 0005, so that listing accounts never has to open a secret.
 */
export async function checkKeyRing(store: Store, box: SecretBox, now: number = Date.now()): Promise<void> {
  const rows = await sealedRows(store);
  const missing = missingKeys(rows, box);
  // Destinations' SMTP/IMAP secrets (migration 0006) need the ring too.
  for (const row of await sealedDestinations(store)) {
    const id = sealedKeyId(row.credentials) ?? 'unreadable';
    if (box.has(id)) continue;
    missing.set(id, (missing.get(id) ?? new Set<number>()).add(row.account_id));
  }
  if (missing.size > 0) {
    const keys = [...missing].map(([id, accounts]) => `${id} (account${accounts.size > 1 ? 's' : ''} ${[...accounts].join(', ')})`);
    throw new SecretKeyError(
      `the store holds secrets sealed with key${missing.size > 1 ? 's' : ''} that the key ring lacks: ${keys.join('; ')}. ` +
        `Start with a ring that holds them (POPWIRE_SECRET_KEY or secretKeyFile: keys separated by commas or lines, the current one first); this ring's current key is ${box.currentKeyId}. ` +
        `If a key is lost for good, \`popwire keys forget KEY_ID\` drops what it sealed, and the accounts wait for new credentials`,
    );
  }
  for (const row of rows) {
    if (row.credentials === null || row.credential_type !== null) continue;
    const type = (JSON.parse(box.open(row.credentials, aad(row.key, 'credentials'))) as { type: string }).type;
    await store.accounts.update(row.id, { credential_type: type }, now);
  }
}

/** What `popwire keys forget` did to one account. */
export interface ForgottenSecrets {
  readonly accountId: number;
  readonly credentials: boolean;
  readonly webhook: boolean;
}

/**
 * The way out when a key is lost for good: drops every secret sealed with one of `keyIds`, so
 * that `popwire serve` starts again. An account that lost its credentials needs attention (the
 * scheduler leaves it alone, and its note says why) until new ones arrive through PATCH; one
 * that lost its webhook secret loses the webhook, which is set again the same way. A key the
 * ring still holds is refused: its secrets are readable, and forgetting them would destroy them.
 */
export async function forgetLostKeys(store: Store, box: SecretBox, keyIds: readonly string[], now: number = Date.now()): Promise<ForgottenSecrets[]> {
  const held = keyIds.filter((id) => box.has(id));
  if (held.length > 0) throw new SecretKeyError(`key ${held.join(', ')} is in the key ring: its secrets can still be opened, so they are not forgotten`);
  const lost = new Set(keyIds);
  const forgotten: ForgottenSecrets[] = [];
  for (const row of await sealedRows(store)) {
    const credentials = row.credentials !== null && lost.has(sealedKeyId(row.credentials) ?? 'unreadable');
    const webhook = row.webhook_secret !== null && lost.has(sealedKeyId(row.webhook_secret) ?? 'unreadable');
    if (!credentials && !webhook) continue;
    const note = [
      credentials ? 'its credentials were sealed with a key that was lost: send them again (PATCH /v1/accounts/{id})' : undefined,
      webhook ? 'its webhook was dropped with the lost key: set it again' : undefined,
    ].filter((part) => part !== undefined);
    await store.accounts.update(
      row.id,
      {
        ...(credentials ? { credentials: null, needs_attention: 1 } : {}),
        ...(webhook ? { webhook_url: null, webhook_secret: null } : {}),
        status_note: note.join('; '),
      },
      now,
    );
    forgotten.push({ accountId: row.id, credentials, webhook });
  }
  // A destination whose secret went with the key keeps its place and state; its next login fails until PATCH sends the secret again.
  for (const row of await sealedDestinations(store)) {
    if (!lost.has(sealedKeyId(row.credentials) ?? 'unreadable')) continue;
    await store.db.updateTable('account_destinations').set({ credentials: null, updated_at: now }).where('id', '=', row.id).execute();
    if (!forgotten.some((f) => f.accountId === row.account_id)) forgotten.push({ accountId: row.account_id, credentials: false, webhook: false });
  }
  return forgotten;
}

async function sealedDestinations(store: Store): Promise<Array<{ id: number; account_id: number; credentials: string }>> {
  const rows = await store.db.selectFrom('account_destinations').select(['id', 'account_id', 'credentials']).where('credentials', 'is not', null).orderBy('id').execute();
  return rows.map((row) => ({ id: row.id, account_id: row.account_id, credentials: row.credentials! }));
}

async function sealedRows(store: Store) {
  return store.db
    .selectFrom('accounts')
    .select(['id', 'key', 'credentials', 'credential_type', 'webhook_secret'])
    .where('deleted_at', 'is', null)
    .orderBy('id')
    .execute();
}

/** The key ids the ring lacks, each with the accounts whose secrets need it. */
function missingKeys(rows: Awaited<ReturnType<typeof sealedRows>>, box: SecretBox): Map<string, Set<number>> {
  const missing = new Map<string, Set<number>>();
  for (const row of rows) {
    for (const sealed of [row.credentials, row.webhook_secret]) {
      if (sealed === null) continue;
      const id = sealedKeyId(sealed) ?? 'unreadable';
      if (box.has(id)) continue;
      const accounts = missing.get(id) ?? new Set<number>();
      accounts.add(row.id);
      missing.set(id, accounts);
    }
  }
  return missing;
}
