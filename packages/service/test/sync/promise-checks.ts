/**
 * The sync's promise as checks, shared by the fault and crash tests: every delivered message
 * ends up stored exactly once, byte for byte, and at no point is one missing from both the
 * server and the store.
 *
 * "Delivered" means what a test put in the mailbox, as RETR gives it back (for Dovecot,
 * expectedRetrBytes of the file): those are the bytes the store must hold. Stored bytes are
 * always read back through the store and hashed here; the sha256 column is checked against
 * them, never trusted in their place.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Pop3Client } from 'popwire';
import { expectedRetrBytes } from '../../../../support/dovecot.ts';
import { accountFields } from '../../../../support/stores.ts';
import type { Store } from '../../src/store/store.ts';

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface Delivered {
  readonly label: string;
  readonly bytes: Buffer;
  readonly sha256: string;
}

/** The messages as the store must hold them: RETR's bytes of each Maildir file given to Dovecot. */
export function deliveredToDovecot(files: readonly Buffer[], label = (index: number) => `message ${index + 1}`): Delivered[] {
  return files.map((file, index) => delivered(label(index), expectedRetrBytes(file)));
}

export function delivered(label: string, bytes: Buffer): Delivered {
  return { label, bytes, sha256: sha256(bytes) };
}

export interface StoredRow {
  readonly id: number;
  readonly uid: string;
  readonly pending: boolean;
  /** For a committed row: its bytes' hash, computed here. */
  readonly actual: string | undefined;
}

/**
 * Every row of the account in `messages`, pending ones included. Committed rows are read back
 * with messages.rawBuffer, and their recorded size and sha256 must match what comes back. With
 * `bytes: false` the recorded sha256 stands for the bytes: for checks between runs, when a
 * later check reads every committed row back (committed rows are never rewritten or removed).
 */
export async function storedRows(store: Store, accountId: number, options: { bytes?: boolean } = {}): Promise<StoredRow[]> {
  const rows = await store.db.selectFrom('messages').select(['id', 'uid', 'size', 'sha256', 'pending']).where('account_id', '=', accountId).orderBy('id').execute();
  const out: StoredRow[] = [];
  for (const row of rows) {
    if (row.pending !== 0) {
      out.push({ id: row.id, uid: row.uid, pending: true, actual: undefined });
      continue;
    }
    if (options.bytes === false) {
      out.push({ id: row.id, uid: row.uid, pending: false, actual: row.sha256 });
      continue;
    }
    const bytes = await store.messages.rawBuffer(row.id);
    const actual = sha256(bytes);
    assert.equal(bytes.length, row.size, `message row ${row.id} (${row.uid}): recorded size against bytes stored`);
    assert.equal(actual, row.sha256, `message row ${row.id} (${row.uid}): recorded sha256 against bytes stored`);
    out.push({ id: row.id, uid: row.uid, pending: false, actual });
  }
  assert.equal(await store.messages.count(accountId), out.filter((r) => !r.pending).length, 'messages.count() against the committed rows');
  return out;
}

/** The sha256 of every message a fresh session lists, each retrieved in full. Deletes nothing. */
export async function serverContents(port: number, password: string): Promise<string[]> {
  return [...(await serverContentsByUid(port, password)).values()];
}

/** Each listed message's UID and the sha256 of its bytes. */
export async function serverContentsByUid(port: number, password: string): Promise<Map<string, string>> {
  return withSession(port, password, async (client) => {
    const uids = await client.uidl();
    const out = new Map<string, string>();
    let index = 0;
    for await (const { body } of client.retrieveMany(uids.map((u) => u.n))) {
      const hash = createHash('sha256');
      for await (const chunk of body) hash.update(chunk as Buffer);
      out.set(uids[index++]!.uid, hash.digest('hex'));
    }
    return out;
  });
}

/** The UIDs a fresh session lists (Dovecot never gives a UID to other content). */
export async function serverUids(port: number, password: string): Promise<string[]> {
  return withSession(port, password, async (client) => (await client.uidl()).map((u) => u.uid));
}

async function withSession<T>(port: number, password: string, use: (client: Pop3Client) => Promise<T>): Promise<T> {
  const client = await Pop3Client.connect({ host: '127.0.0.1', port, tls: 'none', user: 'alice', password, allowPlaintextAuth: true });
  try {
    const result = await use(client);
    await client.quit();
    return result;
  } finally {
    client.close();
  }
}

/**
 * What must hold at any moment: each delivered message is on the server or committed in the
 * store (or both); no delivered message is committed twice; nothing else is committed.
 */
export function assertNothingLost(deliveries: readonly Delivered[], onServer: readonly string[], stored: readonly StoredRow[], when: string): void {
  const serverSet = new Set(onServer);
  const committed = countBy(stored.filter((r) => !r.pending).map((r) => r.actual!));
  const lost = deliveries.filter((d) => !serverSet.has(d.sha256) && !committed.has(d.sha256)).map((d) => d.label);
  assert.deepEqual(lost, [], `${when}: messages neither on the server nor stored`);
  const twice = deliveries.filter((d) => (committed.get(d.sha256) ?? 0) > 1).map((d) => d.label);
  assert.deepEqual(twice, [], `${when}: messages stored more than once`);
  const known = new Set(deliveries.map((d) => d.sha256));
  const foreign = stored.filter((r) => !r.pending && !known.has(r.actual!)).map((r) => `${r.uid} (row ${r.id})`);
  assert.deepEqual(foreign, [], `${when}: stored rows whose bytes match no delivered message`);
}

/**
 * What must hold once a clean run has finished: every delivered message committed exactly once,
 * byte-exact, and no pending row left; and under distinct UIDs, unless the test's server reused one.
 */
export function assertExactlyOnce(deliveries: readonly Delivered[], stored: readonly StoredRow[], when: string, options: { uniqueUids?: boolean } = {}): void {
  assertNothingLost(deliveries, [], stored, when);
  assert.deepEqual(stored.filter((r) => r.pending).map((r) => r.uid), [], `${when}: pending rows left behind`);
  assert.equal(stored.length, deliveries.length, `${when}: rows in messages`);
  if (options.uniqueUids === false) return;
  const uids = countBy(stored.map((r) => r.uid));
  assert.deepEqual([...uids].filter(([, n]) => n > 1).map(([uid]) => uid), [], `${when}: UIDs stored more than once`);
}

function countBy(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

/** The account a test syncs: alice on 127.0.0.1, in plain text. Its policy columns are not what a run uses (the request's policy is). */
export async function addAccount(store: Store, port: number, key = `alice@127.0.0.1:${port}`): Promise<number> {
  return (await store.accounts.upsert(accountFields(key, { port }), Date.now())).id;
}
