import { Pop3Client, type Pop3ClientOptions } from './client.js';
import { Pop3Error, Pop3TimeoutError, Pop3UsageError } from './errors.js';
import { abortError } from './transport.js';
import { deadline } from './deadline.js';

/**
 * Sessions kept per mailbox, for many accounts at once.
 *
 * POP3 locks the maildrop (RFC 1939 section 8): a second login to a mailbox in use gets -ERR
 * ([IN-USE] from servers with RFC 2449 codes; Dovecot with pop3_lock_session makes it wait
 * about 12 s first). A pool of N sessions to one mailbox cannot work, so this pool holds at most
 * one per mailbox (host, port, user) and queues its users, first come first served; the limits
 * on sessions per host and in total bound what many accounts open at once.
 *
 * A session sees the maildrop as it was at login. An idle one is reused only within
 * `idleTimeout` and after a NOOP answers; `fresh: true` always logs in anew, to see new mail.
 *
 * Deletions: DELE only marks; the server applies the marks at QUIT, and a dropped connection
 * rolls them back. So a user that throws has its session closed without QUIT (its marks are
 * undone, never applied behind its back), and a session handed back with messages marked is
 * QUIT at once, so that `use()` resolving means the server applied them.
 */

export interface Pop3PoolOptions {
  /** Sessions open at once, all mailboxes together. Default 16. */
  readonly maxSessions?: number | undefined;
  /** Sessions open at once to one host (many servers limit connections per client address). Default 4. */
  readonly maxSessionsPerHost?: number | undefined;
  /** Milliseconds an idle session is kept for reuse before it is QUIT. Default 5,000. */
  readonly idleTimeout?: number | undefined;
  /** Milliseconds `acquire` waits for the mailbox and a free session slot. Default 60,000. */
  readonly acquireTimeout?: number | undefined;
  /** Milliseconds `close()` waits for sessions in use before it closes them. Default 10,000. */
  readonly closeTimeout?: number | undefined;
  /** Options for every account (timeouts, TLS, retry); an account's own win. */
  readonly defaults?: Partial<Pop3ClientOptions> | undefined;
  /** How a session is opened. Default: `Pop3Client.connect`. */
  readonly connect?: ((options: Pop3ClientOptions) => Promise<Pop3Client>) | undefined;
}

/** An account to log in to: host, user and a password or access token. */
export type Pop3Account = Partial<Pop3ClientOptions> & { readonly host?: string; readonly user: string };

export interface AcquireOptions {
  /** Log in anew even if an idle session of this mailbox could be reused. */
  readonly fresh?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface PoolStats {
  readonly sessions: number;
  readonly idle: number;
  readonly busy: number;
  /** Callers waiting for a mailbox or for a session slot. */
  readonly waiting: number;
}

interface Session {
  readonly client: Pop3Client;
  readonly mailbox: Mailbox;
  /** STAT's count at login: fewer later means messages are marked deleted. */
  readonly baseline: number;
  idleTimer?: NodeJS.Timeout;
  idleSince?: number;
}

interface Waiter {
  readonly host: string;
  readonly resolve: () => void;
  readonly reject: (error: Pop3Error) => void;
}

interface Mailbox {
  readonly key: string;
  readonly host: string;
  locked: boolean;
  readonly queue: Waiter[];
  idle: Session | undefined;
}

export class Pop3Pool implements AsyncDisposable {
  private readonly limits: Required<Omit<Pop3PoolOptions, 'defaults' | 'connect'>>;
  private readonly mailboxes = new Map<string, Mailbox>();
  private readonly busy = new Map<Pop3Client, Session>();
  private readonly perHost = new Map<string, number>();
  /** Callers waiting for a session slot, in order. None of them fits at rest (see pump). */
  private readonly slotQueue: Waiter[] = [];
  private sessions = 0;
  private opening = 0;
  private closing: Promise<void> | undefined;
  private settled: (() => void) | undefined;

  constructor(private readonly options: Pop3PoolOptions = {}) {
    this.limits = {
      maxSessions: options.maxSessions ?? 16,
      maxSessionsPerHost: options.maxSessionsPerHost ?? 4,
      idleTimeout: options.idleTimeout ?? 5_000,
      acquireTimeout: options.acquireTimeout ?? 60_000,
      closeTimeout: options.closeTimeout ?? 10_000,
    };
  }

  /**
   * Runs `fn` with a logged-in session of `account`'s mailbox. The session goes back to the pool
   * when `fn` resolves; if `fn` throws it is closed without QUIT, undoing its deletions.
   */
  async use<T>(account: Pop3Account, fn: (client: Pop3Client) => Promise<T>, options: AcquireOptions = {}): Promise<T> {
    const client = await this.acquire(account, options);
    let result: T;
    try {
      result = await fn(client);
    } catch (error) {
      await this.release(client, { failed: true });
      throw error;
    }
    await this.release(client);
    return result;
  }

