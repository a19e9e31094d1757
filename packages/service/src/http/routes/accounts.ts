import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../app.js';
import { AccountChange, AccountInput, AccountList, AccountView, DeleteQuery } from '../schemas/accounts.js';
import { ERRORS, IdParams } from '../schemas/common.js';

/** Accounts: create, list, read, change, pause and resume, delete. Credentials go in, never out. */
export const accountRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { accounts } = deps;
  const tags = ['accounts'];

  app.post(
    '/accounts',
    { schema: { tags, summary: 'Create an account', body: AccountInput, response: { 201: AccountView, ...ERRORS } } },
    async (request, reply) => reply.code(201).send(await accounts.create(request.body)),
  );

  app.get('/accounts', { schema: { tags, summary: 'List the accounts', response: { 200: AccountList, ...ERRORS } } }, async () => ({
    accounts: await accounts.list(),
  }));

  app.get('/accounts/:id', { schema: { tags, summary: 'Read an account', params: IdParams, response: { 200: AccountView, ...ERRORS } } }, async (request) =>
    accounts.get(request.params.id),
  );

  app.patch(
    '/accounts/:id',
    {
      schema: {
        tags,
        summary: 'Change an account',
        description: 'Only the fields given change. Host, port and user name the mailbox and cannot change: make a new account.',
        params: IdParams,
        body: AccountChange,
        response: { 200: AccountView, ...ERRORS },
      },
    },
    async (request) => accounts.update(request.params.id, request.body),
  );

  app.delete(
    '/accounts/:id',
    {
      schema: {
        tags,
        summary: 'Delete an account',
        description: 'keepMessages is required: with true the messages stay readable (GET /v1/accounts/{id}/messages, /v1/messages/{id}); with false they are deleted too.',
        params: IdParams,
        querystring: DeleteQuery,
        response: { 204: { type: 'null', description: 'Deleted' }, ...ERRORS },
      },
    },
    async (request, reply) => {
      await accounts.remove(request.params.id, { keepMessages: request.query.keepMessages });
      return reply.code(204).send(null);
    },
  );

  for (const [action, paused] of [['pause', true], ['resume', false]] as const) {
    app.post(
      `/accounts/:id/${action}`,
      {
        schema: {
          tags,
          summary: paused ? 'Pause scheduled syncs' : 'Resume scheduled syncs',
          description: `The same as PATCH with {"paused": ${paused}}.`,
          params: IdParams,
          response: { 200: AccountView, ...ERRORS },
        },
      },
      async (request) => accounts.update(request.params.id, { paused }),
    );
  }
};
