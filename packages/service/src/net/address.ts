/**
 * What kind of address an IP is, for the outbound address policy (guard.ts): one question, "may
 * a caller of the API make the service connect here?". Everything that is not ordinary public
 * unicast gets a category, and the guard refuses it unless the operator allowed it.
 *
 * Addresses are parsed here rather than with `net.isIP`, because an attacker picks the spelling:
 * `127.1`, `0x7f.1`, `2130706433` and `017700000001` are all 127.0.0.1 to getaddrinfo and to
 * WHATWG URLs; `[::ffff:127.0.0.1]` is 127.0.0.1 to a dual-stack socket; `fe80::1%eth0` carries
 * a zone id. The tables are IANA's IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890).
 */

export type AddressCategory =
  | 'public'
  | 'loopback'
  /** RFC 1918: 10/8, 172.16/12, 192.168/16. */
  | 'private'
  /** RFC 6598 shared address space, 100.64/10: carrier-grade NAT, cloud internals. */
  | 'cgnat'
  /** 169.254/16 (cloud metadata at 169.254.169.254), fe80::/10. */
  | 'link-local'
  /** fc00::/7 (RFC 4193). */
  | 'unique-local'
  | 'multicast'
  /** 0.0.0.0 and ::, which Linux connects to the local host. */
  | 'unspecified'
  /** The rest of 0/8, "this network". */
  | 'this-network'
  | 'broadcast'
  /** ::ffff:0:0/96 embedding a public IPv4 address: refused anyway, a v4 path in v6 spelling. */
  | 'ipv4-mapped'
  /** Documentation, benchmarking, protocol assignments, 240/4, IPv6 outside 2000::/3... */
  | 'reserved';

/** How an IPv4 address was carried inside an IPv6 one. */
export type Embedding = 'ipv4-mapped' | 'ipv4-compatible' | 'nat64' | '6to4';

export interface Classification {
  /** The address in canonical form (`127.0.0.1`, `::1`), without zone id or brackets. */
  readonly address: string;
  readonly family: 4 | 6;
  readonly category: AddressCategory;
  /** For an IPv4 address inside an IPv6 one: the form, and the IPv4 address. */
  readonly embedded?: { readonly via: Embedding; readonly address: string } | undefined;
  /** The zone id of a scoped IPv6 address (`eth0` of `fe80::1%eth0`). */
  readonly zone?: string | undefined;
}

/** An IP address as bytes: 4 of them, or 16. */
export interface ParsedAddress {
  readonly bytes: Uint8Array;
  readonly zone?: string | undefined;
}

/** Parses any spelling of an IP address; undefined when the text is not one (a host name). */
export function parseAddress(text: string): ParsedAddress | undefined {
  let host = text.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.includes(':')) {
    const percent = host.indexOf('%');
    const zone = percent === -1 ? undefined : host.slice(percent + 1);
    const bytes = parseIpv6(percent === -1 ? host : host.slice(0, percent));
    if (bytes === undefined || zone === '') return undefined;
    return { bytes, zone };
  }
  const bytes = parseIpv4(host);
  return bytes === undefined ? undefined : { bytes };
}

/** The category of an IP address in any spelling; undefined for a host name. */
export function classify(text: string): Classification | undefined {
  const parsed = parseAddress(text);
  if (parsed === undefined) return undefined;
  const found = classifyBytes(parsed.bytes);
  // A zone id scopes an address to one link; a "public" one with a zone is not what it seems.
  const category = parsed.zone !== undefined && found.category === 'public' ? 'link-local' : found.category;
  return { ...found, category, ...(parsed.zone === undefined ? {} : { zone: parsed.zone }) };
}

export function classifyBytes(bytes: Uint8Array): Classification {
  if (bytes.length === 4) return { address: formatIpv4(bytes), family: 4, category: lookupTable(IPV4_TABLE, bytes) ?? 'public' };
  const address = formatIpv6(bytes);
  const listed = lookupTable(IPV6_TABLE, bytes);
  if (listed !== undefined) return { address, family: 6, category: listed };
  for (const form of EMBEDDINGS) {
    if (!matches(bytes, form.prefix, form.length)) continue;
    const embedded = classifyBytes(bytes.slice(form.offset, form.offset + 4));
    const category = embedded.category !== 'public' ? embedded.category : form.refusedAnyway;
    return { address, family: 6, category, embedded: { via: form.via, address: embedded.address } };
  }
  // Only 2000::/3 is global unicast; anything else is unassigned or special.
  return { address, family: 6, category: matches(bytes, GLOBAL_UNICAST, 3) ? 'public' : 'reserved' };
}

/** True when the address lies in the block `prefix/length` (same family). */
export function inBlock(bytes: Uint8Array, block: { bytes: Uint8Array; length: number }): boolean {
  return bytes.length === block.bytes.length && matches(bytes, block.bytes, block.length);
}

/**
 * IPv4 as getaddrinfo's inet_aton and the WHATWG URL parser read it: one to four parts, each
 * decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes. A trailing
 * dot is allowed (`127.0.0.1.`).
 */
function parseIpv4(text: string): Uint8Array | undefined {
  const parts = (text.endsWith('.') ? text.slice(0, -1) : text).split('.');
  if (parts.length === 0 || parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    const value = parseIpv4Part(part);
    if (value === undefined) return undefined;
    numbers.push(value);
  }
  const last = numbers.pop() as number;
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) return undefined;
  const bytes = new Uint8Array(4);
  numbers.forEach((n, i) => (bytes[i] = n));
  for (let i = 3, rest = last; i >= numbers.length; i--, rest = Math.floor(rest / 256)) bytes[i] = rest % 256;
  return bytes;
}