  /** The mailbox's session, once no one else holds it. Give it back with `release`. */
  async acquire(account: Pop3Account, options: AcquireOptions = {}): Promise<Pop3Client> {
    const settings: Pop3ClientOptions = { ...this.options.defaults, ...account, host: account.host ?? this.options.defaults?.host ?? '' };
    if (settings.host === '' || (settings.password === undefined && settings.accessToken === undefined)) {
      throw new Pop3UsageError('A pool account needs a host, a user and a password or access token', { code: 'POP3_INVALID_ARGUMENT' });
    }
    const limit = deadline(this.limits.acquireTimeout, options.signal);
    try {
      return await this.acquireWithin(settings, options, limit.signal);
    } finally {
      limit.clear();
    }
  }

  private async acquireWithin(settings: Pop3ClientOptions, options: AcquireOptions, signal: AbortSignal): Promise<Pop3Client> {
    if (this.closing !== undefined) throw poolClosed();
    const mailbox = this.mailboxOf(settings);
    // Taken in the same tick as the check: a second caller arriving meanwhile must queue.
    if (mailbox.locked) await this.wait(mailbox.queue, mailbox.host, signal);
    else mailbox.locked = true;
    try {
      const idle = this.takeIdle(mailbox);
      if (idle !== undefined) {
        if (options.fresh !== true && (await alive(idle.client))) return this.lend(idle);
        await this.retire(idle);
      }
      return await this.open(settings, mailbox, signal);
    } catch (error) {
      this.unlock(mailbox);
      throw error;
    }
  }

  /**
   * Gives a session back. `failed`: its user hit an error, so it is closed without QUIT. Otherwise
   * it is kept idle, or QUIT now if it has messages marked deleted (a -ERR to that QUIT is thrown).
   */
  async release(client: Pop3Client, outcome: { failed?: boolean } = {}): Promise<void> {
    const session = this.busy.get(client);
    if (session === undefined) throw new Pop3UsageError('This client is not lent by this pool', { code: 'POP3_INVALID_ARGUMENT' });
    this.busy.delete(client);
    try {
      if (outcome.failed === true || client.state !== 'transaction') return await this.retire(session, false);
      const { count } = await client.stat().catch(async (error: unknown) => {
        await this.retire(session, false);
        throw error;
      });
      if (count < session.baseline) return await this.retire(session, true, true);
      if (this.closing !== undefined) return await this.retire(session);
      this.keepIdle(session);
    } finally {
      this.unlock(session.mailbox);
      this.checkSettled();
    }
  }

  stats(): PoolStats {
    let idle = 0;
    let waiting = this.slotQueue.length;
    for (const mailbox of this.mailboxes.values()) {
      if (mailbox.idle !== undefined) idle += 1;
      waiting += mailbox.queue.length;
    }
    return { sessions: this.sessions, idle, busy: this.busy.size, waiting };
  }

  /** QUITs every idle session, waits up to `closeTimeout` for the busy ones, then closes them. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(): Promise<void> {
    for (const waiter of this.slotQueue.splice(0)) waiter.reject(poolClosed());
    const retiring: Array<Promise<void>> = [];
    for (const mailbox of this.mailboxes.values()) {
      for (const waiter of mailbox.queue.splice(0)) waiter.reject(poolClosed());
      const idle = this.takeIdle(mailbox);
      if (idle !== undefined) retiring.push(this.retire(idle));
    }
    await Promise.all(retiring);
    if (this.busy.size + this.opening > 0) {
      const settled = new Promise<void>((resolve) => (this.settled = resolve));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.limits.closeTimeout).unref()));
      await Promise.race([settled, deadline]);
      clearTimeout(timer);
      // Closed without QUIT: what their users marked is rolled back, not applied half-done.
      for (const client of this.busy.keys()) client.close();
    }
  }

  private async open(settings: Pop3ClientOptions, mailbox: Mailbox, signal: AbortSignal): Promise<Pop3Client> {
    await this.takeSlot(mailbox.host, signal);
    this.opening += 1;
    let client: Pop3Client | undefined;
    try {
      client = await (this.options.connect ?? Pop3Client.connect)(settings);
      const { count } = await client.stat();
      if (this.closing !== undefined) throw poolClosed();
      return this.lend({ client, mailbox, baseline: count });
    } catch (error) {
      await client?.quit().catch(() => client?.close());
      this.giveSlot(mailbox.host);
      throw error;
    } finally {
      this.opening -= 1;
      this.checkSettled();
    }
  }

  private lend(session: Session): Pop3Client {
    this.busy.set(session.client, session);
    return session.client;
  }

  private keepIdle(session: Session): void {
    session.mailbox.idle = session;
    session.idleSince = Date.now();
    session.idleTimer = setTimeout(() => {
      if (session.mailbox.idle === session) void this.retire(this.takeIdle(session.mailbox) as Session);
    }, this.limits.idleTimeout).unref();
    this.pump(); // a caller waiting for a slot may need this session gone
  }

  private takeIdle(mailbox: Mailbox): Session | undefined {
    const idle = mailbox.idle;
    mailbox.idle = undefined;
    clearTimeout(idle?.idleTimer);
    this.forget(mailbox);
    return idle;
  }

  /** Ends a session (QUIT, or close to roll back) and frees its slot once the server is done with it. */
  private async retire(session: Session, quit = true, report = false): Promise<void> {
    try {
      if (quit) await session.client.quit();
      else session.client.close();
    } catch (error) {
      session.client.close();
      if (report) throw error;
    } finally {
      this.giveSlot(session.mailbox.host);
    }
  }

