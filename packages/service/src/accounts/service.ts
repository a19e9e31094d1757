import type { Pop3ClientOptions, RetryPolicy, TlsMode } from 'popwire';
import { isoTime, isoTimeOrNull } from '../iso-time.js';
import type { AccountFilter } from '../store/account-filter.js';
import type { ShownAccount } from '../store/accounts.js';
import type { Account } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { OversizePolicy, PolicyOwner, RetentionPolicy } from '../store/schema.js';
import type { SyncPolicy } from '../sync/policy.js';
import type { AddressGuard } from '../net/guard.js';
import { AccountDestinations, destinationAad, DestinationInputError, type DestinationInput, type DestinationPolicy, type DestinationView } from './destinations.js';
import { tokenSource, type OAuthSettings } from './oauth.js';
import type { SecretBox } from './secrets.js';

/** What logs an account in. Never returned by the API, never logged; sealed at rest. */
export type Credentials = { readonly type: 'password'; readonly password: string } | ({ readonly type: 'oauth2' } & OAuthSettings);

export interface PolicyInput {
  readonly retention: RetentionPolicy;
  readonly keepDays?: number | null | undefined;
  readonly maxSize?: number | null | undefined;
  readonly oversize?: OversizePolicy | undefined;
}

export interface AccountInput {
  readonly name: string;
  readonly host: string;
  readonly port?: number | undefined;
  readonly tls?: TlsMode | undefined;
  readonly username: string;
  readonly auth?: string | null | undefined;
  readonly credentials: Credentials;
  /** Seconds between scheduled syncs; null: only on request. */
  readonly syncInterval?: number | null | undefined;
  readonly policy?: PolicyInput | undefined;
  readonly webhook?: { readonly url: string; readonly secret: string } | null | undefined;
  readonly paused?: boolean | undefined;
  readonly allowPlaintextAuth?: boolean | undefined;
  readonly tlsInsecure?: boolean | undefined;
  /** Where each stored message is handed over; a message is deleted only once all accepted it. */
  readonly destinations?: readonly DestinationInput[] | undefined;
  /** The first sync records the messages on the server as seen without retrieving them. */
  readonly skipExisting?: boolean | undefined;
}

export type AccountChange = Partial<Omit<AccountInput, 'host' | 'port' | 'username'>>;

/** An account as the API shows it: everything but its secrets. */
export interface AccountView {
  readonly id: number;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMode;
  readonly username: string;
  readonly auth: string | null;
  readonly credentialType: Credentials['type'] | null;
  readonly syncInterval: number | null;
  readonly policy: { retention: RetentionPolicy; keepDays: number | null; maxSize: number | null; oversize: OversizePolicy };
  /** Who set the policy last: `api`, or `cli` (popwire sync made the account, or took it over with --replace-policy). */
  readonly policyOwner: PolicyOwner;
  readonly webhookUrl: string | null;
  readonly paused: boolean;
  readonly needsAttention: boolean;
  readonly statusNote: string | null;
  readonly identity: string | null;
  /** The server's LOGIN-DELAY seconds, from CAPA at the last scheduled login: syncs never come more often. */
  readonly loginDelay: number | null;
  readonly retryAfter: string | null;
  readonly nextSyncAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly destinations: DestinationView[];
  readonly skipExisting: boolean;
}

export type AccountErrorCode = 'ACCOUNT_NOT_FOUND' | 'ACCOUNT_EXISTS' | 'ACCOUNT_INVALID';

