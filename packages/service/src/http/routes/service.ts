import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AppDeps, RouteDeps } from '../app.js';
import { bytes, ERRORS } from '../schemas/common.js';

const HEALTH_TIMEOUT_MS = 5_000;
const Health = Type.Object({ status: Type.Enum(['ok', 'unavailable']) }, { description: 'ok: the service runs and its store answers' });

/**
 * GET /health, public: 200 when the store answers, 503 when not. It says nothing more (no
 * error, no version, no database name): it is for load balancers, and anyone may ask.
 */
export const healthRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  app.get(
    '/health',
    { schema: { tags: ['service'], summary: 'Liveness and storage reachable', security: [], response: { 200: Health, 503: Health } } },
    async (request, reply) => {
      try {
        await withTimeout(deps.store.ping(), HEALTH_TIMEOUT_MS);
        return { status: 'ok' as const };
      } catch (err) {
        request.log.error({ err }, 'health check: the store does not answer');
        return reply.code(503).send({ status: 'unavailable' as const });
      }
    },
  );
};

/** GET /metrics (token required): Prometheus text, the queue depth read at scrape time. */
export const metricsRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps }> = async (app, { deps }) => {
  const { metrics, scheduler } = deps;
  app.get(
    '/metrics',
    { config: { scope: 'metrics' }, schema: { tags: ['service'], summary: 'Prometheus metrics', response: { 200: bytes('Prometheus text exposition format', 'text/plain'), ...ERRORS } } },
    async (_request, reply) => {
      metrics.queueDepth.set(scheduler.queueDepth());
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
};

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