  private unlock(mailbox: Mailbox): void {
    const next = mailbox.queue.shift();
    if (next !== undefined) {
      next.resolve(); // the lock passes straight to the next in line
      return;
    }
    mailbox.locked = false;
    this.forget(mailbox);
  }

  /** Drops a mailbox nobody holds, waits for or keeps a session of: many accounts come and go. */
  private forget(mailbox: Mailbox): void {
    if (!mailbox.locked && mailbox.queue.length === 0 && mailbox.idle === undefined) this.mailboxes.delete(mailbox.key);
  }

  private async takeSlot(host: string, signal: AbortSignal): Promise<void> {
    if (this.fits(host)) this.addSession(host);
    else await this.wait(this.slotQueue, host, signal, () => this.pump());
  }

  private giveSlot(host: string): void {
    this.sessions -= 1;
    this.perHost.set(host, (this.perHost.get(host) ?? 1) - 1);
    this.pump();
  }

  /** Grants slots to waiters that fit now, in order; for one that does not, evicts an idle session. */
  private pump(): void {
    for (const waiter of [...this.slotQueue]) {
      if (this.fits(waiter.host)) {
        this.slotQueue.splice(this.slotQueue.indexOf(waiter), 1);
        this.addSession(waiter.host);
        waiter.resolve();
        continue;
      }
      const victim = this.oldestIdle(this.hostFull(waiter.host) ? waiter.host : undefined);
      if (victim !== undefined) void this.retire(this.takeIdle(victim.mailbox) as Session);
    }
  }

  private oldestIdle(host: string | undefined): Session | undefined {
    let oldest: Session | undefined;
    for (const { idle } of this.mailboxes.values()) {
      if (idle === undefined || (host !== undefined && idle.mailbox.host !== host)) continue;
      if (oldest === undefined || (idle.idleSince ?? 0) < (oldest.idleSince ?? 0)) oldest = idle;
    }
    return oldest;
  }

  private fits(host: string): boolean {
    return this.sessions < this.limits.maxSessions && !this.hostFull(host);
  }

  private hostFull(host: string): boolean {
    return (this.perHost.get(host) ?? 0) >= this.limits.maxSessionsPerHost;
  }

  private addSession(host: string): void {
    this.sessions += 1;
    this.perHost.set(host, (this.perHost.get(host) ?? 0) + 1);
  }

  /** Waits in `queue` until resolved, aborted (timeout or caller) or the pool closes. */
  private wait(queue: Waiter[], host: string, signal: AbortSignal, onQueued?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        queue.splice(queue.indexOf(waiter), 1);
        const error = abortError(signal, 'waiting for a pooled session');
        reject(error instanceof Pop3TimeoutError ? new Pop3TimeoutError(`No pooled session for ${host} within ${this.limits.acquireTimeout} ms`) : error);
      };
      const waiter: Waiter = {
        host,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
      onQueued?.();
    });
  }

  private mailboxOf(settings: Pop3ClientOptions): Mailbox {
    const port = settings.port ?? ((settings.tls ?? 'implicit') === 'implicit' ? 995 : 110);
    const host = settings.host.toLowerCase();
    // User names compare without case: most servers treat them so, and two keys for one mailbox
    // would mean two sessions, which the lock refuses; one key for two mailboxes only serialises.
    const key = `${host}\n${port}\n${(settings.user ?? '').toLowerCase()}`;
    let mailbox = this.mailboxes.get(key);
    if (mailbox === undefined) {
      mailbox = { key, host, locked: false, queue: [], idle: undefined };
      this.mailboxes.set(key, mailbox);
    }
    return mailbox;
  }

  private checkSettled(): void {
    if (this.busy.size + this.opening === 0) this.settled?.();
  }
}

function poolClosed(): Pop3UsageError {
  return new Pop3UsageError('The pool is closed', { code: 'POP3_POOL_CLOSED' });
}

/** Whether an idle session still answers: its server may have timed it out meanwhile. */
async function alive(client: Pop3Client): Promise<boolean> {
  if (client.state !== 'transaction') return false;
  try {
    await client.noop();
    return true;
  } catch {
    return false;
  }
}
