import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

/**
 * JSON request bodies, and what an empty one means.
 *
 * Clients send `Content-Type: application/json` with no body more often than not (`curl -X POST
 * -H 'content-type: application/json'`, SDKs that set the header on every request), and `echo |
 * curl --data-binary @-` sends a lone newline. Fastify's parser refuses the first and calls the
 * second "not valid JSON", which does not say what is wrong. Here an empty or blank body is no
 * body: a route that takes none (POST .../sync, .../pause) just runs, and one that needs one
 * says the body is empty, naming `body`.
 */
export function installJsonBody(app: FastifyInstance): void {
  // Fastify's own parser for everything else: it refuses __proto__ and constructor.prototype keys.
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined);
    return parse(request, body as string, done);
  });
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body !== undefined) {
      throw new ApiError(400, 'INVALID_REQUEST', 'body: the request body is empty; this request needs a JSON object (see /docs)', 'body');
    }
  });
}
