import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { classify, inBlock, parseAddress, type AddressCategory, type Classification } from './address.js';

/**
 * The outbound address policy: where the service may connect on behalf of a caller of its API
 * (an account's POP3 host, its webhook, its OAuth token endpoint). Without it, anyone holding a
 * token could make the service reach the loopback admin port, the cloud metadata service at
 * 169.254.169.254, or anything else on the internal network, and read the answer back through a
 * connection test or a sync error.
 *
 * The check happens where the connection is made, on the address it is made to: the guard is a
 * `lookup` function (Node's signature), so the address it approves is the one the socket dials.
 * Checking a name first and connecting later would let a DNS answer that changes in between
 * (DNS rebinding) through. IP literals never reach a `lookup` in Node, so connect paths also call
 * `check` on them (pop3.ts, http.ts do).
 *
 * Not used for the operator's own destinations: the config file's webhook, and `popwire` CLI
 * commands, connect wherever the operator says.
 */
export class AddressRefusedError extends Error {
  override readonly name = 'AddressRefusedError';
  readonly code = 'ADDRESS_REFUSED';
  /** Never worth a retry: the same address is refused next time. */
  readonly retryable = false;
  constructor(
    /** The host as given (a name or a literal). */
    readonly host: string,
    /** The address refused, canonical. */
    readonly address: string,
    readonly category: Exclude<AddressCategory, 'public'> | 'not-allowed',
    detail: string,
  ) {
    super(`${describeHost(host, address)} ${detail}; not allowed by the network policy (add it to network.allow to permit it) [ADDRESS_REFUSED]`);
  }
}

