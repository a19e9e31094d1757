import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { AccountService } from '../accounts/service.js';
import type { SyncJobView, SyncScheduler } from '../jobs/scheduler.js';
import { JobNotFoundError } from '../jobs/scheduler.js';
import { StoreError } from '../store/errors.js';
import type { Store } from '../store/store.js';
import type { Scope, TokenGrant } from '../store/tokens.js';
import { ApiError } from './errors.js';

/**
 * Authorization, in one place. Two questions, each answered once for every route:
 *
 * - May this token call this route? Each route declares the scope it needs in its options
 *   (`config: { scope: 'read' }`); a route under the token check that declares none is refused
 *   when it is registered, so a new route cannot be open by omission. `admin` holds every scope.
 *   A token without the scope gets 403 FORBIDDEN naming it, before its body is read.
 * - Which accounts may it reach? The routes get no store and no account service of their own
 *   (RouteDeps has none): they read through `request.scoped`, a view of the store restricted to
 *   the token's accounts (store/account-filter.ts), in which another tenant's account, message,
 *   run or job is simply not there: 404, never 403, so its existence is not confirmed.
 */
declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a token needs to call the route (http/access.ts). */
    scope?: Scope;
  }
  interface FastifyRequest {
    /** Set by the token check: what the request's token grants. */
    grant: TokenGrant | null;
    /** Set by the scope check: the data the request may reach. */
    scoped: RequestScope;
  }
}

/** What a route may read and change: everything through the token's account restriction. */
export interface RequestScope {
  readonly store: Store;
  readonly accounts: AccountService;
}

/** What each scope is for, as the OpenAPI document and the README say it. */
export const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  admin: 'everything',
  read: 'read accounts, runs, jobs and messages',
  write: 'create, change, delete, test and sync accounts',
  metrics: 'only GET /metrics',
};

/**
 * Installs the scope check on an encapsulated context (after the token check): refuses to
 * register a route that declares no scope, writes each route's scope into its OpenAPI security
 * requirement (`bearer: [scope]`), and gives each request its restricted view of the data.
 */
export function authorize(app: FastifyInstance, data: { store: Store; accounts: AccountService }): void {
  app.decorateRequest('grant', null);
  app.decorateRequest('scoped', null as unknown as RequestScope);
  app.addHook('onRoute', (route) => {
    const scope = route.config?.scope;
    if (scope === undefined) throw new Error(`route ${String(route.method)} ${route.url} declares no scope (config.scope): every route behind the token check must`);
    // Read by @fastify/swagger when the document is built, after every route is in.
    route.schema = { ...route.schema, security: [{ bearer: [scope] }] } as typeof route.schema;
  });
  app.addHook('onRequest', requireScope(data));
}

function requireScope(data: { store: Store; accounts: AccountService }): onRequestHookHandler {
  return async (request) => {
    const grant = request.grant;
    const scope = request.routeOptions.config.scope;
    // The token check runs first and throws without a grant; a route without a scope was never registered.
    if (grant === null || scope === undefined) throw new ApiError(401, 'UNAUTHORIZED', 'a valid bearer token is required (Authorization: Bearer <token>)');
    if (!holds(grant, scope)) throw new ApiError(403, 'FORBIDDEN', `this token lacks the scope ${scope} (${SCOPE_DESCRIPTIONS[scope]})`);
    request.scoped = { store: data.store.restrictedTo(grant.accounts), accounts: data.accounts.restrictedTo(grant.accounts) };
  };
}

export function holds(grant: TokenGrant, scope: Scope): boolean {
  return grant.scopes.has('admin') || grant.scopes.has(scope);
}

/**
 * A job, if its account is one the request may reach. The scheduler owns jobs (the in-process
 * one and pg-boss keep them their own way), so the restriction is applied to the job's account
 * here: another tenant's job is not found, like its account.
 */
export async function visibleJob(request: FastifyRequest, scheduler: SyncScheduler, id: number): Promise<SyncJobView> {
  const job = await scheduler.job(id);
  try {
    await request.scoped.store.accounts.get(job.accountId);
  } catch (error) {
    if (error instanceof StoreError && error.code === 'STORE_ACCOUNT_NOT_FOUND') throw new JobNotFoundError(`no sync job ${id}`);
    throw error;
  }
  return job;
}
