/**
 * Raw RFC 5322 bytes -> ParsedMessage. Used by the client's fetchMessage; never imported by the
 * protocol layers, which move bytes and know nothing of MIME.
 *
 * Design note: the in-memory cap (`maxInMemoryBytes`, default 16 MiB).
 * postal-mime does the MIME work. It holds the whole message and what it decodes from it at
 * once: measured here, a peak of about 5 times the message for a large base64 attachment and
 * about 19 times for a large text body (300 MB for 16 MiB of text; 432 MB for a 68 MB message).
 * 16 MiB keeps the worst case near 300 MB and covers nearly all mail (most providers refuse
 * messages over 25 to 50 MB, so these are the rare large ones).
 * Above the cap the message is streamed: @zone-eu/mailsplit walks the MIME tree as the bytes
 * arrive, large parts are decoded straight to temporary files (attachments with `path` and
 * `stream()`, `content` undefined), and postal-mime parses a skeleton of the message that keeps
 * the headers, the text parts and the small parts (message/skeleton.ts). Memory then stays
 * bounded by the cap whatever the message's size. `dispose()` (or `await using`) removes the
 * files.
 *
 * Parsing never throws because of what a message contains: a message that is not valid MIME
 * still gives what can be recovered, and `warnings` says what could not be. It throws only when
 * reading the source fails (a dropped connection mid-RETR) or the temp folder cannot be written.
 */
import { tmpdir } from 'node:os';
import { Pop3UsageError } from './errors.js';
import type { ParsedAttachment } from './message/attachment.js';
import { readBodies } from './message/body.js';
import { readEnvelope, type Envelope } from './message/envelope.js';
import { readHeaderBlock, type HeaderBlock, type HeaderField } from './message/headers.js';
import { SpoolFolder } from './message/spool.js';
import { readStreamed } from './message/stream.js';

export type { ParsedAttachment } from './message/attachment.js';
export type { Address, AddressGroup, DateSource, Mailbox } from './message/envelope.js';
export type { HeaderField } from './message/headers.js';

export const DEFAULT_MAX_IN_MEMORY_BYTES = 16 * 1024 * 1024;

export interface ParseOptions {
  /** Messages up to this many octets are parsed in memory; larger ones are streamed (see above). Default 16 MiB. */
  readonly maxInMemoryBytes?: number | undefined;
  /** Where the parts of a streamed message are spooled. Default: the system's temp folder. */
  readonly tmpDir?: string | undefined;
}

/** A message's bytes: a Buffer, or a stream of them (a RETR body). */
export type MessageSource = Uint8Array | AsyncIterable<Uint8Array | string>;

export interface ParsedMessage extends Envelope, AsyncDisposable {
  /** Every field of the header block, in order, duplicates included. */
  readonly headers: readonly HeaderField[];
  /** The text/plain body (the parts of it joined), or null. */
  readonly text: string | null;
  readonly html: string | null;
  /** Every other part, inline images and nested messages included, in document order. */
  readonly attachments: readonly ParsedAttachment[];
  /** Octets parsed. */
  readonly size: number;
  /** Whether the message was above the in-memory cap, so that large parts are in files. */
  readonly streamed: boolean;
  /** What could not be parsed, in words; empty for a well-formed message. */
  readonly warnings: readonly string[];
  /** The decoded value of the first field named `name` (any case), or null. */
  header(name: string): string | null;
  /** Removes the temporary files of a streamed message; nothing to do otherwise. */
  dispose(): Promise<void>;
}

export async function parseMessage(source: MessageSource, options: ParseOptions = {}): Promise<ParsedMessage> {
  const cap = options.maxInMemoryBytes ?? DEFAULT_MAX_IN_MEMORY_BYTES;
  if (!Number.isSafeInteger(cap) || cap <= 0) {
    throw new Pop3UsageError(`maxInMemoryBytes must be a positive integer; got ${String(cap)}`, { code: 'POP3_INVALID_ARGUMENT' });
  }
  const start = await readUpTo(source, cap);
  if (start.rest === undefined) {
    const block = readHeaderBlock(start.prefix);
    const bodies = await readBodies(start.prefix, block.bodyStart);
    return message(fromHead(block), { ...bodies, size: start.prefix.length, streamed: false }, undefined);
  }
  const spool = new SpoolFolder(options.tmpDir ?? tmpdir());
  try {
    const streamed = await readStreamed(prefixed(start.prefix, start.rest), cap, spool);
    return message(fromHead(readHeaderBlock(streamed.head)), { ...streamed, streamed: true }, spool);
  } catch (error) {
    await spool.remove();
    throw error;
  }
}

