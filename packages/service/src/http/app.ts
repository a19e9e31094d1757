import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AccountService } from '../accounts/service.js';
import type { SyncScheduler } from '../jobs/scheduler.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { TokenStore } from '../store/tokens.js';
import { requireToken } from './auth.js';
import { registerDocs } from './docs.js';
import { installErrorHandlers } from './errors.js';
import { ErrorBody } from './schemas/common.js';
import { requestLogger } from './logging.js';
import { validatorCompiler } from './validation.js';
import { accountRoutes } from './routes/accounts.js';
import { connectionTestRoutes } from './routes/connection-test.js';
import { messageRoutes } from './routes/messages.js';
import { healthRoutes, metricsRoutes } from './routes/service.js';
import { syncRoutes } from './routes/sync.js';

export interface AppDeps {
  readonly store: Store;
  readonly accounts: AccountService;
  readonly scheduler: SyncScheduler;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly tokens: TokenStore;
}

/**
 * The HTTP API: /v1 (JSON, bearer token), /metrics (bearer token), /health, /openapi.json and
 * /docs (public). Not listening yet: the caller calls listen() (or inject() in a test) and
 * close().
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: requestLogger(deps.logger),
    // A body is an account at most (credentials included): 64 KiB is generous and bounds what a client can make us parse.
    bodyLimit: 64 * 1024,
    // request.ip (logged) is the peer's address; an X-Forwarded-For header, which anyone can send, is not believed.
    trustProxy: false,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies checked as sent, params and query strings converted from text strictly: validation.ts.
  app.setValidatorCompiler(validatorCompiler);
  // JSON only: without this, Fastify's text/plain parser hands a string to the body schema.
  app.removeContentTypeParser('text/plain');
  app.addSchema(ErrorBody);
  installErrorHandlers(app);
  await registerDocs(app);

  await app.register(healthRoutes, { deps });
  await app.register(async (secured) => {
    secured.addHook('onRequest', requireToken(deps.tokens));
    await secured.register(metricsRoutes, { deps });
    for (const routes of [accountRoutes, connectionTestRoutes, syncRoutes, messageRoutes]) {
      await secured.register(routes, { deps, prefix: '/v1' });
    }
  });
  return app;
}
