/**
 * RFC 2449 CAPA as a typed object. The raw lines are kept, so an extension we do not model is
 * still visible to the caller.
 */
export interface Capabilities {
  /** Each capability line as sent, in order. */
  readonly lines: readonly string[];
  readonly top: boolean;
  readonly uidl: boolean;
  readonly user: boolean;
  readonly pipelining: boolean;
  readonly stls: boolean;
  /** RFC 2449 RESP-CODES: -ERR lines may carry [CODE]s. */
  readonly respCodes: boolean;
  /** RFC 3206 AUTH-RESP-CODE: a failed login says [AUTH] when the credentials are wrong. */
  readonly authRespCode: boolean;
  /** RFC 6856 UTF8. */
  readonly utf8: boolean;
  /** SASL mechanisms, upper case, in the server's order (RFC 5034). */
  readonly sasl: readonly string[];
  /** RFC 2449 LOGIN-DELAY seconds, if the server announces one. */
  readonly loginDelay: number | undefined;
  /** RFC 2449 EXPIRE: days a message is kept after retrieval, or 'never'. */
  readonly expire: number | 'never' | undefined;
  readonly implementation: string | undefined;
  /** Whether the capability named (case-insensitive) is listed. */
  has(name: string): boolean;
  /** The arguments of a capability line, or undefined when it is absent. */
  arguments(name: string): readonly string[] | undefined;
}

/** What a server that does not implement CAPA (it answers -ERR) is known to support: nothing. */
export const NO_CAPABILITIES: Capabilities = parseCapabilities([]);

export function parseCapabilities(lines: readonly string[]): Capabilities {
  const byName = new Map<string, string[]>();
  for (const line of lines) {
    const [name, ...args] = line.trim().split(/[ \t]+/);
    if (name === undefined || name === '') continue;
    byName.set(name.toUpperCase(), args);
  }
  const args = (name: string) => byName.get(name.toUpperCase());
  const loginDelay = args('LOGIN-DELAY')?.[0];
  const expire = args('EXPIRE')?.[0];
  return Object.freeze({
    lines: Object.freeze([...lines]),
    top: byName.has('TOP'),
    uidl: byName.has('UIDL'),
    user: byName.has('USER'),
    pipelining: byName.has('PIPELINING'),
    stls: byName.has('STLS'),
    respCodes: byName.has('RESP-CODES'),
    authRespCode: byName.has('AUTH-RESP-CODE'),
    utf8: byName.has('UTF8'),
    sasl: Object.freeze((args('SASL') ?? []).map((m) => m.toUpperCase())),
    // Up to 15 digits, as for LIST sizes: a longer number is not exact as a JS number (9999999999999999930
    // reads as 1e19), so it is ignored like any other malformed argument.
    loginDelay: loginDelay !== undefined && /^\d{1,15}$/.test(loginDelay) ? Number(loginDelay) : undefined,
    expire: expire === undefined ? undefined : /^never$/i.test(expire) ? 'never' : /^\d{1,15}$/.test(expire) ? Number(expire) : undefined,
    implementation: args('IMPLEMENTATION')?.join(' '),
    has: (name: string) => byName.has(name.toUpperCase()),
    arguments: args,
  });
}
