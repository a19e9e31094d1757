import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { isoTimeOrNull, isoTime } from '../../iso-time.js';
import { SCOPES, type TokenStore, type TokenView } from '../../store/tokens.js';
import type { RouteDeps } from '../app.js';
import { ApiError } from '../errors.js';
import { ERRORS, Id, IdParams, Nullable, Time } from '../schemas/common.js';

const Scopes = Type.Array(Type.Enum([...SCOPES]), { minItems: 1, maxItems: SCOPES.length, uniqueItems: true });

const TokenInfo = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  accounts: Type.Union([Type.Literal('all'), Type.Array(Type.Object({ id: Type.Integer(), key: Type.String() }))]),
  createdAt: Time,
  expiresAt: Nullable(Time),
  lastUsedAt: Nullable(Time),
});

const TokenInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Optional(Scopes),
    accounts: Type.Optional(Type.Array(Id, { maxItems: 1000, description: 'restrict the token to these accounts; absent: every account' })),
    expiresAt: Type.Optional(Nullable(Time)),
  },
  { additionalProperties: false },
);

/**
 * API tokens, for an admin token only: what `popwire token list/create/revoke` do, for the
 * console. A token is shown once, in the 201 that makes it; lists show no token and no hash.
 */
export const tokenRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps; tokens: TokenStore }> = async (app, { tokens }) => {
  const tags = ['tokens'];
  const config = { scope: 'admin' } as const;

  app.get('/tokens', { config, schema: { tags, summary: 'List the API tokens', response: { 200: Type.Object({ tokens: Type.Array(TokenInfo) }), ...ERRORS } } }, async () => ({
    tokens: (await tokens.list()).map(tokenView),
  }));

  app.post(
    '/tokens',
    {
      config,
      schema: {
        tags,
        summary: 'Make an API token',
        description: 'The token is in this response only; default scope admin.',
        body: TokenInput,
        response: { 201: Type.Object({ id: Type.Integer(), token: Type.String() }), ...ERRORS },
      },
    },
    async (request, reply) => {
      const { name, scopes, accounts, expiresAt } = request.body;
      // A restriction naming an account the caller cannot see (or that does not exist) is refused, not silently granted later.
      for (const id of accounts ?? []) await request.scoped.store.accounts.get(id);
      const expires = expiresAt === undefined || expiresAt === null ? null : Date.parse(expiresAt);
      if (expires !== null && expires <= Date.now()) throw new ApiError(400, 'INVALID_REQUEST', 'expiresAt is in the past', 'body.expiresAt');
      return reply.code(201).send(await tokens.create(name, { scopes, accounts, expiresAt: expires }));
    },
  );

  app.delete('/tokens/:id', { config, schema: { tags, summary: 'Revoke an API token', params: IdParams, response: { 204: { type: 'null', description: 'Revoked' }, ...ERRORS } } }, async (request, reply) => {
    if (!(await tokens.revoke(request.params.id))) throw new ApiError(404, 'NOT_FOUND', `no token ${request.params.id}`);
    return reply.code(204).send(null);
  });
};

function tokenView(token: TokenView) {
  return {
    ...token,
    scopes: [...token.scopes],
    accounts: token.accounts === 'all' ? ('all' as const) : [...token.accounts],
    createdAt: isoTime(token.createdAt),
    expiresAt: isoTimeOrNull(token.expiresAt),
    lastUsedAt: isoTimeOrNull(token.lastUsedAt),
  };
}
