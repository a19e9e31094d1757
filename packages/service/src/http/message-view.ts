import type { Address, ParsedAttachment, ParsedMessage } from 'popwire';
import { isoTime, isoTimeOrNull } from '../iso-time.js';
import { recipientsOf } from '../store/messages.js';
import type { StoredMessage } from '../store/schema.js';

/** A row of the list: what was read from the headers at store time, no parsing now. */
export function summaryView(row: StoredMessage) {
  return {
    id: row.id,
    accountId: row.account_id,
    size: row.size,
    date: isoTimeOrNull(row.date),
    from: row.from_address === null ? null : { name: row.from_name ?? '', address: row.from_address },
    to: recipientsOf(row),
    subject: row.subject,
    messageId: row.message_id_header,
    hasAttachments: row.has_attachments === 1,
    headersOnly: row.headers_only === 1,
    storedAt: isoTime(row.stored_at),
    ...stateView(row),
  };
}

/** seen, flagged and deletedAt: the state kept in the store (POP3 has none). */
export function stateView(row: Pick<StoredMessage, 'seen' | 'flagged' | 'deleted_at'>) {
  return { seen: row.seen === 1, flagged: row.flagged === 1, deletedAt: isoTimeOrNull(row.deleted_at) };
}

/** A parsed message: its envelope, every header, the text, and the list of its attachments (not their bytes). */
export function parsedView(row: StoredMessage, parsed: ParsedMessage) {
  return {
    id: row.id,
    accountId: row.account_id,
    size: row.size,
    headersOnly: row.headers_only === 1,
    storedAt: isoTime(row.stored_at),
    ...stateView(row),
    subject: parsed.subject,
    date: parsed.date === null ? null : isoTime(parsed.date.getTime()),
    messageId: parsed.messageId,
    inReplyTo: parsed.inReplyTo,
    references: [...parsed.references],
    from: parsed.from,
    sender: parsed.sender,
    replyTo: parsed.replyTo.map(addressView),
    to: parsed.to.map(addressView),
    cc: parsed.cc.map(addressView),
    bcc: parsed.bcc.map(addressView),
    headers: parsed.headers.map((h) => ({ name: h.name, value: h.value })),
    text: parsed.text,
    html: parsed.html,
    attachments: parsed.attachments.map(attachmentView),
    warnings: [...parsed.warnings],
  };
}

function addressView(address: Address) {
  return 'group' in address ? { name: address.name, group: address.group.map((m) => ({ name: m.name, address: m.address })) } : { name: address.name, address: address.address };
}

/** `n` counts from 1, in document order: the number GET /v1/messages/{id}/attachments/{n} takes. */
function attachmentView(attachment: ParsedAttachment, index: number) {
  return {
    n: index + 1,
    filename: attachment.filename,
    contentType: attachment.contentType,
    size: attachment.size,
    disposition: attachment.disposition,
    contentId: attachment.contentId,
    related: attachment.related,
    description: attachment.description,
  };
}
