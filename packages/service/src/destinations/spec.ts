/**
 * Destination specs: how a destination is named on the command line (`--lmtp 127.0.0.1:24`) and in
 * the API's `destinations` list (`"lmtp:127.0.0.1:24"`). One parser for both, so that they accept
 * the same things and reject them with the same words. Helper 14b's API uses parseDestination.
 *
 *   mda:COMMAND ARGS           argv split like a shell would split words ('…', "…", \), but never
 *                              run by one; placeholders %F %T %U %% (see mda.ts)
 *   mda-shell:SCRIPT           run by /bin/sh -c SCRIPT: only when asked for; no placeholders (use
 *                              "$POPWIRE_SENDER"... so that the shell quotes them)
 *   lmtp:HOST[:PORT]           default port 24; HOST may be [IPv6]
 *   lmtp:unix:/PATH            a Unix socket (Dovecot's /var/run/dovecot/lmtp)
 *   smtp:HOST[:PORT]           default port 25, STARTTLS when offered (see smtp.ts for the policy)
 *   smtps:HOST[:PORT]          TLS from the start, default port 465
 *   imap://USER@HOST[:PORT]/FOLDER, imaps://…   STARTTLS / TLS from the start; FOLDER defaults to
 *                              INBOX, percent-decoded ("Archive%2F2026"). No password in the URL.
 *   maildir:DIR, mbox:FILE
 */
import { isIP } from 'node:net';
import { DestinationSpecError, type DestinationKind } from './destination.js';

export type SocketAddress = { readonly host: string; readonly port: number } | { readonly path: string };

export type DestinationSpec =
  | { readonly kind: 'mda'; readonly shell: false; readonly argv: readonly string[] }
  | { readonly kind: 'mda'; readonly shell: true; readonly script: string }
  | { readonly kind: 'lmtp'; readonly address: SocketAddress }
  | { readonly kind: 'smtp'; readonly address: { readonly host: string; readonly port: number }; readonly implicitTls: boolean }
  | {
      readonly kind: 'imap';
      readonly host: string;
      readonly port: number;
      readonly implicitTls: boolean;
      readonly user: string;
      readonly folder: string;
    }
  | { readonly kind: 'maildir'; readonly dir: string }
  | { readonly kind: 'mbox'; readonly file: string };

/** The MDA placeholders: %F sender, %T recipient, %U the POP3 UID, %% a percent sign. */
export const MDA_PLACEHOLDERS: ReadonlySet<string> = new Set(['F', 'T', 'U', '%']);

/** Parses `kind:rest` (or an imap:// / imaps:// URL). */
export function parseDestination(spec: string): DestinationSpec {
  rejectControls(spec, spec);
  if (/^imaps?:\/\//i.test(spec)) return parseImapUrl(spec);
  const colon = spec.indexOf(':');
  if (colon <= 0) throw new DestinationSpecError(`Not a destination: "${spec}" (expected KIND:VALUE, e.g. lmtp:127.0.0.1:24)`);
  const kind = spec.slice(0, colon).toLowerCase();
  const rest = spec.slice(colon + 1);
  if (rest === '') throw new DestinationSpecError(`The destination "${spec}" is missing its value after "${kind}:"`);
  switch (kind) {
    case 'mda':
      return { kind: 'mda', shell: false, argv: parseMdaCommand(rest) };
    case 'mda-shell':
      return { kind: 'mda', shell: true, script: rest };
    case 'lmtp':
      if (rest.startsWith('unix:')) {
        const path = rest.slice('unix:'.length);
        if (!path.startsWith('/')) throw new DestinationSpecError(`An LMTP Unix socket needs an absolute path: "${spec}"`);
        return { kind: 'lmtp', address: { path } };
      }
      return { kind: 'lmtp', address: parseHostPort(rest, 24, spec) };
    case 'smtp':
    case 'smtps':
      return { kind: 'smtp', address: parseHostPort(rest, kind === 'smtps' ? 465 : 25, spec), implicitTls: kind === 'smtps' };
    case 'maildir':
      return { kind: 'maildir', dir: rest };
    case 'mbox':
      return { kind: 'mbox', file: rest };
    default:
      throw new DestinationSpecError(`Unknown destination kind "${kind}" in "${spec}" (mda, mda-shell, lmtp, smtp, smtps, imap://, imaps://, maildir, mbox)`);
  }
}

/** The spec as text: parseDestination(formatDestination(s)) equals s. Holds no secret, since no spec does. */
export function formatDestination(spec: DestinationSpec): string {
  switch (spec.kind) {
    case 'mda':
      return spec.shell ? `mda-shell:${spec.script}` : `mda:${spec.argv.map(quoteWord).join(' ')}`;
    case 'lmtp':
      return `lmtp:${'path' in spec.address ? `unix:${spec.address.path}` : hostPort(spec.address)}`;
    case 'smtp':
      return `${spec.implicitTls ? 'smtps' : 'smtp'}:${hostPort(spec.address)}`;
    case 'imap': {
      const scheme = spec.implicitTls ? 'imaps' : 'imap';
      const port = spec.port === (spec.implicitTls ? 993 : 143) ? '' : `:${spec.port}`;
      const host = isIP(spec.host) === 6 ? `[${spec.host}]` : spec.host;
      return `${scheme}://${encodeURIComponent(spec.user)}@${host}${port}/${encodeURIComponent(spec.folder)}`;
    }
    case 'maildir':
      return `maildir:${spec.dir}`;
    case 'mbox':
      return `mbox:${spec.file}`;
  }
}

export function kindOf(spec: DestinationSpec): DestinationKind {
  return spec.kind;
}

/**
 * Splits a command line into words the way a POSIX shell splits them, and does nothing else: no
 * variables, globs, pipes or redirections (`|`, `>`, `$` are ordinary characters). 'single' quotes
 * keep everything; "double" quotes keep everything but \" and \\; a backslash outside quotes
 * keeps the next character.
 */
export function parseMdaCommand(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new DestinationSpecError(`Unterminated ' quote in the MDA command: ${text}`);
      word += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && (text[j + 1] === '"' || text[j + 1] === '\\')) j++;
        word += text[j];
      }
      if (j >= text.length) throw new DestinationSpecError(`Unterminated " quote in the MDA command: ${text}`);
      i = j;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw new DestinationSpecError(`A trailing backslash in the MDA command: ${text}`);
      word += text[++i];
      inWord = true;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new DestinationSpecError('The MDA command is empty');
  for (const argument of words) checkPlaceholders(argument);
  return words;
}

