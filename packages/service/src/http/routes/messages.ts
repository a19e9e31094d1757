import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Readable } from 'node:stream';
import { parseMessage } from 'popwire';
import type { RouteDeps } from '../app.js';
import { contentDisposition, safeContentType } from '../content-disposition.js';
import { decodeCursor, encodeCursor, parseTime } from '../cursor.js';
import { ApiError } from '../errors.js';
import { parsedView, summaryView } from '../message-view.js';
import { ParseSlots } from '../parse-slots.js';
import { bytes, ERRORS, IdParams } from '../schemas/common.js';
import { AttachmentParams, MessageListQuery, MessagePage, ParsedMessage } from '../schemas/messages.js';

/**
 * Stored messages: a list per account (newest first, by cursor), one parsed, its raw bytes,
 * one attachment's decoded bytes. An account deleted with its messages kept is hidden from
 * the account routes, but its messages stay listed here.
 */
export const messageRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps }> = async (app) => {
  const tags = ['messages'];
  // Parses of this app, bounded (parse-slots.ts): GET /messages/{id} and its attachments.
  const parses = new ParseSlots();
  const config = { scope: 'read' } as const;

  app.get(
    '/accounts/:id/messages',
    {
      config,
      schema: {
        tags,
        summary: "The account's stored messages, newest first",
        description: 'Messages without a date come after all dated ones. A date filter leaves them out.',
        params: IdParams,
        querystring: MessageListQuery,
        response: { 200: MessagePage, ...ERRORS },
      },
    },
    async (request) => {
      const { limit, cursor, since, until, from } = request.query;
      const { store } = request.scoped;
      await store.accounts.get(request.params.id);
      const page = await store.messages.list({
        accountId: request.params.id,
        limit: limit ?? 50,
        after: cursor === undefined ? null : decodeCursor(cursor),
        since: parseTime(since, 'querystring.since'),
        until: parseTime(until, 'querystring.until'),
        from,
      });
      return { messages: page.messages.map(summaryView), next: page.next === null ? null : encodeCursor(page.next) };
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