export class AccountError extends Error {
  override readonly name = 'AccountError';
  constructor(
    readonly code: AccountErrorCode,
    message: string,
    /** The input field at fault, for the API's error body. */
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface AccountServiceOptions {
  /** Extra CAs every account's TLS trusts (config `tls.caFile`). */
  readonly ca?: Buffer | undefined;
  /** The client's retry policy for each connect. */
  readonly retry?: RetryPolicy | undefined;
  /** Per-reply timeout, ms. */
  readonly timeout?: number | undefined;
  /** Milliseconds one sync's POP3 session may take, connect to QUIT (config `sync.deadline`). */
  readonly deadline?: number | undefined;
  /** Seconds between syncs of an account created without its own interval. Default 300. */
  readonly defaultInterval?: number | undefined;
  /**
   * The size limit (octets) of an account that sets none (config `sync.maxSize`): a hostile or
   * broken server's enormous message is skipped by LIST size, and cut off if RETR sends more.
   */
  readonly defaultMaxSize?: number | undefined;
  /**
   * The outbound address policy (config `network`): where accounts' POP3 hosts and token
   * endpoints may be. Without it (`popwire` CLI commands, run by the operator) anything goes.
   */
  readonly network?: AddressGuard | undefined;
  /**
   * The shortest interval an account may have, in seconds (config `sync.minInterval`). Default
   * 60: a provider that sees a login every few seconds locks the account. Tests lower it.
   */
  readonly minInterval?: number | undefined;
  /** What API callers may use as destinations (config `destinations`); default: no MDA, Maildir or socket. */
  readonly destinations?: DestinationPolicy | undefined;
  readonly now?: (() => number) | undefined;
}

const DEFAULT_PORTS: Record<TlsMode, number> = { implicit: 995, starttls: 110, none: 110 };

export const DEFAULT_MIN_INTERVAL = 60;

/**
 * Accounts of the service: their settings in the store, their credentials sealed with the
 * SecretBox (the aad binds each sealed value to its account's key and field).
 */
export class AccountService {
  private readonly now: () => number;
  readonly destinations: AccountDestinations;

  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    private readonly options: AccountServiceOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.destinations = new AccountDestinations(store, box, options.destinations ?? { mdaAllow: [], maildirAllow: [], socketAllow: [], network: options.network, ca: options.ca, timeoutMs: options.timeout });
  }

  /** The floor under every account's interval, in seconds; the scheduler applies it too. */
  get minInterval(): number {
    return this.options.minInterval ?? DEFAULT_MIN_INTERVAL;
  }

  /** The same service over a store view restricted to an API token's accounts (Store.restrictedTo). */
  restrictedTo(filter: AccountFilter): AccountService {
    if (filter.kind === 'all' && this.store.filter.kind === 'all') return this;
    return new AccountService(this.store.restrictedTo(filter), this.box, this.options);
  }

  async create(input: AccountInput): Promise<AccountView> {
    const tls = input.tls ?? 'implicit';
    const port = input.port ?? DEFAULT_PORTS[tls];
    const key = mailboxKey(input.username, input.host, port);
    if (await this.store.accounts.keyInUse(key)) {
      throw new AccountError('ACCOUNT_EXISTS', `an account for ${key} exists already`, 'username');
    }
    const policy = readPolicy(input.policy);
    if (input.destinations !== undefined) asAccountError(() => this.destinations.check(input.destinations!));
    const interval = input.syncInterval === undefined ? (this.options.defaultInterval ?? 300) : input.syncInterval;
    this.checkInterval(interval);
    const now = this.now();
    const row = await this.store.accounts.upsert(
      {
        key,
        host: input.host,
        port,
        tls,
        username: input.username,
        auth: input.auth ?? null,
        policy: policy.retention,
        keep_days: policy.keepDays,
        max_size: policy.maxSize,
        oversize: policy.oversize,
        name: input.name,
        credentials: this.box.seal(JSON.stringify(input.credentials), aad(key, 'credentials')),
        credential_type: input.credentials.type,
        sync_interval: interval,
        policy_owner: 'api',
        paused: input.paused === true ? 1 : 0,
        webhook_url: input.webhook?.url ?? null,
        webhook_secret: input.webhook == null ? null : this.box.seal(input.webhook.secret, aad(key, 'webhook')),
        allow_plaintext_auth: input.allowPlaintextAuth === true ? 1 : 0,
        tls_insecure: input.tlsInsecure === true ? 1 : 0,
        skip_existing: input.skipExisting === true ? 1 : 0,
        next_sync_at: now,
      },
      now,
    );
    if (input.destinations !== undefined) await this.destinations.save(row, input.destinations, now);
    return this.withDestinations(this.view(row));
  }

  /** Accounts not deleted, by id. */
  async list(): Promise<AccountView[]> {
    const rows = await this.store.accounts.listShown();
    const destinations = await this.destinations.viewsByAccount();
    return rows.map((row) => ({ ...this.view(row), destinations: destinations.get(row.id) ?? [] }));
  }

  async get(id: number): Promise<AccountView> {
    return this.withDestinations(this.view(await this.row(id)));
  }

  /** The stored row (secrets still sealed), for the scheduler. */
  async row(id: number): Promise<Account> {
    const row = await this.store.accounts.get(id).catch(() => undefined);
    if (row === undefined || row.deleted_at !== null) throw new AccountError('ACCOUNT_NOT_FOUND', `no account ${id}`);
    return row;
  }

  async update(id: number, change: AccountChange): Promise<AccountView> {
    const row = await this.row(id);
    requireCredentialsToWeaken(row, change);
    const changes: Parameters<Store['accounts']['update']>[1] = {};
    if (change.name !== undefined) changes.name = change.name;
    if (change.tls !== undefined) changes.tls = change.tls;
    if (change.auth !== undefined) changes.auth = change.auth;
    if (change.credentials !== undefined) {
      changes.credentials = this.box.seal(JSON.stringify(change.credentials), aad(row.key, 'credentials'));
      changes.credential_type = change.credentials.type;
      // New credentials are the attention the account needed; the note about the old ones goes
      // with it (the next run, due now, writes a new one if something is still wrong).
      changes.needs_attention = 0;
      changes.status_note = null;
      changes.next_sync_at = this.now();
    }
    if (change.syncInterval !== undefined) {
      this.checkInterval(change.syncInterval);
      changes.sync_interval = change.syncInterval;
    }
    if (change.policy !== undefined) {
      const policy = readPolicy(change.policy);
      // Set through the API: from now on `popwire sync` leaves it alone unless told to (migration 0003).
      Object.assign(changes, { policy: policy.retention, keep_days: policy.keepDays, max_size: policy.maxSize, oversize: policy.oversize, policy_owner: 'api' });
    }
    if (change.webhook !== undefined) {
      changes.webhook_url = change.webhook?.url ?? null;
      changes.webhook_secret = change.webhook === null ? null : this.box.seal(change.webhook.secret, aad(row.key, 'webhook'));
    }
    if (change.paused !== undefined) changes.paused = change.paused ? 1 : 0;
    if (change.allowPlaintextAuth !== undefined) changes.allow_plaintext_auth = change.allowPlaintextAuth ? 1 : 0;
    if (change.tlsInsecure !== undefined) changes.tls_insecure = change.tlsInsecure ? 1 : 0;
    if (change.skipExisting !== undefined) changes.skip_existing = change.skipExisting ? 1 : 0;
    if (change.destinations !== undefined) asAccountError(() => this.destinations.check(change.destinations!));
    await this.store.accounts.update(id, changes, this.now());
    if (change.destinations !== undefined) await this.destinations.save(row, change.destinations, this.now());
    return this.get(id);
  }

  /**
   * Deletes the account. With `keepMessages` its stored messages stay readable (the account is
   * hidden and never synced again); without, they go with it.
   */
  async remove(id: number, options: { keepMessages: boolean }): Promise<void> {
    const row = await this.row(id);
    if (options.keepMessages) {
      // The key is freed (an account for the same mailbox may be made again) and the secrets dropped.
      await this.store.accounts.markDeleted(id, `${row.key}#deleted-${row.id}`, this.now());
      // Their secrets go with the account's; messages stay, and so does what was delivered.
      await this.store.deliveries.replace(id, [], this.now());
    } else {
      await this.store.accounts.remove(id);
    }
  }

  /** Everything `Pop3Client.connect` needs to log this account in. */
  clientOptions(row: Account): Pop3ClientOptions {
    const credentials = this.credentials(row);
    return {
      host: row.host,
      port: row.port,
      tls: row.tls as TlsMode,
      user: row.username,
      auth: (row.auth ?? undefined) as Pop3ClientOptions['auth'],
      password: credentials?.type === 'password' ? credentials.password : undefined,
      accessToken: credentials?.type === 'oauth2' ? tokenSource(credentials, { network: this.options.network }) : undefined,
      allowPlaintextAuth: row.allow_plaintext_auth === 1,
      insecure: row.tls_insecure === 1,
      ca: this.options.ca,
      retry: this.options.retry,
      timeout: this.options.timeout,
      // From the connect: a server dripping one byte at a time cannot hold a sync (and its lease) for ever.
      deadline: this.options.deadline,
      // Checked where the socket is opened, on the address it is opened to (net/guard.ts).
      lookup: this.options.network?.lookupFunction(),
    };
  }

  policy(row: Account): SyncPolicy {
    return {
      retention: row.policy,
      keepDays: row.keep_days ?? undefined,
      maxSize: row.max_size ?? this.options.defaultMaxSize,
      oversize: row.oversize,
    };
  }

  /** The webhook of this account, its secret opened; undefined when it has none. */
  webhook(row: Account): { url: string; secret: string } | undefined {
    if (row.webhook_url === null || row.webhook_secret === null) return undefined;
    return { url: row.webhook_url, secret: this.box.open(row.webhook_secret, aad(row.key, 'webhook')) };
  }

  /** Re-seals every secret an older key sealed with the current key; returns how many. */
  async rotateKeys(): Promise<number> {
    let count = 0;
    for (const row of await this.store.accounts.list()) {
      const changes: { credentials?: string; webhook_secret?: string } = {};
      for (const [column, field] of [['credentials', 'credentials'], ['webhook_secret', 'webhook']] as const) {
        const sealed = row[column];
        if (sealed === null || this.box.isCurrent(sealed)) continue;
        changes[column] = this.box.seal(this.box.open(sealed, aad(row.key, field)), aad(row.key, field));
        count++;
      }
      if (Object.keys(changes).length > 0) await this.store.accounts.update(row.id, changes, this.now());
      count += await this.store.deliveries.reseal(row.id, (sealed, destinationKey) =>
        this.box.isCurrent(sealed) ? undefined : this.box.seal(this.box.open(sealed, destinationAad(row.key, destinationKey)), destinationAad(row.key, destinationKey)),
      );
    }
    return count;
  }

  /** Below the floor is refused, naming the floor and the setting that lowers it. */
  private checkInterval(seconds: number | null): void {
    if (seconds === null || seconds >= this.minInterval) return;
    throw new AccountError(
      'ACCOUNT_INVALID',
      `must be at least ${this.minInterval} seconds (the service's sync.minInterval): providers lock accounts that log in more often; null syncs only on request`,
      'syncInterval',
    );
  }

  private async withDestinations(view: Omit<AccountView, 'destinations'>): Promise<AccountView> {
    return { ...view, destinations: await this.destinations.views(view.id) };
  }

  private view(row: ShownAccount): Omit<AccountView, 'destinations'> {
    // In clear beside the sealed JSON (migration 0005): a list opens no secret, and one whose key is missing does not fail it.
    return view(row, (row.credential_type as Credentials['type'] | null) ?? null);
  }

  private credentials(row: Account): Credentials | undefined {
    if (row.credentials === null) return undefined;
    return JSON.parse(this.box.open(row.credentials, aad(row.key, 'credentials'))) as Credentials;
  }
}

/** Names one mailbox: the same for `popwire sync` and the API, so both see one account. */
export function mailboxKey(username: string, host: string, port: number): string {
  return `${username}@${host.toLowerCase()}:${port}`;
}

/**
 * A change that makes the stored secret easier to steal in transit must come with the secret
 * itself: otherwise a stolen API token could turn TLS off (or verification, or pick a plaintext
 * mechanism) and have the next sync send the stored password in clear to whoever listens. With
 * `credentials` in the same request the caller shows it knows the secret already.
 */
function requireCredentialsToWeaken(row: Account, change: AccountChange & { host?: unknown }): void {
  if (change.credentials !== undefined) return;
  const weakened: Array<[field: string, why: string]> = [];
  if (change.tls === 'none' && row.tls !== 'none') weakened.push(['tls', 'turning TLS off']);
  if (change.allowPlaintextAuth === true && row.allow_plaintext_auth !== 1) weakened.push(['allowPlaintextAuth', 'allowing a login without TLS']);
  if (change.tlsInsecure === true && row.tls_insecure !== 1) weakened.push(['tlsInsecure', 'accepting any certificate']);
  if (change.auth !== undefined && (change.auth ?? null) !== row.auth) weakened.push(['auth', 'changing the login mechanism']);
  if (typeof change.host === 'string' && change.host.toLowerCase() !== row.host.toLowerCase()) weakened.push(['host', 'changing the server']);
  const [first] = weakened;
  if (first === undefined) return;
  throw new AccountError('ACCOUNT_INVALID', `${first[1]} (${weakened.map(([field]) => field).join(', ')}) needs the credentials again in the same request`, 'credentials');
}

/** Binds a sealed value to its account and field (accounts/key-check.ts opens with it too). */
export function aad(key: string, field: string): string {

  return `popwire:account:${key}:${field}`;
}

function readPolicy(input: PolicyInput | undefined): { retention: RetentionPolicy; keepDays: number | null; maxSize: number | null; oversize: OversizePolicy } {
  const retention = input?.retention ?? 'leave';
  const keepDays = input?.keepDays ?? null;
  if (retention === 'keep' && keepDays === null) throw new AccountError('ACCOUNT_INVALID', 'policy keep needs keepDays', 'policy.keepDays');
  return { retention, keepDays: retention === 'keep' ? keepDays : null, maxSize: input?.maxSize ?? null, oversize: input?.oversize ?? 'skip' };
}

/** A destination refused by its check is a 400 naming its field, like any other bad input. */
function asAccountError<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof DestinationInputError) throw new AccountError('ACCOUNT_INVALID', error.message, error.field);
    throw error;
  }
}

function view(row: ShownAccount, credentialType: Credentials['type'] | null): Omit<AccountView, 'destinations'> {
  return {
    id: row.id,
    name: row.name ?? row.key,
    host: row.host,
    port: row.port,
    tls: row.tls as TlsMode,
    username: row.username,
    auth: row.auth,
    credentialType,
    syncInterval: row.sync_interval,
    policy: { retention: row.policy, keepDays: row.keep_days, maxSize: row.max_size, oversize: row.oversize },
    policyOwner: row.policy_owner,
    webhookUrl: row.webhook_url,
    paused: row.paused === 1,
    needsAttention: row.needs_attention === 1,
    statusNote: row.status_note,
    identity: row.identity,
    loginDelay: row.login_delay,
    retryAfter: isoTimeOrNull(row.retry_after),
    nextSyncAt: isoTimeOrNull(row.next_sync_at),
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
    skipExisting: row.skip_existing === 1,
  };
}

