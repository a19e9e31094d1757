import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { StoreError } from '../store/errors.js';
import type { StoreLocation } from '../store/database.js';
import type { StoredMessage } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { CommandFailure, ExitCode, UsageError } from './failure.js';

/** The option of every command that uses the store, as commander hands it over. */
export interface StoreOptions {
  readonly store?: string;
}

export function addStoreOption(command: Command): Command {
  return command.option(
    '--store <path>',
    'where the messages are kept: a folder (SQLite) or a postgres:// URL (default: $POPWIRE_STORE, else ./popwire-data)',
  );
}

/** Closed by `await using`. */
export interface OpenedStore extends AsyncDisposable {
  readonly store: Store;
  /** Where it is, fit to print: a PostgreSQL URL with its password as `***`. */
  readonly where: string;
}

/**
 * Opens the store --store names, else $POPWIRE_STORE, else ./popwire-data. Only `sync` (mode
 * `create`) makes a new SQLite store: the commands that read one refuse a folder without it,
 * rather than leave an empty popwire-data behind wherever they were run.
 *
 * The store's modules are loaded here, not at the top: Kysely alone takes about 0.3 s to import,
 * which every popwire command (stat, list, fetch) would otherwise pay at start-up.
 */
export async function openStore(options: StoreOptions, mode: 'create' | 'existing'): Promise<OpenedStore> {
  const { DEFAULT_STORE_DIR, SQLITE_FILE, describeLocation, parseStoreLocation } = await import('../store/database.js');
  const { Store } = await import('../store/store.js');
  // An empty variable counts as unset, as POPWIRE_PASSWORD does.
  const named = options.store ?? (process.env.POPWIRE_STORE || undefined);
  let location: StoreLocation;
  try {
    location = parseStoreLocation(named ?? DEFAULT_STORE_DIR);
  } catch (error) {
    const from = options.store !== undefined ? '--store' : 'POPWIRE_STORE';
    throw new UsageError(`${from} does not name a store: ${error instanceof Error ? error.message : String(error)}`);
  }
  const where = describeLocation(location);
  if (mode === 'existing' && location.kind === 'sqlite' && !existsSync(join(location.dir, SQLITE_FILE))) {
    throw new CommandFailure(`No store at ${where}: popwire sync makes one; name another with --store or POPWIRE_STORE`, ExitCode.store);
  }
  try {
    const store = await Store.open(location);
    return { store, where, [Symbol.asyncDispose]: () => store.close() };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const secret = location.kind === 'postgres' ? new URL(location.url).password : '';
    throw new CommandFailure(`Cannot open the store ${where}: ${redact(reason, secret)}`, ExitCode.store, { cause: error });
  }
}

/** The message `id` names; an id the store does not have is the caller's mistake, told how to find one. */
export async function storedMessage({ store, where }: OpenedStore, id: number): Promise<StoredMessage> {
  try {
    return await store.messages.get(id);
  } catch (error) {
    if (error instanceof StoreError && error.code === 'STORE_MESSAGE_NOT_FOUND') {
      throw new UsageError(`No stored message has id ${id} in ${where}: popwire messages lists them`);
    }
    throw error;
  }
}

/**
 * A driver's message should not hold the URL's password, but one that quotes its connection
 * string would: the password goes, raw and percent-decoded, before anything is printed.
 */
function redact(message: string, secret: string): string {
  if (secret === '') return message;
  const forms = [secret];
  try {
    forms.push(decodeURIComponent(secret));
  } catch {
    // Not valid percent-encoding: the raw form is the only one a driver could quote.
  }
  return forms.reduce((text, form) => text.split(form).join('***'), message);
}
