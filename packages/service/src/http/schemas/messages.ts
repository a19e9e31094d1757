import { Type } from 'typebox';
import { Limit, Mailbox, Nullable, Time } from './common.js';

/** A mailbox, or an RFC 5322 group (`name` and its `group` of mailboxes, no `address`). */
const Address = Type.Object({ name: Type.String(), address: Type.Optional(Type.String()), group: Type.Optional(Type.Array(Mailbox)) });

export const MessageListQuery = Type.Object(
  {
    limit: Type.Optional(Limit(50)),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'the `next` of the previous page' })),
    since: Type.Optional(Type.String({ maxLength: 40, description: 'dated at or after: ms since the epoch, or an ISO 8601 date or date-time' })),
    until: Type.Optional(Type.String({ maxLength: 40, description: 'dated before: ms since the epoch, or an ISO 8601 date or date-time' })),
    from: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: "the sender's address contains this (any case)" })),
  },
  { additionalProperties: false },
);

export const MessageSummary = Type.Object({
  id: Type.Integer(),
  accountId: Type.Integer(),
  size: Type.Integer({ description: 'octets stored' }),
  date: Nullable(Time),
  from: Nullable(Mailbox),
  to: Type.Array(Mailbox, { description: 'the To mailboxes, groups flattened; names are empty for messages stored by a version before this field existed' }),
  subject: Nullable(Type.String()),
  messageId: Nullable(Type.String()),
  hasAttachments: Type.Boolean(),
  headersOnly: Type.Boolean({ description: 'over the size limit: only the headers were kept' }),
  storedAt: Time,
});

export const MessagePage = Type.Object(
  {
    messages: Type.Array(MessageSummary),
    next: Nullable(Type.String({ description: 'pass as `cursor` for the next page; null on the last page' })),
  },
  { description: 'A page of messages, newest first' },
);

export const Attachment = Type.Object({
  n: Type.Integer({ description: 'its number in GET /v1/messages/{id}/attachments/{n}, from 1' }),
  filename: Nullable(Type.String()),
  contentType: Type.String(),
  size: Type.Integer({ description: 'decoded octets' }),
  disposition: Nullable(Type.String()),
  contentId: Nullable(Type.String()),
  related: Type.Boolean({ description: 'shown by the HTML (an inline image)' }),
  description: Nullable(Type.String()),
});

export const ParsedMessage = Type.Object(
  {
    id: Type.Integer(),
    accountId: Type.Integer(),
    size: Type.Integer(),
    headersOnly: Type.Boolean(),
    storedAt: Time,
    subject: Nullable(Type.String()),
    date: Nullable(Time),
    messageId: Nullable(Type.String()),
    inReplyTo: Nullable(Type.String()),
    references: Type.Array(Type.String()),
    from: Nullable(Mailbox),
    sender: Nullable(Mailbox),
    replyTo: Type.Array(Address),
    to: Type.Array(Address),
    cc: Type.Array(Address),
    bcc: Type.Array(Address),
    headers: Type.Array(Type.Object({ name: Type.String(), value: Type.String() }), { description: 'every header field, in order, decoded' }),
    text: Nullable(Type.String()),
    html: Nullable(Type.String()),
    attachments: Type.Array(Attachment),
    warnings: Type.Array(Type.String(), { description: 'what could not be parsed' }),
  },
  { description: 'The message, parsed' },
);

export const AttachmentParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), n: Type.Integer({ minimum: 1, maximum: 10_000 }) }, { additionalProperties: false });
