import { deadline } from 'popwire';
import { pino, type Logger } from 'pino';
import type { AccountService } from '../accounts/service.js';
import { backoffDelay, backoffWith, type Backoff } from '../jobs/backoff.js';
import type { Metrics } from '../metrics.js';
import { StoreError } from '../store/errors.js';
import type { Account, WebhookEvent } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { NewWebhookEvent } from '../store/webhook-events.js';
import type { WebhookPayload } from './events.js';
import { signatureHeader, SIGNATURE_HEADER } from './signature.js';
import type { AddressGuard } from '../net/guard.js';
import { addressRefusal, guardedDispatcher } from '../net/http.js';

export { verifySignature, signatureHeader, SIGNATURE_HEADER, DEFAULT_TOLERANCE_SECONDS } from './signature.js';

export interface WebhookTarget {
  readonly url: string;
  readonly secret: string;
}

export interface WebhookDispatcherOptions {
  /** The deployment-wide webhook (config `webhook`): gets every account's events, besides the account's own. */
  readonly defaultTarget?: WebhookTarget | undefined;
  readonly metrics?: Metrics | undefined;
  readonly logger?: Logger | undefined;
  /** Attempts per event, the first included, before it is given up. Default 10. */
  readonly attempts?: number | undefined;
  /** Waits between attempts. Default 30 s doubling to 1 h, jitter 0.5 (see DEFAULT_BACKOFF). */
  readonly backoff?: Partial<Backoff> | undefined;
  /** Milliseconds a receiver has to answer. Default 10,000. */
  readonly timeoutMs?: number | undefined;
  /** Milliseconds between looks for due events (retries); new events are sent at once. Default 1,000. */
  readonly pollMs?: number | undefined;
  /** Requests in flight at once. Default 8. */
  readonly concurrency?: number | undefined;
  /**
   * Requests in flight at once to one URL. Default half of `concurrency` (4): a receiver that
   * accepts and never answers holds that many, and the others keep the rest. (Each delivery
   * costs a commit, so one receiver's throughput grows with it: about 70 events/s per slot here.)
   */
  readonly perReceiver?: number | undefined;
  /** The circuit breaker per URL: after this many failed attempts in a row it opens. Default 3. */
  readonly breakerFailures?: number | undefined;
  /** How long it stays open the first time, doubling each time a trial fails, up to 10 minutes. Default 30,000 ms. */
  readonly breakerCooldownMs?: number | undefined;
  readonly now?: (() => number) | undefined;
  /**
   * The outbound address policy for accounts' own webhooks, which callers of the API choose
   * (net/guard.ts). The default target, from the operator's config file, is trusted and sent
   * to directly.
   */
  readonly network?: AddressGuard | undefined;
}

/** 30 s, 1 min, 2, 4, 8, 16, 32 min, then 1 h: ten attempts span about three hours. */
export const DEFAULT_BACKOFF: Backoff = { baseMs: 30_000, maxMs: 3_600_000, jitter: 0.5 };
const DEFAULT_ATTEMPTS = 10;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_BREAKER_FAILURES = 3;
const DEFAULT_BREAKER_COOLDOWN_MS = 30_000;
const MAX_BREAKER_COOLDOWN_MS = 600_000;
/** A secret whose key left the ring: looked at again this much later (the operator may put the key back). */
const KEY_RETRY_MS = 3_600_000;

/**
 * One receiver URL as the dispatcher sees it. The circuit breaker: closed (sending, up to
 * `perReceiver` at once); open after `breakerFailures` failed attempts in a row (nothing is
 * sent, and its events wait uncounted in the outbox) until `openUntil`; then half-open (one
 * trial request): a success closes it, a failure opens it again for twice as long.
 */
interface ReceiverState {
  inFlight: number;
  failures: number;
  openUntil: number;
  trips: number;
}

export interface ReceiverView {
  readonly url: string;
  readonly state: 'closed' | 'open' | 'half-open';
  readonly inFlight: number;
  readonly failures: number;
}

