import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { REDACTED_PATHS } from '../logger.js';

/**
 * The logger Fastify gets: the service's, with request serializers that keep only the method,
 * the path with its query (cursors, dates, never a secret) and the peer. Fastify's own `req`
 * serializer already leaves headers out, but a logger given to us may have pino's standard one
 * (which logs every header, the Authorization header included), and the logger's serializers
 * win over Fastify's: so ours are set on a child, where they win over both. Bodies are never
 * logged: Fastify does not, and no hook here does.
 */
export function requestLogger(logger: Logger): FastifyBaseLogger {
  return logger.child(
    {},
    {
      serializers: {
        req: (request: FastifyRequest) => ({ method: request.method, url: request.url, remoteAddress: request.ip }),
        res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
      },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
  );
}
