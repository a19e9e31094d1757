import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { AccountStore } from './accounts.js';
import { openDatabase, type StoreLocation } from './database.js';
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

  private constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    readonly location: StoreLocation,
  ) {
    this.accounts = new AccountStore(db);
    this.messages = new MessageStore(db);
    this.seen = new SeenUidStore(db);
    this.runs = new RunStore(db);
    this.jobs = new JobStore(db);
    this.webhookEvents = new WebhookEventStore(db);
    this.tokens = new TokenStore(db);
  }

  /** Opens (and creates, or migrates) the store. */
  static async open(location: StoreLocation): Promise<Store> {
    const { db, dialect } = await openDatabase(location);
    return new Store(db, dialect, location);
  }

  /** Whether the database answers (for health checks). */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