/**
 * Sends webhook events from the outbox (store/webhook-events.ts). A sync only calls enqueue(),
 * which writes rows; sending happens here, on its own timers, with a deadline per request and a
 * bound on requests in flight, so a slow or dead receiver delays its own events and nothing else.
 *
 * Delivery is at least once: an event is marked delivered only after a 2xx, and one claimed by a
 * process that died is sent again once its claim runs out. Receivers deduplicate on
 * Popwire-Delivery. Redirects are not followed (a 3xx is a failed attempt), so an event goes only
 * to the URL that was configured.
 *
 * The secret is not in the outbox: it is looked up when the event is sent, from the account's
 * webhook (sealed in its row) or the default target, whichever has the event's URL. An event
 * whose URL is no longer configured is given up, since nobody expects it any more.
 */
export class WebhookDispatcher {
  private readonly defaultTarget: WebhookTarget | undefined;
  private readonly log: Logger;
  private readonly attempts: number;
  private readonly backoff: Backoff;
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private readonly concurrency: number;
  private readonly perReceiver: number;
  private readonly breakerFailures: number;
  private readonly breakerCooldownMs: number;
  private readonly receivers = new Map<string, ReceiverState>();
  private readonly now: () => number;
  private readonly inFlight = new Map<number, { done: Promise<void>; abort: AbortController }>();
  private timer: NodeJS.Timeout | undefined;
  private claiming: Promise<void> | undefined;
  private again = false;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly accounts: AccountService,
    private readonly options: WebhookDispatcherOptions = {},
  ) {
    this.defaultTarget = options.defaultTarget;
    this.log = options.logger ?? pino({ level: 'silent' });
    this.attempts = options.attempts ?? DEFAULT_ATTEMPTS;
    this.backoff = backoffWith(DEFAULT_BACKOFF, options.backoff);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pollMs = options.pollMs ?? 1_000;
    this.concurrency = options.concurrency ?? 8;
    this.perReceiver = options.perReceiver ?? Math.max(1, Math.floor(this.concurrency / 2));
    this.breakerFailures = options.breakerFailures ?? DEFAULT_BREAKER_FAILURES;
    this.breakerCooldownMs = options.breakerCooldownMs ?? DEFAULT_BREAKER_COOLDOWN_MS;
    this.now = options.now ?? Date.now;
    for (const [name, value] of [['attempts', this.attempts], ['concurrency', this.concurrency], ['perReceiver', this.perReceiver], ['breakerFailures', this.breakerFailures]] as const) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`webhook ${name} must be a positive integer; got ${value}`);
    }
  }

  private guardedAgent: ReturnType<typeof guardedDispatcher> | undefined;

  /** One dispatcher (one connection pool) for every account webhook, connecting only where the policy allows. */
  private guarded(network: AddressGuard): ReturnType<typeof guardedDispatcher> {
    return (this.guardedAgent ??= guardedDispatcher(network));
  }

  /** The URLs the account's events go to: its own webhook and the default one (once, if they are the same). */
  urlsFor(account: Pick<Account, 'webhook_url' | 'webhook_secret'>): string[] {
    const urls = new Set<string>();
    if (account.webhook_url !== null && account.webhook_secret !== null) urls.add(account.webhook_url);
    if (this.defaultTarget !== undefined) urls.add(this.defaultTarget.url);
    return [...urls].filter((url) => {
      if (isHttpUrl(url)) return true;
      this.log.warn({ url: redactUrl(url) }, 'webhook URL is not http(s); its events are not sent');
      return false;
    });
  }

  /**
   * Writes the events to the outbox, one row per event and URL, in one batch; returns the rows'
   * ids. Sending starts at once if the dispatcher runs; nothing here waits for a receiver.
   */
  async enqueue(account: Pick<Account, 'id' | 'webhook_url' | 'webhook_secret'>, events: readonly WebhookPayload[]): Promise<number[]> {
    const rows = this.rowsFor(account, events);
    if (rows.length === 0) return [];
    const ids = await this.store.webhookEvents.add(rows, this.now());
    this.kick();
    return ids;
  }

  /** The outbox rows for the events (one per event and URL), for a caller that writes them in its own transaction; then wake(). */
  rowsFor(account: Pick<Account, 'id' | 'webhook_url' | 'webhook_secret'>, events: readonly WebhookPayload[]): NewWebhookEvent[] {
    const urls = this.urlsFor(account);
    if (urls.length === 0 || events.length === 0) return [];
    return events.flatMap((event) => {
      const body = JSON.stringify(event);
      return urls.map((url) => ({ accountId: account.id, url, type: event.type, body }));
    });
  }

  /** Rows were written to the outbox by someone else: send them now rather than at the next poll. */
  wake(): void {
    this.kick();
  }

  /** Each receiver URL this process has sent to, and its circuit breaker's state. */
  receiverStates(): ReceiverView[] {
    const now = this.now();
    return [...this.receivers].map(([url, r]) => ({ url, state: r.openUntil === 0 ? 'closed' : r.openUntil > now ? 'open' : 'half-open', inFlight: r.inFlight, failures: r.failures }));
  }

  start(): void {
    if (this.timer !== undefined || this.stopping) return;
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  /**
   * Stops sending. Requests in flight get up to `graceMs` to finish; the rest are cut off and
   * their events handed back uncounted, to be sent after the next start.
   */
  async stop(graceMs = 2_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.claiming;
    const pending = () => Promise.allSettled([...this.inFlight.values()].map((f) => f.done));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), graceMs)));
    const outcome = await Promise.race([pending(), expired]);
    clearTimeout(timer);
    if (outcome === 'expired') {
      for (const flight of this.inFlight.values()) flight.abort.abort();
      await pending();
    }
  }

  /** Claims what is due, as far as the bound on requests in flight allows, and starts sending it. */
  private kick(): void {
    if (this.stopping || this.timer === undefined) return;
    if (this.claiming !== undefined) {
      this.again = true;
      return;
    }
    const room = this.concurrency - this.inFlight.size;
    // A send that ends kicks again.
    if (room <= 0) return;
    const now = this.now();
    this.claiming = this.store.webhookEvents
      .claimDue(now, room, now + this.timeoutMs + CLAIM_MARGIN_MS, (url) => this.roomFor(url, now))
      .then((events) => {
        for (const event of events) this.send(event);
      })
      .catch((error: unknown) => this.log.error({ err: error }, 'webhook outbox could not be read'))
      .finally(() => {
        this.claiming = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** How many more requests this URL may have: per-receiver bound, and none while its breaker is open, one while it is half-open. */
  private roomFor(url: string, now: number): number {
    const r = this.receivers.get(url);
    if (r === undefined) return this.perReceiver;
    if (r.openUntil > now) return 0;
    return Math.max(0, (r.openUntil === 0 ? this.perReceiver : 1) - r.inFlight);
  }

  private receiver(url: string): ReceiverState {
    let r = this.receivers.get(url);
    if (r === undefined) this.receivers.set(url, (r = { inFlight: 0, failures: 0, openUntil: 0, trips: 0 }));
    return r;
  }

  private succeeded(url: string): void {
    const r = this.receiver(url);
    if (r.openUntil !== 0) this.log.info({ url: redactUrl(url) }, 'webhook receiver answers again: circuit closed');
    Object.assign(r, { failures: 0, openUntil: 0, trips: 0 });
  }

  private failed(url: string): void {
    const r = this.receiver(url);
    r.failures++;
    const now = this.now();
    // Already open: a request that was in flight when it opened ended. Closed: open only after enough failures in a row.
    if (r.openUntil > now || (r.openUntil === 0 && r.failures < this.breakerFailures)) return;
    // Too many failures in a row, or the half-open trial failed: open, for longer each time.
    const cooldown = Math.min(this.breakerCooldownMs * 2 ** r.trips, MAX_BREAKER_COOLDOWN_MS);
    r.openUntil = now + cooldown;
    r.trips++;
    this.log.warn({ url: redactUrl(url), failures: r.failures, cooldownMs: cooldown }, 'webhook receiver keeps failing: circuit open, its events wait');
  }

  private send(event: WebhookEvent): void {
    const abort = new AbortController();
    const receiver = this.receiver(event.url);
    receiver.inFlight++;
    const done = this.attempt(event, abort.signal)
      .catch((error: unknown) => this.log.error({ err: error, event: event.id }, 'webhook attempt could not be made or recorded; retried when its claim runs out'))
      .finally(() => {
        receiver.inFlight--;
        this.inFlight.delete(event.id);
        this.kick();
      });
    this.inFlight.set(event.id, { done, abort });
  }

  private async attempt(event: WebhookEvent, stopped: AbortSignal): Promise<void> {
    const events = this.store.webhookEvents;
    if (!isHttpUrl(event.url)) return this.giveUp(event, 'the URL is not http(s)', false);
    // A store failure here propagates: the event stays claimed and is tried again when the claim runs out.
    const found = await this.secretFor(event);
    if ('keyMissing' in found) return this.postpone(event, found.keyMissing);
    if ('problem' in found) return this.giveUp(event, found.problem, false);
    const { secret } = found;
    const timestamp = Math.floor(this.now() / 1000);
    let failure: string;
    const limit = deadline(this.timeoutMs, stopped);
    try {
      const response = await fetch(event.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'popwire-webhook',
          'Popwire-Event': event.type,
          'Popwire-Delivery': String(event.id),
          [SIGNATURE_HEADER]: signatureHeader(secret, event.body, timestamp),
        },
        body: event.body,
        redirect: 'manual',
        ...(this.options.network === undefined || event.url === this.defaultTarget?.url ? {} : { dispatcher: this.guarded(this.options.network) }),
        // Not AbortSignal.any with AbortSignal.timeout: on Node 20 the timeout can be garbage
        // collected inside the composite and never fire (see popwire's deadline.ts).
        signal: limit.signal,
      });
      // Nothing of the answer is needed but its status; cancelling frees the connection.
      await response.body?.cancel().catch(() => {});
      if (response.status >= 200 && response.status < 300) {
        await events.markDelivered(event.id, this.now());
        this.succeeded(event.url);
        this.options.metrics?.webhooks.inc({ outcome: 'delivered' });
        return;
      }
      failure = `HTTP ${response.status}`;
    } catch (error) {
      if (stopped.aborted) return events.release(event.id, this.now());
      failure = describeFetchError(error, this.timeoutMs);
    } finally {
      limit.clear();
    }
    this.failed(event.url);
    const attempts = event.attempts + 1;
    if (attempts >= this.attempts) return this.giveUp(event, failure, true);
    await events.scheduleRetry(event.id, this.now() + backoffDelay(attempts, this.backoff), failure);
    this.options.metrics?.webhooks.inc({ outcome: 'failed' });
  }

  /** Not an attempt: the secret cannot be opened (its key left the ring). Never given up for that; looked at again later. */
  private async postpone(event: WebhookEvent, reason: string): Promise<void> {
    await this.store.webhookEvents.postpone(event.id, this.now() + KEY_RETRY_MS, reason);
    this.options.metrics?.webhooks.inc({ outcome: 'failed' });
    this.log.warn({ event: event.id, type: event.type, url: redactUrl(event.url), reason }, 'webhook event postponed');
  }

  private async giveUp(event: WebhookEvent, reason: string, countAttempt: boolean): Promise<void> {
    await this.store.webhookEvents.giveUp(event.id, reason, countAttempt);
    this.options.metrics?.webhooks.inc({ outcome: 'gave_up' });
    const attempts = event.attempts + (countAttempt ? 1 : 0);
    this.log.warn({ event: event.id, type: event.type, url: redactUrl(event.url), attempts, reason }, 'webhook event given up');
  }

  /**
   * The account's own secret if the event goes to its webhook, else the default target's if that
   * is where it goes; else why there is none.
   */
  private async secretFor(event: WebhookEvent): Promise<{ secret: string } | { problem: string } | { keyMissing: string }> {
    if (event.account_id !== null) {
      const row = await this.store.accounts.get(event.account_id).catch((error: unknown) => {
        if (error instanceof StoreError && error.code === 'STORE_ACCOUNT_NOT_FOUND') return undefined;
        throw error;
      });
      if (row !== undefined && row.deleted_at === null && row.webhook_url === event.url) {
        try {
          const own = this.accounts.webhook(row);
          if (own !== undefined) return { secret: own.secret };
        } catch {
          // Its key left the ring, say: the event waits for the key to come back, never given up for it. The error stays out of the log.
          return { keyMissing: 'the webhook secret cannot be opened: its key is not in the key ring' };
        }
      }
    }
    if (this.defaultTarget?.url === event.url) return { secret: this.defaultTarget.secret };
    return { problem: 'the webhook is no longer configured' };
  }
}

/** Past the request's own deadline, so that a claim never runs out while its request may still succeed. */
const CLAIM_MARGIN_MS = 30_000;

export function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** For logs: scheme, host and path only. A URL's userinfo or query may carry a token. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(unreadable URL)';
  }
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const refused = addressRefusal(error);
  if (refused !== undefined) return refused.message;
  // undici puts the socket's error (ECONNREFUSED, ENOTFOUND...) in `cause`.
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return `request failed: ${cause.code}`;
  return `request failed: ${error instanceof Error ? error.message : String(error)}`;
}
