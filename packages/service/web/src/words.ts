/**
 * Error codes in words, for an operator who does not know popwire's catalogue. The service's
 * own message follows, as the detail.
 */
const CODES: Record<string, string> = {
  POP3_CONNECT_FAILED: 'The mail server could not be reached: no connection to its host and port.',
  POP3_ADDRESS_REFUSED: "The service's network policy refuses this host's address (a private or loopback address not in network.allow).",
  POP3_TLS_FAILED: 'The secure (TLS) connection failed: the certificate did not verify, or the server does not speak TLS on this port.',
  POP3_TLS_UNAVAILABLE: 'The server does not offer STARTTLS, so the password was not sent.',
  POP3_PLAINTEXT_REFUSED: 'The password would have been sent without encryption, which this account does not allow.',
  POP3_AUTH_FAILED: 'The server rejected the user name or password. Change the credentials before syncing again.',
  POP3_AUTH_TOKEN_FAILED: 'The server rejected the OAuth token.',
  POP3_AUTH_MECHANISM_UNAVAILABLE: 'The server does not offer the chosen login method.',
  POP3_TIMEOUT: 'The server stopped answering in time.',
  POP3_CONNECTION_CLOSED: 'The server closed the connection.',
  POP3_BAD_REPLY: 'The server answered something that is not POP3.',
  POP3_ERR_REPLY: 'The server refused a command.',
  SYNC_LOCKED: 'Another sync of this account was running.',
  SYNC_INTERRUPTED: 'The process running the sync stopped; the sync was taken up again.',
  SYNC_NO_IDENTITY: 'The server gives messages no stable identity, so they cannot be told apart safely.',
  SYNC_MESSAGE_TOO_LARGE: 'A message was larger than the service accepts.',
};

export function inWords(code: string | null | undefined, message: string | null | undefined): string {
  const words = code === null || code === undefined ? undefined : CODES[code];
  if (words === undefined) return message ?? code ?? 'Unknown error.';
  return message === null || message === undefined ? words : `${words} (${message})`;
}

export function when(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function duration(from: string, to: string | null): string {
  if (to === null) return 'running';
  const ms = Date.parse(to) - Date.parse(from);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function size(octets: number): string {
  if (octets < 1024) return `${octets} B`;
  if (octets < 1024 * 1024) return `${(octets / 1024).toFixed(1)} KiB`;
  return `${(octets / 1024 / 1024).toFixed(1)} MiB`;
}
