import { Pop3UsageError } from './errors.js';

export interface Pop3Url {
  readonly host: string;
  readonly port: number;
  readonly tls: 'implicit' | 'starttls';
  readonly user?: string;
  /** The mechanism named by `;AUTH=` (RFC 2384); `*` means "any", as if none were named. */
  readonly auth?: string;
}

/**
 * RFC 2384 POP URLs, and `pop3s://` for implicit TLS (RFC 8314):
 * `pop3://[user[;AUTH=mech]@]host[:port]`. The user is percent-decoded (`alice%40example.com`).
 * A password in the URL is refused: URLs end up in shell history, process lists and logs.
 */
export function parsePop3Url(text: string): Pop3Url {
  const match = /^(pop3s?|pop):\/\/(?:([^@/?#]*)@)?(\[[0-9a-fA-F:.]+\]|[^:/?#[\]@]+)(?::(\d{1,5}))?\/?$/i.exec(text);
  if (match === null) throw invalid(text, 'expected pop3://[user[;AUTH=mechanism]@]host[:port] or pop3s://...');
  const [, scheme, userinfo, rawHost, rawPort] = match as unknown as [string, string, string | undefined, string, string | undefined];
  const implicit = scheme.toLowerCase() === 'pop3s';
  const port = rawPort === undefined ? (implicit ? 995 : 110) : Number(rawPort);
  if (port < 1 || port > 65535) throw invalid(text, `port ${port} is out of range`);
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  const url: { -readonly [K in keyof Pop3Url]: Pop3Url[K] } = { host, port, tls: implicit ? 'implicit' : 'starttls' };
  if (userinfo !== undefined) Object.assign(url, parseUserinfo(text, userinfo));
  return url;
}

function parseUserinfo(text: string, userinfo: string): { user?: string; auth?: string } {
  if (userinfo.includes(':')) throw invalid(text, 'a password does not belong in the URL; pass it separately');
  const [rawUser, ...params] = userinfo.split(';');
  const result: { user?: string; auth?: string } = {};
  if (rawUser) result.user = decode(text, rawUser);
  for (const param of params) {
    const auth = /^AUTH=(.+)$/i.exec(param);
    if (auth === null) throw invalid(text, `unknown URL parameter ";${param}"`);
    const mechanism = decode(text, auth[1] as string).toUpperCase();
    if (mechanism !== '*') result.auth = mechanism;
  }
  return result;
}

function decode(text: string, part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalid(text, `bad percent-encoding in "${part}"`);
  }
}

function invalid(text: string, reason: string): Pop3UsageError {
  // A refused URL may hold a password: mask everything between ':' and '@' in the userinfo.
  const shown = text.slice(0, 200).replace(/^([a-z0-9]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
  return new Pop3UsageError(`Invalid POP3 URL ${JSON.stringify(shown)}: ${reason}`, {
    code: 'POP3_INVALID_ARGUMENT',
  });
}

/**
 * A warning for a scheme and port that do not go together: pop3:// (clear text, STLS) to 995,
 * the implicit-TLS port, waits for a greeting that never comes; pop3s:// to 110 fails the TLS
 * handshake. Either can be right on an odd server, so it is a warning, not a refusal. The library
 * never prints: a caller that has somewhere to say it (the CLI's stderr) asks.
 */
export function schemePortWarning(target: { readonly port?: number | undefined; readonly tls?: 'implicit' | 'starttls' | 'none' | undefined }): string | undefined {
  const implicit = (target.tls ?? 'implicit') === 'implicit';
  if (!implicit && target.port === 995) {
    return 'port 995 is the implicit-TLS port, but pop3:// speaks clear text first; did you mean pop3s://HOST:995 (or pop3://HOST:110)?';
  }
  if (implicit && target.port === 110) {
    return 'port 110 is the clear-text POP3 port, but pop3s:// starts with TLS; did you mean pop3://HOST:110 (STLS) (or pop3s://HOST:995)?';
  }
  return undefined;
}
