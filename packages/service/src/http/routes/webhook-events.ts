import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import { Type } from 'typebox';
import { isoTime, isoTimeOrNull } from '../../iso-time.js';
import { accountCondition } from '../../store/account-filter.js';
import type { WebhookEvent } from '../../store/schema.js';
import { GAVE_UP } from '../../store/webhook-events.js';
import type { RouteDeps } from '../app.js';
import { ApiError } from '../errors.js';
import { ERRORS, IdParams, Limit, Nullable, Time } from '../schemas/common.js';

const STATES = ['pending', 'failing', 'gave-up', 'delivered'] as const;
type EventState = (typeof STATES)[number];

const EventView = Type.Object({
  id: Type.Integer(),
  accountId: Nullable(Type.Integer()),
  url: Type.String(),
  type: Type.String(),
  state: Type.Enum([...STATES], { description: 'pending: not tried yet; failing: failed, will be tried again; gave-up: no more attempts; delivered' }),
  attempts: Type.Integer(),
  nextAttemptAt: Nullable(Time),
  deliveredAt: Nullable(Time),
  lastError: Nullable(Type.String()),
});

const ListQuery = Type.Object(
  { state: Type.Optional(Type.Enum(['undelivered', ...STATES], { description: 'default undelivered (pending, failing and gave-up)' })), limit: Type.Optional(Limit(50)) },
  { additionalProperties: false },
);

const Counts = Type.Object({ pending: Type.Integer(), failing: Type.Integer(), 'gave-up': Type.Integer(), delivered: Type.Integer() });

/**
 * The webhook outbox as an operator needs it: how many events wait, fail or were given up on,
 * the latest of them with their errors, and "retry now". An event belongs to its account; a
 * token restricted to some accounts sees only theirs (events without an account: admin's).
 * The body (a message's summary) is not shown: GET /v1/messages gives that.
 */
export const webhookEventRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps }> = async (app) => {
  const tags = ['webhooks'];

  app.get(
    '/webhook-events',
    {
      config: { scope: 'read' },
      schema: { tags, summary: 'The webhook outbox: counts and the latest events', querystring: ListQuery, response: { 200: Type.Object({ counts: Counts, events: Type.Array(EventView) }), ...ERRORS } },
    },
    async (request) => {
      const { store } = request.scoped;
      const condition = accountCondition('webhook_events.account_id', store.filter);
      const base = () => (condition === undefined ? store.db.selectFrom('webhook_events') : store.db.selectFrom('webhook_events').where(condition));
      const tally = await base()
        .select([
          sql<string>`case when delivered_at is not null then 'delivered' when next_attempt_at = ${GAVE_UP} then 'gave-up' when attempts > 0 then 'failing' else 'pending' end`.as('state'),
          (eb) => eb.fn.countAll<number | string>().as('n'),
        ])
        .groupBy('state')
        .execute();
      const counts = { pending: 0, failing: 0, 'gave-up': 0, delivered: 0 };
      for (const row of tally) counts[row.state as EventState] = Number(row.n);

      let query = base().selectAll();
      const state = request.query.state ?? 'undelivered';
      if (state === 'delivered') query = query.where('delivered_at', 'is not', null);
      else query = query.where('delivered_at', 'is', null);
      if (state === 'gave-up') query = query.where('next_attempt_at', '=', GAVE_UP);
      if (state === 'failing') query = query.where('next_attempt_at', '<>', GAVE_UP).where('attempts', '>', 0);
      if (state === 'pending') query = query.where('attempts', '=', 0);
      const rows = await query.orderBy('id', 'desc').limit(request.query.limit ?? 50).execute();
      return { counts, events: rows.map(eventView) };
    },
  );

  app.post(
    '/webhook-events/:id/retry',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        summary: 'Send an undelivered event now',
        description: 'Due at once, given up or not; the dispatcher sends it at its next poll (about a second). A delivered event is a 409.',
        params: IdParams,
        response: { 200: EventView, ...ERRORS },
      },
    },
    async (request) => {
      const { store } = request.scoped;
      const condition = accountCondition('webhook_events.account_id', store.filter);
      let find = store.db.selectFrom('webhook_events').selectAll().where('id', '=', request.params.id);
      if (condition !== undefined) find = find.where(condition);
      const event = await find.executeTakeFirst();
      if (event === undefined) throw new ApiError(404, 'NOT_FOUND', `no webhook event ${request.params.id}`);
      if (event.delivered_at !== null) throw new ApiError(409, 'ALREADY_DELIVERED', `webhook event ${event.id} was delivered`);
      const updated = await store.db
        .updateTable('webhook_events')
        .set({ next_attempt_at: Date.now() })
        .where('id', '=', event.id)
        .where('delivered_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      return eventView(updated ?? event);
    },
  );
};

function eventView(event: WebhookEvent) {
  const state: EventState = event.delivered_at !== null ? 'delivered' : event.next_attempt_at === GAVE_UP ? 'gave-up' : event.attempts > 0 ? 'failing' : 'pending';
  return {
    id: event.id,
    accountId: event.account_id,
    url: event.url,
    type: event.type,
    state,
    attempts: event.attempts,
    nextAttemptAt: state === 'gave-up' || state === 'delivered' ? null : isoTime(event.next_attempt_at),
    deliveredAt: isoTimeOrNull(event.delivered_at),
    lastError: event.last_error,
  };
}
