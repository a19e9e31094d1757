import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Readable } from 'node:stream';
import { Type } from 'typebox';
import { parseMessage } from 'popwire';
import type { RouteDeps } from '../app.js';
import { contentDisposition, safeContentType } from '../content-disposition.js';
import { messageUpdatedEvent } from '../../delivery/events.js';
import type { MessageListOptions, MessageStore } from '../../store/messages.js';
import { parseSearch, SearchSyntaxError } from '../../store/search-query.js';
import { decodeCursor, decodeSearchCursor, encodeCursor, encodeSearchCursor, parseTime } from '../cursor.js';
import { ApiError } from '../errors.js';
import { parsedView, summaryView } from '../message-view.js';
import { ParseSlots } from '../parse-slots.js';
import { bytes, ERRORS, IdParams } from '../schemas/common.js';
import { AllMessagesQuery, AttachmentParams, DeleteMessageQuery, MessageListQuery, MessagePage, MessageStatePatch, MessageSummary, ParsedMessage } from '../schemas/messages.js';

/** What a list or a search is asked for, in the query string (schemas/messages.ts). */
interface ListQuery {
  readonly limit?: number | undefined;
  readonly cursor?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly from?: string | undefined;
  readonly q?: string | undefined;
  readonly seen?: boolean | undefined;
  readonly flagged?: boolean | undefined;
  readonly deleted?: 'exclude' | 'include' | 'only' | undefined;
}

/**
 * A page of the list (newest first) or, with `q`, of a search (best first). Both take the same
 * filters; each has its own cursor, and one is refused where the other is expected.
 */
async function messagePage(messages: MessageStore, query: ListQuery, accountId: number | undefined) {
  const options: MessageListOptions = {
    accountId,
    limit: query.limit ?? 50,
    since: parseTime(query.since, 'querystring.since'),
    until: parseTime(query.until, 'querystring.until'),
    from: query.from,
    seen: query.seen,
    flagged: query.flagged,
    deleted: query.deleted,
  };
  if (query.q === undefined) {
    const page = await messages.list({ ...options, after: query.cursor === undefined ? null : decodeCursor(query.cursor) });
    return { messages: page.messages.map(summaryView), next: page.next === null ? null : encodeCursor(page.next) };
  }
  let search;
  try {
    search = parseSearch(query.q);
  } catch (error) {
    if (error instanceof SearchSyntaxError) throw new ApiError(400, 'INVALID_SEARCH', `querystring.q: ${error.message}`, 'querystring.q');
    throw error;
  }
  const page = await messages.search(search, { ...options, after: query.cursor === undefined ? null : decodeSearchCursor(query.cursor) });
  return { messages: page.messages.map(summaryView), next: page.next === null ? null : encodeSearchCursor(page.next) };
}

/**
 * Stored messages: lists and searches (newest or best first, by cursor), one parsed, its raw
 * bytes, one attachment's decoded bytes; its seen and flagged state, and its soft delete. An
 * account deleted with its messages kept is hidden from the account routes, but its messages
 * stay listed here.
 */