/** A name resolver: every address of a host. Tests pass one that answers what they choose. */
export type Resolver = (host: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

export interface AddressGuardOptions {
  /**
   * What the operator permits despite its category (config `network.allow`): CIDR blocks
   * (`10.1.0.0/16`, `fd00::/8`), single addresses, host names (`pop.internal`), or `*.suffix`.
   */
  readonly allow?: readonly string[] | undefined;
  /** Default: the system resolver (getaddrinfo, as Node's sockets use). */
  readonly resolve?: Resolver | undefined;
}

export interface CheckOptions {
  /**
   * Refuse even a public address unless it is allowed: for plain-http token endpoints, where a
   * client secret would cross the network in clear.
   */
  readonly onlyAllowed?: boolean | undefined;
}

type AllowEntry = { kind: 'block'; bytes: Uint8Array; length: number } | { kind: 'name'; name: string } | { kind: 'suffix'; suffix: string };

export class AddressGuard {
  private readonly allowed: readonly AllowEntry[];
  private readonly resolver: Resolver;

  constructor(options: AddressGuardOptions = {}) {
    this.allowed = (options.allow ?? []).map((entry, index) => {
      const parsed = parseAllowEntry(entry);
      if (parsed === undefined) throw new RangeError(`network.allow[${index}]: ${JSON.stringify(entry)} is neither an address, a CIDR block nor a host name`);
      return parsed;
    });
    this.resolver = options.resolve ?? systemResolver;
  }

  /** True when the operator allowed this host by name (then any address it resolves to is fine). */
  allowsName(host: string): boolean {
    const name = normalName(host);
    return this.allowed.some((entry) => (entry.kind === 'name' ? entry.name === name : entry.kind === 'suffix' ? name.endsWith(entry.suffix) : false));
  }

  /** Throws AddressRefusedError unless `address` (what `host` resolved to, or the literal itself) may be dialled. */
  check(host: string, address: string, options: CheckOptions = {}): Classification {
    const found = classify(address);
    if (found === undefined) throw new AddressRefusedError(host, address, 'reserved', 'an unreadable address');
    if (this.allowsName(host) || this.allowsAddress(found)) return found;
    if (found.category !== 'public') throw new AddressRefusedError(host, found.address, found.category, describeCategory(found));
    if (options.onlyAllowed === true) throw new AddressRefusedError(host, found.address, 'not-allowed', 'a public address, but plain http is only allowed to hosts the operator lists');
    return found;
  }

  /**
   * Resolves the host (a literal resolves to itself) and checks every address. One refused
   * address refuses the host: a name that points both outside and inside is an attack, or a
   * mistake worth hearing about.
   */
  async resolve(host: string, options: CheckOptions = {}): Promise<LookupAddress[]> {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    const literal = parseAddress(bare);
    if (literal !== undefined) {
      const found = this.check(host, bare, options);
      return [{ address: found.address, family: found.family }];
    }
    const answers = await this.resolver(bare);
    if (answers.length === 0) throw Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' });
    return answers.map(({ address }) => {
      const found = this.check(host, address, options);
      return { address: found.address, family: found.family };
    });
  }

  /**
   * A `lookup` for net.connect, tls.connect and HTTP agents: resolves and checks, and hands the
   * socket only approved addresses, so that what is checked is what is dialled.
   */
  lookupFunction(options: CheckOptions = {}): LookupFunction {
    return (hostname: string, lookupOptions: LookupOptions, callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
      this.resolve(hostname, options).then(
        (all) => {
          const wanted = lookupOptions.family === 4 || lookupOptions.family === 6 ? all.filter((a) => a.family === lookupOptions.family) : all;
          if (lookupOptions.all === true) return callback(null, wanted);
          const first = wanted[0];
          if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no IPv${String(lookupOptions.family)} address`), { code: 'ENOTFOUND' }), '', 0);
          callback(null, first.address, first.family);
        },
        (error: NodeJS.ErrnoException) => callback(error, '', 0),
      );
    };
  }

  private allowsAddress(found: Classification): boolean {
    const candidates = [found.address, ...(found.embedded?.via === 'ipv4-mapped' ? [found.embedded.address] : [])];
    return candidates.some((candidate) => {
      const bytes = parseAddress(candidate)?.bytes;
      return bytes !== undefined && this.allowed.some((entry) => entry.kind === 'block' && inBlock(bytes, entry));
    });
  }
}

/** Parses one `network.allow` entry; undefined when it is none of the accepted forms. */
export function parseAllowEntry(text: string): AllowEntry | undefined {
  const entry = text.trim();
  const slash = entry.lastIndexOf('/');
  const address = parseAddress(slash === -1 ? entry : entry.slice(0, slash));
  if (address !== undefined) {
    if (address.zone !== undefined) return undefined;
    const bits = address.bytes.length * 8;
    const lengthText = slash === -1 ? String(bits) : entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > bits) return undefined;
    return { kind: 'block', bytes: address.bytes, length: Number(lengthText) };
  }
  if (slash !== -1) return undefined;
  const name = normalName(entry);
  if (name.startsWith('*.') && HOST_NAME.test(name.slice(2))) return { kind: 'suffix', suffix: name.slice(1) };
  return HOST_NAME.test(name) ? { kind: 'name', name } : undefined;
}

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function normalName(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

const CATEGORY_WORDS: Record<Exclude<AddressCategory, 'public'>, string> = {
  loopback: 'a loopback address',
  private: 'a private address (RFC 1918)',
  cgnat: 'a shared address (CGNAT, 100.64.0.0/10)',
  'link-local': 'a link-local address',
  'unique-local': 'a unique local IPv6 address (fc00::/7)',
  multicast: 'a multicast address',
  unspecified: 'the unspecified address',
  'this-network': 'an address in 0.0.0.0/8 ("this network")',
  broadcast: 'the broadcast address',
  'ipv4-mapped': 'an IPv4-mapped IPv6 address',
  reserved: 'a reserved or special-purpose address',
};

function describeCategory(found: Classification): string {
  const words = CATEGORY_WORDS[found.category as Exclude<AddressCategory, 'public'>];
  return found.embedded === undefined ? words : `${words}, carried as ${found.embedded.via} ${found.embedded.address}`;
}

/**
 * A literal is shown with the address it means; a name without what it resolved to, so that
 * refusals cannot be used to read the internal DNS (the address is on the error, for logs).
 */
function describeHost(host: string, address: string): string {
  if (host === address) return `${address} is`;
  if (parseAddress(host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host) !== undefined) return `${host} (${address}) is`;
  return `${host} resolves to`;
}

const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });
