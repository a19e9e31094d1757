import { parseHeaders, parseMessage, type Address, type MessageSource, type ParsedHeaders } from 'popwire';
import type { MessageSummary } from '../store/messages.js';
import { capText, htmlText, singlePartBody, type BodyText } from '../store/search-text.js';

export const EMPTY_SUMMARY: MessageSummary = {
  date: null,
  fromAddress: null,
  fromName: null,
  toAddresses: '',
  to: [],
  subject: null,
  messageId: null,
  hasAttachments: false,
};

/**
 * What the list view shows, read once at store time. Parsing never fails on what a message
 * contains (the parsers recover what they can); if reading it fails anyway, the message is
 * still stored, with an empty summary: its bytes matter, the summary is a convenience.
 *
 * Only a message that can hold attachments goes through the full MIME parse. A single text
 * part (text/plain, text/html, or no Content-Type, which RFC 2045 section 5.2 makes
 * text/plain) that is not itself marked as an attachment has none, and its headers say all the
 * list needs: that skips the MIME parser's per-part work, which costs about 1 ms per small
 * message here (postal-mime joins every part through a Blob) against some 30 us for the
 * header block. Anything multipart goes through the full parse: Apple Mail, for one, puts
 * attachments inside multipart/alternative.
 */
export async function summarize(source: MessageSource): Promise<MessageSummary> {
  try {
    if (source instanceof Uint8Array) {
      const head = parseHeaders(source);
      if (isSingleTextPart(head)) return fromHeaders(head, false, singlePartBody(source, head));
    }
    return await fromParse(source);
  } catch {
    return EMPTY_SUMMARY;
  }
}

/**
 * The full MIME parse, in a function of its own: compiled, `await using` gives the function it
 * is in a disposal stack and an awaited disposal on every call, which showed in the sync's
 * profile (about 7 us per message) while the single-part path above disposes of nothing.
 */
async function fromParse(source: MessageSource): Promise<MessageSummary> {
  await using parsed = await parseMessage(source);
  // Inline images of an HTML body are not what a reader calls attachments.
  // The text body goes to the search index (store/search.ts), capped; the HTML's text when there is no text part.
  const text = parsed.text ?? (parsed.html === null ? null : htmlText(parsed.html));
  return fromHeaders(parsed, parsed.attachments.some((a) => !a.related), text === null ? null : capText(text));
}

function isSingleTextPart(head: ParsedHeaders): boolean {
  const type = (head.header('content-type') ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
  const disposition = head.header('content-disposition')?.split(';')[0]?.trim().toLowerCase();
  return (type === '' || type.startsWith('text/')) && disposition !== 'attachment';
}

/** One object per message, built once: spreading it into another to add the text showed in the sync's profile. */
function fromHeaders(head: Omit<ParsedHeaders, 'header' | 'warnings'>, hasAttachments: boolean, text: BodyText | null): MessageSummary {
  const to = mailboxes(head.to);
  return {
    date: head.date?.getTime() ?? null,
    fromAddress: head.from?.address ?? null,
    fromName: head.from?.name || null,
    toAddresses: to.map((m) => m.address).join(', '),
    to,
    subject: head.subject,
    messageId: head.messageId,
    hasAttachments,
    text,
  };
}

/** The mailboxes of a list, a group's members in its place. */
function mailboxes(addresses: readonly Address[]): Array<{ name: string; address: string }> {
  const out: Array<{ name: string; address: string }> = [];
  for (const a of addresses) {
    if ('group' in a) for (const m of a.group) out.push({ name: m.name, address: m.address });
    else out.push({ name: a.name, address: a.address });
  }
  return out;
}
