import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AccountService } from '../accounts/service.js';
import type { WebhookDispatcher } from '../delivery/webhook.js';
import type { SyncScheduler } from '../jobs/scheduler.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { TokenStore } from '../store/tokens.js';
import { authorize } from './access.js';
import { requireToken } from './auth.js';
import { registerDocs } from './docs.js';
import { installErrorHandlers } from './errors.js';
import { installJsonBody } from './json-body.js';
import { AuthFailureLimiter, connectionsCheckingInterval, DEFAULT_HTTP_LIMITS, type HttpLimits } from './limits.js';
import { ErrorBody } from './schemas/common.js';
import { requestLogger } from './logging.js';
import { validatorCompiler } from './validation.js';
import { accountRoutes } from './routes/accounts.js';
import { connectionTestRoutes } from './routes/connection-test.js';
import { messageRoutes } from './routes/messages.js';
import { overviewRoutes } from './routes/overview.js';
import { healthRoutes, metricsRoutes } from './routes/service.js';
import { syncRoutes } from './routes/sync.js';
import { tokenRoutes } from './routes/tokens.js';
import { webhookEventRoutes } from './routes/webhook-events.js';

export interface AppDeps {
  readonly store: Store;
  readonly accounts: AccountService;
  readonly scheduler: SyncScheduler;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly tokens: TokenStore;
  /** Timeouts, connection and authentication-failure bounds (http/limits.ts); defaults if absent. */
  readonly limits?: HttpLimits | undefined;
  /** The webhook outbox, for the events a route makes (message.updated); without it, none are written. */
  readonly webhooks?: Pick<WebhookDispatcher, 'rowsFor' | 'wake'> | undefined;
}

/** What the token-checked routes get: no store, no account service (they read through request.scoped, http/access.ts). */
export type RouteDeps = Omit<AppDeps, 'store' | 'accounts' | 'tokens'>;

/**
 * The HTTP API: /v1 (JSON, bearer token), /metrics (bearer token), /health, /openapi.json and
 * /docs (public). Not listening yet: the caller calls listen() (or inject() in a test) and
 * close().
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const limits = deps.limits ?? DEFAULT_HTTP_LIMITS;
  const app = Fastify({
    loggerInstance: requestLogger(deps.logger),
    // Slow clients (http/limits.ts): headers and whole request within their deadlines, idle keep-alive closed.
    http: { headersTimeout: Math.min(limits.headersTimeout, limits.requestTimeout), requestTimeout: limits.requestTimeout, connectionsCheckingInterval: connectionsCheckingInterval(limits) },
    requestTimeout: limits.requestTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    // A body is an account at most (credentials included): 64 KiB is generous and bounds what a client can make us parse.
    bodyLimit: 64 * 1024,
    // request.ip (logged) is the peer's address; an X-Forwarded-For header, which anyone can send, is not believed.
    trustProxy: false,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.server.maxConnections = limits.maxConnections;

  // Bodies checked as sent, params and query strings converted from text strictly: validation.ts.
  app.setValidatorCompiler(validatorCompiler);
  // JSON only: without this, Fastify's text/plain parser hands a string to the body schema.
  app.removeContentTypeParser('text/plain');
  // An empty JSON body is no body; a route that needs one says it is empty (json-body.ts).
  installJsonBody(app);
  app.addSchema(ErrorBody);
  installErrorHandlers(app);
  await registerDocs(app);
  // The console's page and assets (public; it asks for a token). Loaded here only, so nothing of it reaches the CLI.
  const { registerConsole } = await import('../console/serve-console.js');
  await registerConsole(app);

  await app.register(healthRoutes, { deps });
  const failures = new AuthFailureLimiter(limits);
  await app.register(async (secured) => {
    // Before the token is even looked at: an address that sent too many bad tokens waits.
    secured.addHook('onRequest', async (request, reply) => {
      const wait = failures.blocked(request.ip);
      if (wait === undefined) return;
      request.log.info({ code: 'RATE_LIMITED' }, 'too many failed authentications from this address');
      return reply
        .code(429)
        .header('retry-after', String(wait))
        .send({ error: { code: 'RATE_LIMITED', message: `too many failed authentications from this address; try again in ${wait} s` } });
    });
    secured.addHook('onResponse', async (request, reply) => {
      if (reply.statusCode === 401) failures.failed(request.ip);
    });
    secured.addHook('onRequest', requireToken(deps.tokens));
    // Then the scope each route declares, and the token's view of the data (http/access.ts).
    authorize(secured, { store: deps.store, accounts: deps.accounts });
    // The routes get no store of their own: they read through request.scoped, restricted to the token's accounts.
    const { store: _store, accounts: _accounts, tokens: _tokens, ...routeDeps } = deps;
    await secured.register(metricsRoutes, { deps: routeDeps });
    for (const routes of [accountRoutes, connectionTestRoutes, syncRoutes, messageRoutes, overviewRoutes, webhookEventRoutes]) {
      await secured.register(routes, { deps: routeDeps, prefix: '/v1' });
    }
    await secured.register(tokenRoutes, { deps: routeDeps, tokens: deps.tokens, prefix: '/v1' });
  });
  return app;
}
