import type { Generated, Insertable, Selectable } from 'kysely';

/**
 * The tables, as Kysely sees them. One schema for SQLite and PostgreSQL, so only types both
 * bind the same way: times are milliseconds since the epoch (better-sqlite3 binds no Date),
 * flags are 0/1 integers (it binds no boolean), and PostgreSQL's int8 is read back as a number
 * (database.ts sets the parser; every value here is below 2^53).
 */
export interface Database {
  accounts: AccountTable;
  seen_uids: SeenUidTable;
  messages: MessageTable;
  message_chunks: MessageChunkTable;
  sync_runs: SyncRunTable;
  api_tokens: ApiTokenTable;
  api_token_accounts: ApiTokenAccountTable;
  sync_jobs: SyncJobTable;
  webhook_events: WebhookEventTable;
  account_destinations: AccountDestinationTable;
  message_deliveries: MessageDeliveryTable;
}

export type RetentionPolicy = 'leave' | 'delete' | 'keep';
export type OversizePolicy = 'skip' | 'headers';
export type PolicyOwner = 'cli' | 'api';
/** How the account's messages are told apart: the server's UIDL, or (without UIDL) a digest of TOP n 0 and the size. */
export type IdentityMode = 'uidl' | 'digest';

export interface AccountTable {
  id: Generated<number>;
  /** What names the mailbox: `user@host:port` for one made by `popwire sync`. Unique. */
  key: string;
  host: string;
  port: number;
  tls: string;
  username: string;
  /** A SASL mechanism (or USER, APOP) the login must use; null: the strongest offered. */
  auth: string | null;
  policy: RetentionPolicy;
  /** For `keep`: days from first seen until the message is deleted from the server. */
  keep_days: number | null;
  /** Messages above this many octets (as LIST says) are not retrieved. Null: no limit. */
  max_size: number | null;
  oversize: OversizePolicy;
  /** Set by the last run: how UIDs were found. */
  identity: IdentityMode | null;
  /** A run's words for what needs attention (no UIDL, duplicate UIDs, password rejected); null when fine. */
  status_note: string | null;
  /** Do not try again before this time ([IN-USE], [LOGIN-DELAY]). */
  retry_after: number | null;
  /** Who runs the account's sync now (`host:pid:random`), and until when the claim holds unless renewed. See sync/lock.ts. */
  lock_owner: string | null;
  lock_expires: number | null;
  /** A label for people; null for accounts made by `popwire sync`. */
  name: string | null;
  /** The password or OAuth settings, sealed by accounts/secrets.ts (AES-256-GCM); null for accounts made by `popwire sync`. */
  credentials: string | null;
  /** The credentials' kind (`password`, `oauth2`...), in clear so that listing accounts opens no secret. Migration 0005. */
  credential_type: string | null;
  /** Seconds between scheduled syncs; null: not scheduled (only synced on request). */
  sync_interval: number | null;
  paused: Generated<number>;
  /** Set when the server rejected the credentials: the scheduler leaves the account alone until they change. */
  needs_attention: Generated<number>;
  webhook_url: string | null;
  /** Sealed like `credentials`. */
  webhook_secret: string | null;
  next_sync_at: number | null;
  /** Deleted with its messages kept: hidden from account lists, its messages still readable. */
  deleted_at: number | null;
  /** Opt-ins, each by name (the client's `allowPlaintextAuth` and `insecure`). */
  allow_plaintext_auth: Generated<number>;
  tls_insecure: Generated<number>;
  /** Who owns the policy and connection settings: `cli` (popwire sync made or last set them) or `api`. Migration 0003. */
  policy_owner: Generated<PolicyOwner>;
  /** The server's LOGIN-DELAY in seconds, from CAPA after the last scheduled login; null when it announced none. */
  login_delay: number | null;
  /** 1: the account's first sync records the UIDs on the server as seen, retrieving none (migration 0006). */
  skip_existing: Generated<number>;
  created_at: number;
  updated_at: number;
}

/**
 * `ignored`: on the server when the account first synced with skip-existing; never retrieved,
 * never deleted, not retrieved again while listed with the same size.
 */
export type SeenState = 'stored' | 'headers' | 'skipped' | 'ignored';

/**
 * Every UID of an account seen on its server, and what became of it. A row with state `stored`
 * exists only once the message's bytes are committed: that is what makes DELE safe.
 */
export interface SeenUidTable {
  account_id: number;
  /** The server's UID; a repeat within one listing gets ` #2`, ` #3`... (a UID has no spaces). */
  uid: string;
  state: SeenState;
  /** The size LIST gave; a known UID listed with another size is a different message. */
  listed_size: number;
  message_id: number | null;
  first_seen_at: number;
  /** When a QUIT that followed our DELE was acknowledged: the server has applied it. */
  deleted_at: number | null;
}