function checkPlaceholders(argument: string): void {
  for (let i = argument.indexOf('%'); i >= 0; i = argument.indexOf('%', i + 2)) {
    const next = argument[i + 1];
    if (next === undefined || !MDA_PLACEHOLDERS.has(next)) {
      throw new DestinationSpecError(`Unknown placeholder "%${next ?? ''}" in the MDA argument "${argument}" (%F sender, %T recipient, %U UID, %% a percent sign)`);
    }
  }
}

function quoteWord(word: string): string {
  return word !== '' && /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function parseHostPort(text: string, defaultPort: number, spec: string): { host: string; port: number } {
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) throw new DestinationSpecError(`Unclosed [ in "${spec}"`);
    host = text.slice(1, end);
    const after = text.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) throw new DestinationSpecError(`Unexpected "${after}" after the address in "${spec}"`);
    portText = after === '' ? undefined : after.slice(1);
  } else {
    const parts = text.split(':');
    if (parts.length > 2) throw new DestinationSpecError(`Write an IPv6 address in brackets, as [::1]:24: "${spec}"`);
    host = parts[0] as string;
    portText = parts[1];
  }
  if (host === '' || /[\s/@]/.test(host)) throw new DestinationSpecError(`Not a host name: "${host}" in "${spec}"`);
  return { host, port: portText === undefined ? defaultPort : parsePort(portText, spec) };
}

function parsePort(text: string, spec: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new DestinationSpecError(`Not a port number: "${text}" in "${spec}"`);
  return port;
}

function hostPort({ host, port }: { host: string; port: number }): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

function parseImapUrl(spec: string): DestinationSpec {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new DestinationSpecError(`Not an IMAP URL: "${spec}" (expected imaps://USER@HOST/FOLDER)`);
  }
  const implicitTls = url.protocol.toLowerCase() === 'imaps:';
  if (url.password !== '') {
    throw new DestinationSpecError('An IMAP URL must not hold the password (it would show in ps and shell history): use --imap-password-file or --imap-oauth-token-file');
  }
  if (url.username === '') throw new DestinationSpecError(`The IMAP URL names no user: "${spec}" (expected imaps://USER@HOST/FOLDER)`);
  if (url.search !== '' || url.hash !== '') throw new DestinationSpecError(`An IMAP URL takes no ?query or #fragment: "${spec}"`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new DestinationSpecError(`The IMAP URL names no host: "${spec}"`);
  let user: string;
  let folder: string;
  try {
    // ";AUTH=..." (RFC 5092) is accepted and ignored: the mechanism follows from the credentials.
    user = decodeURIComponent(url.username.replace(/;auth=.*$/i, ''));
    folder = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'INBOX';
  } catch {
    throw new DestinationSpecError(`Bad percent-encoding in the IMAP URL "${spec}"`);
  }
  rejectControls(user, spec);
  rejectControls(folder, spec);
  return { kind: 'imap', host, port: url.port === '' ? (implicitTls ? 993 : 143) : Number(url.port), implicitTls, user, folder };
}

/** CR, LF and NUL would end a protocol line early: a command injection in LMTP, SMTP or IMAP. */
function rejectControls(value: string, spec: string): void {
  if (/[\r\n\0]/.test(value)) throw new DestinationSpecError(`A destination must not contain CR, LF or NUL: ${JSON.stringify(spec)}`);
}