function parseIpv4Part(part: string): number | undefined {
  let value: number;
  if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : parseInt(part.slice(2), 16);
  else if (/^0[0-7]+$/.test(part)) value = parseInt(part.slice(1), 8);
  else if (/^(0|[1-9][0-9]*)$/.test(part)) value = Number(part);
  else return undefined;
  return Number.isSafeInteger(value) && value <= 0xffffffff ? value : undefined;
}

/** RFC 4291 section 2.2: eight groups, `::` once, an IPv4 tail allowed. */
function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined): number[] | undefined => {
    if (half === undefined || half === '') return [];
    const out: number[] = [];
    const pieces = half.split(':');
    for (const [i, piece] of pieces.entries()) {
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = strictIpv4(piece);
        if (v4 === undefined) return undefined;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else if (/^[0-9a-f]{1,4}$/i.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 1 ? 0 : missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return bytes;
}

/** Inside IPv6 only the dotted quad is valid. */
function strictIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

function formatIpv4(bytes: Uint8Array): string {
  return [...bytes].join('.');
}

function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  // RFC 5952: the longest run of two or more zero groups becomes `::`.
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start === -1) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

interface Block {
  readonly prefix: Uint8Array;
  readonly length: number;
  readonly category: Exclude<AddressCategory, 'public'>;
}

function block(cidr: string, category: Block['category']): Block {
  const [address, length] = cidr.split('/') as [string, string];
  const parsed = parseAddress(address);
  if (parsed === undefined) throw new Error(`bad built-in block ${cidr}`);
  return { prefix: parsed.bytes, length: Number(length), category };
}

/** First match wins: narrower blocks come before the wider ones that contain them. */
const IPV4_TABLE: readonly Block[] = [
  block('0.0.0.0/32', 'unspecified'),
  block('0.0.0.0/8', 'this-network'),
  block('10.0.0.0/8', 'private'),
  block('100.64.0.0/10', 'cgnat'),
  block('127.0.0.0/8', 'loopback'),
  block('169.254.0.0/16', 'link-local'),
  block('172.16.0.0/12', 'private'),
  block('192.0.0.0/24', 'reserved'), // IETF protocol assignments
  block('192.0.2.0/24', 'reserved'), // TEST-NET-1
  block('192.88.99.0/24', 'reserved'), // the retired 6to4 relay anycast
  block('192.168.0.0/16', 'private'),
  block('198.18.0.0/15', 'reserved'), // benchmarking
  block('198.51.100.0/24', 'reserved'), // TEST-NET-2
  block('203.0.113.0/24', 'reserved'), // TEST-NET-3
  block('224.0.0.0/4', 'multicast'),
  block('255.255.255.255/32', 'broadcast'),
  block('240.0.0.0/4', 'reserved'),
];

const IPV6_TABLE: readonly Block[] = [
  block('::/128', 'unspecified'),
  block('::1/128', 'loopback'),
  block('64:ff9b:1::/48', 'reserved'), // local-use NAT64 (RFC 8215): a private translator
  block('100::/64', 'reserved'), // discard-only
  block('2001::/23', 'reserved'), // protocol assignments, Teredo (which hides an IPv4 address) among them
  block('2001:db8::/32', 'reserved'), // documentation
  block('3fff::/20', 'reserved'), // documentation (RFC 9637)
  block('5f00::/16', 'reserved'), // SRv6 SIDs
  block('fc00::/7', 'unique-local'),
  block('fe80::/10', 'link-local'),
  block('fec0::/10', 'reserved'), // site-local, deprecated
  block('ff00::/8', 'multicast'),
];

const GLOBAL_UNICAST = parseIpv6('2000::') as Uint8Array;

interface EmbeddingForm {
  readonly via: Embedding;
  readonly prefix: Uint8Array;
  readonly length: number;
  /** Where the IPv4 address sits. */
  readonly offset: number;
  /** The category when the embedded address is public: mapped forms are refused in any case. */
  readonly refusedAnyway: AddressCategory;
}

/**
 * IPv4 in IPv6 clothing. A mapped or compatible address reaches the IPv4 host itself on a
 * dual-stack socket, and no public DNS name needs one: refused always. NAT64 (RFC 6052) and
 * 6to4 (RFC 3056) are real ways to reach public IPv4 hosts, so they are judged by what they embed.
 */
const EMBEDDINGS: readonly EmbeddingForm[] = [
  { via: 'ipv4-mapped', prefix: parseIpv6('::ffff:0:0') as Uint8Array, length: 96, offset: 12, refusedAnyway: 'ipv4-mapped' },
  { via: 'nat64', prefix: parseIpv6('64:ff9b::') as Uint8Array, length: 96, offset: 12, refusedAnyway: 'public' },
  { via: '6to4', prefix: parseIpv6('2002::') as Uint8Array, length: 16, offset: 2, refusedAnyway: 'public' },
  // ::a.b.c.d (RFC 4291 section 2.5.5.1, deprecated); :: and ::1 are in the table before it.
  { via: 'ipv4-compatible', prefix: new Uint8Array(16), length: 96, offset: 12, refusedAnyway: 'reserved' },
];

function lookupTable(table: readonly Block[], bytes: Uint8Array): Block['category'] | undefined {
  return table.find((entry) => matches(bytes, entry.prefix, entry.length))?.category;
}

function matches(bytes: Uint8Array, prefix: Uint8Array, length: number): boolean {
  if (bytes.length !== prefix.length) return false;
  let bits = length;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] as number) & mask) !== ((prefix[i] as number) & mask)) return false;
  }
  return true;
}
