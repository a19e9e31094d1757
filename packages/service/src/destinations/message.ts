/**
 * What destinations need from a message's header, read from the bytes without a MIME parser: the
 * header block is ASCII by RFC 5322, so only it is decoded (latin1, one byte per char), never the body.
 */

/** Bound on the header block searched: a message whose header is longer keeps its defaults. */
const MAX_HEADER_BYTES = 256 * 1024;

/** The header block, up to the first empty line (CRLF or a sloppy LF). */
function headerBlock(message: Buffer): string {
  const head = message.subarray(0, MAX_HEADER_BYTES).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  return end < 0 ? head : head.slice(0, end);
}

/** The unfolded value of the first header field `name`, if any. */
export function headerValue(message: Buffer, name: string): string | undefined {
  const pattern = new RegExp(`^${name}[ \\t]*:(.*(?:\\r?\\n[ \\t].*)*)`, 'im');
  const match = pattern.exec(headerBlock(message));
  return match === null ? undefined : (match[1] as string).replace(/\r?\n/g, '').trim();
}

/**
 * The envelope sender: the address in Return-Path (which the last MTA wrote from its MAIL FROM),
 * else '' (the null sender). Anything that is not one plain address (several, a comment, a space,
* a character that would break an SMTP command, a leading '-') also gives '': a wrong sender would only
 * mis-route bounces, but a broken one could get the message refused.
 */
export function envelopeSender(message: Buffer): string {
  const value = headerValue(message, 'Return-Path');
  if (value === undefined) return '';
  const match = /^<([^<>\s]*)>$/.exec(value) ?? /^([^<>\s]+)$/.exec(value);
  const address = match?.[1] ?? '';
  // A leading '-' would read as an option to an MDA given %F as an argument of its own.
  return /^[\x21-\x7e]*$/.test(address) && !address.startsWith('-') && (address === '' || address.includes('@')) ? address : '';
}

/** The Date header as a Date, if it parses (the IMAP internal date). */
export function messageDate(message: Buffer): Date | undefined {
  const value = headerValue(message, 'Date');
  if (value === undefined) return undefined;
  // Date.parse reads RFC 5322 dates; a trailing comment "(UTC)" it may not.
  const time = Date.parse(value.replace(/\s*\([^)]*\)\s*$/, ''));
  return Number.isNaN(time) ? undefined : new Date(time);
}

/**
 * The message with `X-Popwire-UID: UID` as its first line, so that a destination (a Sieve script,
 * a procmail recipe, formail -D) can drop a duplicate after a crash. A UIDL is 1 to 70 printable
 * ASCII characters (RFC 1939, section 7), safe in a header; anything else is not added.
 */
export function withUidHeader(message: Buffer, uid: string | undefined): Buffer {
  if (uid === undefined || !/^[\x21-\x7e]{1,70}$/.test(uid)) return message;
  // The message's own line ending, so that an LF-only message stays LF-only.
  const firstLineEnd = message.indexOf(0x0a);
  const eol = firstLineEnd > 0 && message[firstLineEnd - 1] === 0x0d ? '\r\n' : firstLineEnd < 0 ? '\r\n' : '\n';
  return Buffer.concat([Buffer.from(`X-Popwire-UID: ${uid}${eol}`, 'latin1'), message]);
}

/** CRLF to LF, for a Unix MDA (procmail, maildrop and dovecot-lda expect Unix line endings). */
export function toLf(message: Buffer): Buffer {
  let crlf = message.indexOf('\r\n');
  if (crlf < 0) return message;
  const out = Buffer.allocUnsafe(message.length);
  let written = 0;
  let from = 0;
  while (crlf >= 0) {
    written += message.copy(out, written, from, crlf);
    from = crlf + 1;
    crlf = message.indexOf('\r\n', from);
  }
  written += message.copy(out, written, from);
  return out.subarray(0, written);
}