/** A header block, read: what `parseHeaders` gives. */
export interface ParsedHeaders extends Envelope {
  readonly headers: readonly HeaderField[];
  readonly warnings: readonly string[];
  /** The decoded value of the first field named `name` (any case), or null. */
  header(name: string): string | null;
}

/**
 * The header block only: fields and envelope, without the MIME work on the body. For the
 * output of TOP n 0, and wherever the body is not needed: reading a 4 KB message's headers
 * costs a small fraction of parsing the whole message. Bytes after the header block are
 * ignored; never throws because of what the block contains.
 */
export function parseHeaders(source: Uint8Array): ParsedHeaders {
  const head = fromHead(readHeaderBlock(Buffer.from(source.buffer, source.byteOffset, source.byteLength)));
  // Added to the object just made, not spread into a new one: copying the envelope's fifteen
  // fields twice per message showed in the sync's profile (the summary reads every message's headers).
  return Object.assign(head, { header: (name: string) => headerValue(head.headers, name) });
}

/** The decoded value of the first field named `name` (any case), or null. */
function headerValue(headers: readonly HeaderField[], name: string): string | null {
  const key = name.toLowerCase();
  return headers.find((h) => h.key === key)?.value ?? null;
}

type Head = Envelope & Pick<ParsedMessage, 'headers' | 'warnings'>;
type Body = Pick<ParsedMessage, 'text' | 'html' | 'attachments' | 'size' | 'streamed' | 'warnings'>;

function fromHead(block: HeaderBlock): Head {
  return Object.assign(readEnvelope(block.fields), {
    headers: block.fields.map((f) => f.field),
    warnings: block.skipped > 0 ? [`${block.skipped} line(s) in the header block are not header fields; skipped`] : [],
  });
}

function message(head: Head, body: Body, spool: SpoolFolder | undefined): ParsedMessage {
  const dispose = async () => spool?.remove();
  return {
    ...head,
    text: body.text,
    html: body.html,
    attachments: body.attachments,
    size: body.size,
    streamed: body.streamed,
    warnings: [...head.warnings, ...body.warnings],
    header: (name) => headerValue(head.headers, name),
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

type Start = { prefix: Buffer; rest: undefined } | { prefix: Buffer[]; rest: AsyncIterator<Uint8Array | string> };

/** Reads until the end or past `cap` octets, whichever comes first. */
async function readUpTo(source: MessageSource, cap: number): Promise<Start> {
  if (source instanceof Uint8Array) {
    const bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return bytes.length <= cap ? { prefix: bytes, rest: undefined } : { prefix: [bytes], rest: empty() };
  }
  const iterator = source[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
    const chunk = toBuffer(next.value);
    chunks.push(chunk);
    size += chunk.length;
    if (size > cap) return { prefix: chunks, rest: iterator };
  }
  return { prefix: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size), rest: undefined };
}

async function* prefixed(prefix: Buffer[], rest: AsyncIterator<Uint8Array | string>): AsyncGenerator<Buffer> {
  // Handed over one by one, so the prefix is not held once the splitter has it.
  for (let chunk = prefix.shift(); chunk !== undefined; chunk = prefix.shift()) yield chunk;
  try {
    for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield toBuffer(next.value);
  } finally {
    // Stopped early (the structure was past saving): let the source clean up (a RETR body is drained).
    await rest.return?.();
  }
}

function toBuffer(chunk: Uint8Array | string): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function empty(): AsyncIterator<Uint8Array> {
  return { next: async () => ({ done: true, value: undefined }) };
}
