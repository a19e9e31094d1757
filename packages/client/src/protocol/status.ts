import { Pop3ProtocolError, type ResponseCode } from '../errors.js';

export interface StatusLine {
  /** `+OK`, `-ERR`, or a SASL continuation (`+` alone or `+ ` and a base64 challenge). */
  readonly status: 'ok' | 'err' | 'continue';
  /** Everything after the status indicator and the response code, trimmed. */
  readonly text: string;
  /** RFC 2449 `[CODE]` at the start of the text, if any (`IN-USE`, `SYS/TEMP`, ...). */
  readonly code: ResponseCode | undefined;
}

const PLUS = 0x2b;
const MINUS = 0x2d;
const SPACE = 0x20;
const OPEN_BRACKET = 0x5b;

/**
 * Parses one status line (without its line ending). The indicator is matched on bytes; only the
 * rest is decoded, as UTF-8 (RFC 6856 servers may send it; others send ASCII).
 */
export function parseStatusLine(line: Buffer): StatusLine {
  if (startsWithWord(line, 1, 'OK') && line[0] === PLUS) return withText('ok', line, 3);
  if (startsWithWord(line, 1, 'ERR') && line[0] === MINUS) return withText('err', line, 4);
  if (line[0] === PLUS && (line.length === 1 || line[1] === SPACE)) {
    return { status: 'continue', text: line.toString('latin1', 1).trim(), code: undefined };
  }
  const shown = preview(line);
  throw new Pop3ProtocolError(`The server sent a line that is not a POP3 reply: ${shown}`, {
    code: 'POP3_BAD_REPLY',
    response: shown,
  });
}

/** `word` at `offset`, case-insensitively (some servers send `+ok`), followed by a space or the end. */
function startsWithWord(line: Buffer, offset: number, word: string): boolean {
  const end = offset + word.length;
  if (line.length < end) return false;
  for (let i = 0; i < word.length; i++) {
    if (((line[offset + i] as number) | 0x20) !== (word.charCodeAt(i) | 0x20)) return false;
  }
  return line.length === end || line[end] === SPACE;
}

function withText(status: 'ok' | 'err', line: Buffer, offset: number): StatusLine {
  // Most replies (`+OK 4123 octets` to every RETR) are printable ASCII with no `[CODE]`: for those
  // the same text without the UTF-8 decoder and the expression. Anything else takes the full rules.
  let i = offset;
  while (i < line.length && line[i] === SPACE) i++;
  if (line[i] !== OPEN_BRACKET && isPrintableAscii(line, i)) {
    let end = line.length;
    while (end > i && line[end - 1] === SPACE) end--;
    return { status, text: line.toString('latin1', i, end), code: undefined };
  }
  const raw = line.toString('utf8', offset).trim();
  const match = /^\[([^\]\s]+)\]\s*/.exec(raw);
  if (match === null) return { status, text: raw, code: undefined };
  return { status, text: raw.slice(match[0].length), code: (match[1] as string).toUpperCase() };
}

/** Whether every octet from `start` is printable ASCII or a space (what `trim` and UTF-8 leave as they are). */
function isPrintableAscii(line: Buffer, start: number): boolean {
  for (let i = start; i < line.length; i++) {
    const byte = line[i] as number;
    if (byte < SPACE || byte > 0x7e) return false;
  }
  return true;
}

/** A short, printable excerpt of untrusted bytes for an error message. */
export function preview(bytes: Buffer, max = 80): string {
  const text = bytes.subarray(0, max).toString('latin1').replace(/[^\x20-\x7e]/g, (c) => {
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  return JSON.stringify(bytes.length > max ? `${text}...` : text);
}
