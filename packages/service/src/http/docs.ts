import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * The OpenAPI document, built by @fastify/swagger from the routes' own schemas (so it cannot
 * drift from what is validated and serialized), served at GET /openapi.json, and Swagger UI at
 * /docs. Neither needs a token: they say what the API accepts, not what it holds.
 * Register before the routes: @fastify/swagger collects them as they are added.
 */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    // Shared schemas (app.addSchema) by their $id: components/schemas/Error, not def-0.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      // 3.1: its schemas are JSON Schema 2020-12, so `type: 'null'` in a nullable field is valid.
      openapi: '3.1.0',
      info: {
        title: 'popwire',
        version: '1',
        description: [
          'Accounts, sync jobs and the stored messages of a popwire service.',
          'Every /v1 route and /metrics need `Authorization: Bearer <token>` (`popwire token create`). Times are milliseconds since the epoch.',
          'A token has scopes (admin, read, write, metrics; each route names the one it needs in its security) and may be restricted to some accounts: any other account, message, run or job is not found (404) to it.',
          'Every error is `{"error": {"code", "message", "field"?}}`. Codes: INVALID_REQUEST (400, with `field`: `body.port`, `params.id`, `querystring.cursor`),',
          'UNAUTHORIZED (401), FORBIDDEN (403: the token lacks the scope the route names in its security), NOT_FOUND, ACCOUNT_NOT_FOUND, MESSAGE_NOT_FOUND, ATTACHMENT_NOT_FOUND, JOB_NOT_FOUND (404), ACCOUNT_EXISTS (409),',
          'PAYLOAD_TOO_LARGE (413), UNSUPPORTED_MEDIA_TYPE (415), INTERNAL (500: details only in the log).',
        ].join('\n'),
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'accounts', description: 'POP3 accounts; credentials are write-only' },
        { name: 'sync', description: 'Sync jobs and past runs' },
        { name: 'messages', description: 'Stored messages' },
        { name: 'service', description: 'Health, metrics, version and running syncs' },
        { name: 'webhooks', description: 'The webhook outbox' },
        { name: 'tokens', description: 'API tokens (admin only)' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
