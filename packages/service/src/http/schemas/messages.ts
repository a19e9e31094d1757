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
    q: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 500,
        description:
          'full-text search over subject, sender, recipients and text body; results best first. Syntax: words (all must match), "a phrase", -excluded, prefix*, and from:, to:, subject:, body: for one field (README, "Search")',
      }),
    ),
    seen: Type.Optional(Type.Boolean({ description: 'only messages marked seen (true) or not (false)' })),
    flagged: Type.Optional(Type.Boolean({ description: 'only messages flagged (true) or not (false)' })),
    deleted: Type.Optional(
      Type.Union([Type.Literal('exclude'), Type.Literal('include'), Type.Literal('only')], {
        description: 'soft-deleted messages: left out (exclude, the default), listed with the others (include), or the only ones listed (only)',
      }),
    ),
  },
  { additionalProperties: false },
);

/** GET /v1/messages: the list's filters, over every account the token may reach, or one. */
export const AllMessagesQuery = Type.Object(
  { ...MessageListQuery.properties, accountId: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'only this account' })) },
  { additionalProperties: false },
);

export const MessageStatePatch = Type.Object(
  {
    seen: Type.Optional(Type.Boolean({ description: 'read' })),
    flagged: Type.Optional(Type.Boolean({ description: 'starred' })),
  },
  { additionalProperties: false, minProperties: 1, description: 'What to change; a field left out stays as it is' },
);

export const DeleteMessageQuery = Type.Object(
  { purge: Type.Optional(Type.Boolean({ description: 'remove the message, its bytes and its index entry now, instead of hiding it until messages.purgeAfterDays' })) },
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
  seen: Type.Boolean(),
  flagged: Type.Boolean(),
  deletedAt: Nullable(Type.String({ format: 'date-time', description: 'soft-deleted at (hidden from lists; purged messages.purgeAfterDays later); null when not deleted' })),
});

export const MessagePage = Type.Object(
  {
    messages: Type.Array(MessageSummary),
    next: Nullable(Type.String({ description: 'pass as `cursor` for the next page, with the same filters; null on the last page' })),
  },
  { description: 'A page of messages: newest first, or best first for a search (q)' },
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
    seen: Type.Boolean(),
    flagged: Type.Boolean(),
    deletedAt: Nullable(Time),
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
