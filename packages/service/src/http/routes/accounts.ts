import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { RouteDeps } from '../app.js';
import { AccountChange, AccountInput, AccountList, AccountView, DeleteQuery, MessageDeliveries } from '../schemas/accounts.js';
import { ERRORS, IdParams } from '../schemas/common.js';
import { isoTime } from '../../iso-time.js';

/** Accounts: create, list, read, change, pause and resume, delete. Credentials go in, never out. */
export const accountRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps }> = async (app) => {
  const tags = ['accounts'];

  app.post(
    '/accounts',
    { config: { scope: 'write' }, schema: { tags, summary: 'Create an account', description: 'A token restricted to some accounts gets the new one added to them.', body: AccountInput, response: { 201: AccountView, ...ERRORS } } },
    async (request, reply) => reply.code(201).send(await request.scoped.accounts.create(request.body)),
  );

  app.get('/accounts', { config: { scope: 'read' }, schema: { tags, summary: 'List the accounts', response: { 200: AccountList, ...ERRORS } } }, async (request) => ({
    accounts: await request.scoped.accounts.list(),
  }));

  app.get('/accounts/:id', { config: { scope: 'read' }, schema: { tags, summary: 'Read an account', params: IdParams, response: { 200: AccountView, ...ERRORS } } }, async (request) =>
    request.scoped.accounts.get(request.params.id),
  );

  app.patch(
    '/accounts/:id',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        summary: 'Change an account',
        description: 'Only the fields given change. Host, port and user name the mailbox and cannot change: make a new account.',
        params: IdParams,
        body: AccountChange,
        response: { 200: AccountView, ...ERRORS },
      },
    },
    async (request) => request.scoped.accounts.update(request.params.id, request.body),
  );

  app.delete(
    '/accounts/:id',
    {
      config: { scope: 'write' },
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
      await request.scoped.accounts.remove(request.params.id, { keepMessages: request.query.keepMessages });
      return reply.code(204).send(null);
    },
  );

  // With the accounts rather than messages.ts: what a message's account's destinations said of it.
  app.get(
    '/messages/:id/deliveries',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['messages'],
        summary: "A message's delivery to each destination",
        description:
          "One entry per destination of the message's account that covers it (destinations receive the messages stored after they were added): pending (not handed over yet, or in flight), delivered, temporary (4xx, EX_TEMPFAIL: tried again next sync) or permanent (5xx, another exit: kept on the server, tried again next sync), with the destination's last reply and the attempts.",
        params: IdParams,
        response: { 200: MessageDeliveries, ...ERRORS },
      },
    },
    async (request) => {
      const { store } = request.scoped;
      const row = await store.messages.get(request.params.id);
      const deliveries = await store.deliveries.forMessage(row.account_id, row.id);
      return { deliveries: deliveries.map((d) => ({ ...d, updatedAt: d.updatedAt === null ? null : isoTime(d.updatedAt) })) };
    },
  );

  for (const [action, paused] of [['pause', true], ['resume', false]] as const) {
    app.post(
      `/accounts/:id/${action}`,
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary: paused ? 'Pause scheduled syncs' : 'Resume scheduled syncs',
          description: `The same as PATCH with {"paused": ${paused}}.`,
          params: IdParams,
          response: { 200: AccountView, ...ERRORS },
        },
      },
      async (request) => request.scoped.accounts.update(request.params.id, { paused }),
    );
  }
};
