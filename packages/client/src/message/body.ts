import PostalMime, { type Attachment } from 'postal-mime';
import { bareContentId, inMemoryAttachment, type ParsedAttachment } from './attachment.js';

/** What the MIME tree gives: the text for people, and every other part. */
export interface Bodies {
  readonly text: string | null;
  readonly html: string | null;
  readonly attachments: ParsedAttachment[];
  readonly warnings: string[];
}

/**
 * The MIME work, done by postal-mime: transfer encodings, charsets, the choice inside
 * multipart/alternative, inline parts. Every message/rfc822 part becomes an attachment holding
 * the nested message's bytes, so a forwarded message is not mixed into the text of the one that
 * forwards it (and a delivery report's returned message stays evidence, not content).
 *
 * postal-mime refuses a message past its own limits (2 MiB of headers over all parts, 256 levels
 * of nesting): that is content we cannot parse, not an error, so the body then comes back as
 * plain text, decoded as UTF-8, which is what can be recovered.
 */
export async function readBodies(message: Buffer, bodyStart: number): Promise<Bodies> {
  try {
    const email = await PostalMime.parse(message, { forceRfc822Attachments: true, attachmentEncoding: 'arraybuffer' });
    return {
      text: email.text ?? null,
      html: email.html ?? null,
      attachments: email.attachments.map(toAttachment),
      warnings: [],
    };
  } catch (error) {
    return {
      text: message.subarray(bodyStart).toString('utf8'),
      html: null,
      attachments: [],
      warnings: [`The MIME structure could not be parsed (${(error as Error).message}); the body is given as text`],
    };
  }
}

function toAttachment(attachment: Attachment): ParsedAttachment {
  return inMemoryAttachment(
    {
      filename: attachment.filename,
      contentType: attachment.mimeType,
      disposition: attachment.disposition,
      contentId: bareContentId(attachment.contentId),
      related: attachment.related === true,
      description: attachment.description ?? null,
    },
    contentBytes(attachment.content),
  );
}

function contentBytes(content: Attachment['content']): Buffer {
  if (typeof content === 'string') return Buffer.from(content, 'utf8');
  if (content instanceof ArrayBuffer) return Buffer.from(content);
  return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
}
