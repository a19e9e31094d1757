/**
 * Test messages for the POP3 client: byte-exact small fixtures from packages/client/test/fixtures,
 * and large or numerous messages generated in memory (deterministic, so failures reproduce).
 *
 * The small fixtures, each a hard case for a POP3 client:
 *   plain.eml                            an ordinary short message
 *   dot-lines.eml                        body lines ".", "..", "...", ". ", ".\tx", a lone "." first
 *                                        and last, so the wire ends in "\r\n..\r\n.\r\n"
 *   eight-bit.eml                        ISO-8859-1 and UTF-8 text, invalid UTF-8, raw 8-bit Subject,
 *                                        control bytes, every byte 0x80-0xFF (no NUL)
 *   long-lines.eml                       lines of 998, 999, 5000 (starting with ".") and 100000 octets
 *   bare-lf.eml                          bare LF endings in the body (also "." + LF), a bare CR, CR CR LF
 *   empty-body.eml                       headers and the blank line, nothing after
 *   headers-only.eml                     headers, no blank line
 *   headers-only-no-final-newline.eml    the same, last header without CRLF
 *   no-final-newline.eml                 a body whose last line has no CRLF
 * Dovecot serves some of them changed: compare RETR with expectedRetrBytes() from ./dovecot.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface Fixture { name: string; bytes: Buffer }

const FIXTURE_DIR = new URL('../packages/client/test/fixtures/', import.meta.url);

/** The .eml files of packages/client/test/fixtures, sorted by name. */
export function smallFixtures(): Fixture[] {
  return readdirSync(FIXTURE_DIR)
    .filter((name) => name.endsWith('.eml'))
    .sort()
    .map((name) => ({ name, bytes: readFileSync(new URL(name, FIXTURE_DIR)) }));
}

/**
 * A multipart message of at least `sizeBytes`: an 8-bit text part of about half the size, full of
 * dot-stuffing cases and lines over 998 octets, then a base64 attachment that fills up the rest.
 */
export function largeFixture(sizeBytes = 20 * 1024 * 1024): Fixture {
  const boundary = 'popwire-large-boundary';
  const head = crlfLines([
    ...messageHeaders({ id: `large-${sizeBytes}`, subject: `Large message of at least ${sizeBytes} octets` }),
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    'This is a multi-part message in MIME format.',
    `--${boundary}`,
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: 8bit',
    '',
  ]);
  const text = largeTextPart(Math.floor(sizeBytes / 2));
  const attachmentHead = crlfLines([
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="large.bin"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="large.bin"',
    '',
  ]);
  const tail = crlfLines([`--${boundary}--`]);
  const fixed = head.length + text.length + attachmentHead.length + tail.length;
  const attachment = base64Lines(Math.max(0, sizeBytes - fixed));
  const bytes = Buffer.concat([head, text, attachmentHead, attachment, tail]);
  return { name: `large-${sizeBytes}.eml`, bytes };
}

/** `count` distinct messages of about `approxSize` octets each, with a unique Message-ID and Subject. */
export function bulkMessages(count: number, approxSize: number): Buffer[] {
  return Array.from({ length: count }, (_, index) => bulkMessage(index + 1, count, approxSize));
}

function bulkMessage(number: number, count: number, approxSize: number): Buffer {
  const lines = [
    ...messageHeaders({ id: `bulk-${number}-of-${count}`, subject: `Bulk message ${number} of ${count}` }),
    'Content-Type: text/plain; charset=us-ascii',
    '',
    // One line per message that the server must dot-stuff, so that bulk runs exercise it too.
    `.Message ${number} starts with a dot line.`,
  ];
  let size = lines.reduce((sum, line) => sum + line.length + 2, 0);
  for (let index = 1; size < approxSize; index++) {
    const line = `Message ${number} line ${index}: the quick brown fox jumps over the lazy dog.`;
    lines.push(line);
    size += line.length + 2;
  }
  return crlfLines(lines);
}

function largeTextPart(targetBytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let index = 1; size < targetBytes; index++) {
    const line = largeTextLine(index);
    lines.push(line);
    size += line.length + 2;
  }
  return crlfLines(lines);
}

/** Line `index` of the large text part; strings are latin1, so \xNN stands for one 8-bit octet. */
function largeTextLine(index: number): string {
  if (index % 101 === 0) return '.';
  if (index % 997 === 0) return `line ${index} is longer than 998 octets: ${'0123456789'.repeat(150 + (index % 50))}`;
  switch (index % 8) {
    case 0: return `.line ${index} starts with a dot`;
    case 3: return `..line ${index} starts with two dots`;
    case 5: return `line ${index} has 8-bit octets: caf\xe9 \xfcber caf\xc3\xa9 \xff\x80`;
    default: return `line ${index}: the quick brown fox jumps over the lazy dog`;
  }
}

/** Base64 of deterministic pseudo-random bytes, in 76-character lines, at least `minBytes` long. */
function base64Lines(minBytes: number): Buffer {
  const lineCount = Math.ceil(minBytes / 78); // 76 characters + CRLF, encoding 57 bytes
  const encoded = pseudoRandomBytes(lineCount * 57).toString('base64');
  const lines: string[] = [];
  for (let offset = 0; offset < encoded.length; offset += 76) lines.push(encoded.slice(offset, offset + 76));
  return crlfLines(lines);
}

function pseudoRandomBytes(length: number): Buffer {
  // xorshift32 with a fixed seed: reproducible, and far faster than hashing for megabytes.
  const words = new Uint32Array(Math.ceil(length / 4));
  let state = 0x9e3779b9;
  for (let index = 0; index < words.length; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    words[index] = state >>> 0;
  }
  return Buffer.from(words.buffer, 0, length);
}

function messageHeaders({ id, subject }: { id: string; subject: string }): string[] {
  return [
    'From: Alice Example <alice@example.test>',
    'To: Bob Example <bob@example.test>',
    `Subject: ${subject}`,
    'Date: Tue, 25 Nov 2025 10:00:00 +0000',
    `Message-ID: <${id}@popwire.test>`,
    'MIME-Version: 1.0',
  ];
}

function crlfLines(lines: string[]): Buffer {
  return lines.length === 0 ? Buffer.alloc(0) : Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');
}
