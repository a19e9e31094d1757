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
  const raw = line.toString('utf8', offset).trim();
  const match = /^\[([^\]\s]+)\]\s*/.exec(raw);
  if (match === null) return { status, text: raw, code: undefined };
  return { status, text: raw.slice(match[0].length), code: (match[1] as string).toUpperCase() };
}

/** A short, printable excerpt of untrusted bytes for an error message. */
export function preview(bytes: Buffer, max = 80): string {
  const text = bytes.subarray(0, max).toString('latin1').replace(/[^\x20-\x7e]/g, (c) => {
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  return JSON.stringify(bytes.length > max ? `${text}...` : text);
}