export interface MessageTable {
  id: Generated<number>;
  account_id: number;
  uid: string;
  /** Octets stored (as RETR sent them, dot-unstuffed). */
  size: number;
  sha256: string;
  /** 1 while its chunks are being written (large messages only); such rows are not listed and are removed by the next run. */
  pending: Generated<number>;
  /** 1 when only the headers were kept (TOP n 0) because the message was over the size limit. */
  headers_only: Generated<number>;
  date: number | null;
  from_address: string | null;
  from_name: string | null;
  /** The To addresses, comma separated. */
  to_addresses: Generated<string>;
  /** The To mailboxes as JSON, `[{"name", "address"}]`; null for messages stored before migration 0003. */
  to_mailboxes: string | null;
  subject: string | null;
  message_id_header: string | null;
  has_attachments: Generated<number>;
  stored_at: number;
  /** 1 once read (PATCH /v1/messages/{id}): POP3 keeps no flags, so they are the store's own. Migration 0007. */
  seen: Generated<number>;
  flagged: Generated<number>;
  /** Soft-deleted: hidden from lists, purged `messages.purgeAfterDays` later. Never deleted on the server for it. */
  deleted_at: number | null;
}

/** A message's raw bytes, in order. Small messages are one chunk. */
export interface MessageChunkTable {
  message_id: number;
  seq: number;
  data: Buffer;
}

/**
 * `deferred`: the server said try later ([IN-USE], [LOGIN-DELAY]); `stopped`: asked to stop, and
 * stopped cleanly; `interrupted`: the process running it died, and another process closed the run
 * once the account's lease ran out (jobs/pg-boss.ts). A sync never ends `interrupted` by itself.
 */
export type RunStatus = 'running' | 'ok' | 'failed' | 'deferred' | 'stopped' | 'interrupted';

export interface SyncRunTable {
  id: Generated<number>;
  account_id: number;
  started_at: number;
  finished_at: number | null;
  status: RunStatus;
  sessions: Generated<number>;
  new_messages: Generated<number>;
  already_had: Generated<number>;
  deleted: Generated<number>;
  skipped: Generated<number>;
  bytes: Generated<number>;
  error_code: string | null;
  error_message: string | null;
}

/** A bearer token for the HTTP API: only its SHA-256 is stored. */
export interface ApiTokenTable {
  id: Generated<number>;
  name: string;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  /** Comma separated: `admin`, `read`, `write`, `metrics` (http/access.ts). Tokens made before scopes existed are `admin`. */
  scopes: Generated<string>;
  /** 1: every account; 0: only those in api_token_accounts (none, once they are all deleted). */
  all_accounts: Generated<number>;
  /** Refused from this time on; null: never expires. */
  expires_at: number | null;
}

/** The accounts a token restricted to some accounts may reach. */
export interface ApiTokenAccountTable {
  token_id: number;
  account_id: number;
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

/** A request to sync an account (scheduled, or from the API), and what became of it. */
export interface SyncJobTable {
  id: Generated<number>;
  account_id: number;
  status: JobStatus;
  /** `schedule`, `api`, `retry`. */
  reason: string;
  queued_at: number;
  started_at: number | null;
  finished_at: number | null;
  run_id: number | null;
  error: string | null;
}

/** The webhook outbox: an event is written here, then sent (and retried) apart from the sync. */
export interface WebhookEventTable {
  id: Generated<number>;
  account_id: number | null;
  url: string;
  type: string;
  /** The JSON body, exactly as signed and sent. */
  body: string;
  attempts: Generated<number>;
  next_attempt_at: number;
  delivered_at: number | null;
  last_error: string | null;
}

/** Who made a destination: `popwire sync`'s options, or the API's `destinations` list (serve delivers only to these). */
export type DestinationOrigin = 'cli' | 'api';

/** Where an account's stored messages are handed over (migration 0006; store/deliveries.ts). */
export interface AccountDestinationTable {
  id: Generated<number>;
  account_id: number;
  /** Names the destination within the account and origin, e.g. `lmtp:127.0.0.1:24`. */
  key: string;
  origin: DestinationOrigin;
  /** `mda`, `lmtp`, `smtp`, `imap`, `maildir`. */
  kind: string;
  /** The order in which the API's list gave it. */
  position: Generated<number>;
  /** Its settings as JSON, no secret in it. */
  spec: string;
  /** A password or OAuth token, sealed by accounts/secrets.ts; null when it needs none. */
  credentials: string | null;
  /** It receives the messages stored after it was added: ids above this one. */
  first_message_id: Generated<number>;
  created_at: number;
  updated_at: number;
}

/**
 * What a destination answered for a message: `delivered`, `temporary` (4xx, EX_TEMPFAIL) or
 * `permanent` (5xx, another exit). No row: not handed over yet, or in flight when a run died.
 */
export type DeliveryState = 'delivered' | 'temporary' | 'permanent';

export interface MessageDeliveryTable {
  message_id: number;
  destination_id: number;
  state: DeliveryState;
  /** Answers recorded so far (a message handed over twice because of a crash counts once). */
  attempts: Generated<number>;
  /** The destination's words for the last answer (`452 4.2.2 Mailbox full`, an MDA's exit and stderr). */
  reply: string | null;
  updated_at: number;
}

export type Account = Selectable<AccountTable>;
export type AccountDestination = Selectable<AccountDestinationTable>;
export type MessageDelivery = Selectable<MessageDeliveryTable>;
export type ApiToken = Selectable<ApiTokenTable>;
export type SyncJob = Selectable<SyncJobTable>;
export type WebhookEvent = Selectable<WebhookEventTable>;
export type NewAccount = Insertable<AccountTable>;
export type SeenUid = Selectable<SeenUidTable>;
export type StoredMessage = Selectable<MessageTable>;
export type SyncRun = Selectable<SyncRunTable>;
