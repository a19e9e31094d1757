import { isIPv6 } from 'node:net';

/**
 * What one client may hold of the HTTP server. Each bound stops a way to exhaust it:
 * - `headersTimeout`: a client that sends its request line and headers one byte at a time
 *   (slowloris) holds a socket and a parser for ever; it gets 408 and is closed.
 * - `requestTimeout`: the same with the body, once the headers are in.
 * - `keepAliveTimeout`: an idle kept-alive connection is closed, so idle sockets do not pile up.
 * - `maxConnections`: past it, new connections are refused at once, so file descriptors and
 *   memory stay bounded whatever the number of clients.
 * - `authFailures` per `authWindow`: a client address that sent that many bad tokens gets 429
 *   until the window has passed, so tokens cannot be guessed at line rate (and a flood of bad
 *   tokens does not cost a hash each).
 */
export interface HttpLimits {
  /** Milliseconds to receive the request line and headers. */
  readonly headersTimeout: number;
  /** Milliseconds to receive the whole request, body included. */
  readonly requestTimeout: number;
  /** Milliseconds an idle kept-alive connection stays open. */
  readonly keepAliveTimeout: number;
  readonly maxConnections: number;
  /** Failed authentications allowed per client address in `authWindow` seconds. */
  readonly authFailures: number;
  readonly authWindow: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  maxConnections: 1024,
  authFailures: 20,
  authWindow: 60,
};

/**
 * Node checks the header and request deadlines on a timer (30 s by default), so a deadline of
 * 10 s could let a slow client stay 40 s. A quarter of the shorter deadline keeps the overshoot
 * small; the check walks the open connections only, which `maxConnections` bounds.
 */
export function connectionsCheckingInterval(limits: HttpLimits): number {
  return Math.max(50, Math.floor(Math.min(limits.headersTimeout, limits.requestTimeout) / 4));
}

/** Addresses remembered at most: a client with many addresses cannot grow the table without bound. */
const MAX_TRACKED = 10_000;

/**
 * Failed authentications per client address, in fixed windows. An IPv6 client is counted by its
 * /64, the block one host normally gets: otherwise each of its 2^64 addresses would start afresh.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  constructor(
    private readonly limits: Pick<HttpLimits, 'authFailures' | 'authWindow'>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until this address may try again, or undefined if it may now. */
  blocked(address: string): number | undefined {
    const entry = this.current(clientKey(address));
    if (entry === undefined || entry.failures < this.limits.authFailures) return undefined;
    return Math.max(1, Math.ceil((entry.start + this.limits.authWindow * 1000 - this.now()) / 1000));
  }

  failed(address: string): void {
    const key = clientKey(address);
    const entry = this.current(key);
    if (entry !== undefined) {
      entry.failures++;
      return;
    }
    if (this.windows.size >= MAX_TRACKED) this.evict();
    this.windows.set(key, { start: this.now(), failures: 1 });
  }

  private current(key: string): { start: number; failures: number } | undefined {
    const entry = this.windows.get(key);
    if (entry === undefined) return undefined;
    if (this.now() - entry.start >= this.limits.authWindow * 1000) {
      this.windows.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Drops expired windows; if none has expired, the oldest (Map keeps insertion order). */
  private evict(): void {
    const now = this.now();
    for (const [key, entry] of this.windows) if (now - entry.start >= this.limits.authWindow * 1000) this.windows.delete(key);
    if (this.windows.size >= MAX_TRACKED) this.windows.delete(this.windows.keys().next().value!);
  }
}

function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((part) => part.toLowerCase().replace(/^0+(?=.)/, ''));
}
