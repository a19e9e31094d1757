import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

/** What a part says about itself, wherever its bytes are kept. */
export interface AttachmentInfo {
  /** Decoded (RFC 2231 and RFC 2047); null when the part names none. */
  readonly filename: string | null;
  /** Lower case, without parameters: `application/pdf`, `message/rfc822`. */
  readonly contentType: string;
  /** `attachment`, `inline` or another token as sent; null without Content-Disposition. */
  readonly disposition: string | null;
  /** Without angle brackets, as `cid:` URLs in the HTML cite it (RFC 2392). */
  readonly contentId: string | null;
  /** The HTML shows it (a multipart/related part with a Content-ID): an inline image. */
  readonly related: boolean;
  readonly description: string | null;
}

/**
 * A part of the message that is not the text: a file, an inline image, a calendar invitation,
 * a nested message (message/rfc822: its bytes, to give to `parseMessage` again).
 */
export interface ParsedAttachment extends AttachmentInfo {
  /** Decoded octets. */
  readonly size: number;
  /** The decoded bytes, or undefined when the part was spooled to `path` (messages above the in-memory cap). */
  readonly content: Buffer | undefined;
  /** The temporary file holding the decoded bytes of a spooled part; removed by `ParsedMessage.dispose()`. */
  readonly path: string | undefined;
  /** The decoded bytes as a stream, wherever they are. */
  stream(): Readable;
}

export function inMemoryAttachment(info: AttachmentInfo, content: Buffer): ParsedAttachment {
  return { ...info, size: content.length, content, path: undefined, stream: () => Readable.from([content]) };
}

export function spooledAttachment(info: AttachmentInfo, path: string, size: number): ParsedAttachment {
  return { ...info, size, content: undefined, path, stream: () => createReadStream(path) };
}

/** `<part1@example.com>` -> `part1@example.com`. */
export function bareContentId(value: string | undefined | null): string | null {
  if (value === undefined || value === null) return null;
  const id = value.trim().replace(/^<(.*)>$/, '$1').trim();
  return id === '' ? null : id;
}
