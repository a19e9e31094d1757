import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { EVERY_ACCOUNT, type AccountFilter } from './account-filter.js';
import { AccountStore } from './accounts.js';
import { DeliveryStore } from './deliveries.js';
import { openDatabase, type OpenOptions, type StoreLocation } from './database.js';
import type { Dialect } from './dialect.js';
import { JobStore } from './jobs.js';
import { MessageStore } from './messages.js';
import { RunStore } from './runs.js';
import type { Database } from './schema.js';
import { SeenUidStore } from './seen-uids.js';
import { WebhookEventStore } from './webhook-events.js';
import { TokenStore } from './tokens.js';

/** The service's storage: one database, one repository per domain. */
export class Store implements AsyncDisposable {
  readonly accounts: AccountStore;
  readonly messages: MessageStore;
  readonly seen: SeenUidStore;
  readonly runs: RunStore;
  readonly jobs: JobStore;
  readonly webhookEvents: WebhookEventStore;
  readonly tokens: TokenStore;
  readonly deliveries: DeliveryStore;

  private constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    readonly location: StoreLocation,
    /** Which accounts this view's reads may reach (restrictedTo). */
    readonly filter: AccountFilter = EVERY_ACCOUNT,
    /** False for a view made by restrictedTo: the database is its parent's to close. */
    private readonly ownsDatabase = true,
  ) {
    this.accounts = new AccountStore(db, filter);
    this.messages = new MessageStore(db, filter);
    this.seen = new SeenUidStore(db);
    this.runs = new RunStore(db, filter);
    this.jobs = new JobStore(db, filter);
    this.webhookEvents = new WebhookEventStore(db);
    this.tokens = new TokenStore(db);
    this.deliveries = new DeliveryStore(db);
  }

  /** Opens (and creates, unless `create: false`, or migrates) the store. */
  static async open(location: StoreLocation, options: OpenOptions = {}): Promise<Store> {
    const { db, dialect } = await openDatabase(location, options);
    return new Store(db, dialect, location);
  }

  /**
   * The same store seen through an API token's account restriction: its accounts, messages,
   * runs and jobs outside the filter are not found, and an account it creates is granted to the
   * token. What the HTTP API reads goes through such a view (http/access.ts). Closing it closes
   * nothing: the database belongs to the store it came from.
   */
  restrictedTo(filter: AccountFilter): Store {
    if (filter.kind === 'all' && this.filter.kind === 'all') return this;
    return new Store(this.db, this.dialect, this.location, filter, false);
  }

  /**
   * Runs `work` with this store's repositories bound to one transaction: what it writes commits
   * together (one fsync on SQLite) or not at all. The repositories' own multi-statement writes
   * join it (runs.ts). A sync's bookkeeping uses it: a run with nothing new claims the account and
   * opens its row in one commit, and records its end, the account's notes and the release in one.
   */
  async transaction<T>(work: (store: Store) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => work(new Store(trx, this.dialect, this.location, this.filter, false)));
  }

  /** Whether the database answers (for health checks). */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    if (this.ownsDatabase) await this.db.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
