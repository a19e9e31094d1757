/**
 * The service's store on both of its databases, for tests that must hold on each: SQLite in a
 * temp folder, and a private PostgreSQL (one server per test file, one database per store).
 *
 * ```ts
 * const stores = testStores();
 * for (const kind of STORE_KINDS) it(`... on ${kind}`, async () => { await using store = await stores.open(kind); ... });
 * ```
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { StoreLocation } from '../packages/service/src/store/database.ts';
import { Store } from '../packages/service/src/store/store.ts';
import type { NewAccount } from '../packages/service/src/store/schema.ts';
import { startPostgres, type Postgres } from './postgres.ts';

export const STORE_KINDS = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export interface TestStores {
  /** A fresh, empty store. */
  open(kind: StoreKind): Promise<Store>;
  /** A fresh location, not yet opened (to open it twice, or hand it to a child process). */
  location(kind: StoreKind): Promise<StoreLocation>;
}

/** Registers an `after` hook that stops the PostgreSQL server and removes the temp folders. */
export function testStores(): TestStores {
  let postgres: Promise<Postgres> | undefined;
  let scratch: Promise<string> | undefined;
  let count = 0;
  after(async () => {
    if (postgres !== undefined) await (await postgres).stop();
    if (scratch !== undefined) await rm(await scratch, { recursive: true, force: true });
  });
  const location = async (kind: StoreKind): Promise<StoreLocation> => {
    if (kind === 'postgres') return { kind, url: await (await (postgres ??= startPostgres())).createDatabase() };
    return { kind, dir: join(await (scratch ??= mkdtemp(join(tmpdir(), 'popwire-store-test-'))), `s${++count}`) };
  };
  return { location, open: async (kind) => Store.open(await location(kind)) };
}

/** An account's row with everything but what the test cares about left at its default. */
export function accountFields(key: string, fields: Partial<NewAccount> = {}): Omit<NewAccount, 'created_at' | 'updated_at'> {
  return {
    key,
    host: '127.0.0.1',
    port: 110,
    tls: 'none',
    username: 'alice',
    auth: null,
    policy: 'leave',
    keep_days: null,
    max_size: null,
    oversize: 'skip',
    identity: null,
    status_note: null,
    retry_after: null,
    lock_owner: null,
    lock_expires: null,
    ...fields,
  };
}