export const messageRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps }> = async (app, { deps }) => {
  const tags = ['messages'];
  // Parses of this app, bounded (parse-slots.ts): GET /messages/{id} and its attachments.
  const parses = new ParseSlots();
  const config = { scope: 'read' } as const;
  const write = { scope: 'write' } as const;

  app.get(
    '/messages',
    {
      config,
      schema: {
        tags,
        summary: 'Messages of every account the token may reach: newest first, or a search',
        description:
          'Without q, newest first (messages without a date last). With q, a full-text search, best first. Soft-deleted messages are left out unless `deleted` asks for them.',
        querystring: AllMessagesQuery,
        response: { 200: MessagePage, ...ERRORS },
      },
    },
    async (request) => messagePage(request.scoped.store.messages, request.query, request.query.accountId),
  );

  app.patch(
    '/messages/:id',
    {
      config: write,
      schema: {
        tags,
        summary: "Changes a message's seen and flagged state",
        description: 'A change sends a `message.updated` webhook event (written with the change, in one transaction); setting what is already set changes nothing and sends none.',
        params: IdParams,
        body: MessageStatePatch,
        response: { 200: MessageSummary, ...ERRORS },
      },
    },
    async (request) => {
      const { store } = request.scoped;
      const sink = deps.webhooks;
      const row = await store.messages.updateState(
        request.params.id,
        request.body,
        sink === undefined ? undefined : (account, before, after) => sink.rowsFor(account, [messageUpdatedEvent(account, before, after, Date.now())]),
      );
      sink?.wake();
      return summaryView(row);
    },
  );

  app.delete(
    '/messages/:id',
    {
      config: write,
      schema: {
        tags,
        summary: 'Deletes a stored message (never on the server)',
        description:
          'Hides the message: lists leave it out (unless `deleted` asks for it), GET still reads it, and it is purged `messages.purgeAfterDays` days later. `purge=true` removes it now. Either way its UID stays known, so a sync does not fetch it again, and nothing is deleted on the POP3 server.',
        params: IdParams,
        querystring: DeleteMessageQuery,
        response: { 204: Type.Null({ description: 'deleted' }), ...ERRORS },
      },
    },
    async (request, reply) => {
      const { store } = request.scoped;
      if (request.query.purge === true) await store.messages.purge(request.params.id);
      else await store.messages.softDelete(request.params.id, Date.now());
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/accounts/:id/messages',
    {
      config,
      schema: {
        tags,
        summary: "The account's stored messages, newest first, or a search of them",
        description:
          'Messages without a date come after all dated ones. A date filter leaves them out. With q, a full-text search of this account, best first. Soft-deleted messages are left out unless `deleted` asks for them.',
        params: IdParams,
        querystring: MessageListQuery,
        response: { 200: MessagePage, ...ERRORS },
      },
    },
    async (request) => {
      const { store } = request.scoped;
      await store.accounts.get(request.params.id);
      return messagePage(store.messages, request.query, request.params.id);
    },
  );

  app.get(
    '/messages/:id',
    { config, schema: { tags, summary: 'A message, parsed', params: IdParams, response: { 200: ParsedMessage, ...ERRORS } } },
    async (request) => {
      const { store } = request.scoped;
      const row = await store.messages.get(request.params.id);
      const release = await parses.acquire();
      try {
        await using parsed = await parseMessage(store.messages.raw(row.id));
        return parsedView(row, parsed);
      } finally {
        release();
      }
    },
  );

  app.get(
    '/messages/:id/raw',
    {
      config,
      schema: {
        tags,
        summary: 'A message as it was retrieved',
        description: 'The exact octets RETR gave (dot-unstuffed), streamed from the store.',
        params: IdParams,
        response: { 200: bytes('The message', 'message/rfc822'), ...ERRORS },
      },
    },
    async (request, reply) => {
      const { store } = request.scoped;
      // Looked up first, so that a missing message is a 404 before any header of the 200 is sent.
      const row = await store.messages.get(request.params.id);
      return reply
        .type('message/rfc822')
        .header('content-length', row.size)
        .header('content-disposition', `attachment; filename="message-${row.id}.eml"`)
        .header('x-content-type-options', 'nosniff')
        .send(Readable.from(store.messages.raw(row.id)));
    },
  );

  app.get(
    '/messages/:id/attachments/:n',
    {
      config,
      schema: {
        tags,
        summary: "An attachment's decoded bytes",
        description: 'With the content type the message gave it, always as a download (Content-Disposition: attachment).',
        params: AttachmentParams,
        response: { 200: bytes('The attachment, in its own content type', 'application/octet-stream'), ...ERRORS },
      },
    },
    async (request, reply) => {
      const { store } = request.scoped;
      const row = await store.messages.get(request.params.id);
      const release = await parses.acquire();
      const parsed = await parseMessage(store.messages.raw(row.id)).catch((error: unknown) => {
        release();
        throw error;
      });
      const attachment = parsed.attachments[request.params.n - 1];
      if (attachment === undefined) {
        await parsed.dispose();
        release();
        throw new ApiError(404, 'ATTACHMENT_NOT_FOUND', `message ${row.id} has ${parsed.attachments.length} attachment(s); no number ${request.params.n}`);
      }
      // A large message's parts are temporary files: removed once the response is done with them.
      reply.raw.once('close', () => {
        release();
        void parsed.dispose();
      });
      return (
        reply
          .type(safeContentType(attachment.contentType))
          .header('content-length', attachment.size)
          .header('content-disposition', contentDisposition(attachment.filename, `attachment-${request.params.n}`))
          // Whatever it is (an HTML file, an SVG), it is the sender's: never run as a page of the API's origin.
          .header('x-content-type-options', 'nosniff')
          .header('content-security-policy', "default-src 'none'; sandbox")
          .send(attachment.content ?? attachment.stream())
      );
    },
  );
};
