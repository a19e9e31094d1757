import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { isoTime, isoTimeOrNull } from '../../iso-time.js';
import type { SyncRun } from '../../store/schema.js';
import type { RouteDeps } from '../app.js';
import { visibleJob } from '../access.js';
import { ApiError } from '../errors.js';
import { ERRORS, IdParams, Limit } from '../schemas/common.js';
import { Job, RunList } from '../schemas/jobs.js';

/** Syncs on request, their jobs, and the record of past runs. */
export const syncRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps }> = async (app, { deps }) => {
  const { scheduler } = deps;
  const tags = ['sync'];

  app.post(
    '/accounts/:id/sync',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        summary: 'Queue a sync now',
        description: 'Idempotent: while a sync of the account is queued or running, that job is returned and nothing new is queued.',
        params: IdParams,
        response: { 202: Job, ...ERRORS },
      },
    },
    async (request, reply) => {
      const row = await request.scoped.accounts.row(request.params.id);
      // The server rejected its credentials: trying them again is how providers come to lock an
      // account. Refused until they change (a PATCH with credentials clears the flag).
      if (row.needs_attention === 1) {
        throw new ApiError(409, 'ACCOUNT_NEEDS_ATTENTION', 'the server rejected this account\'s credentials: change them (PATCH credentials) before syncing it again');
      }
      return reply.code(202).send(await scheduler.enqueue(request.params.id, 'api'));
    },
  );

  app.get('/jobs/:id', { config: { scope: 'read' }, schema: { tags, summary: 'Read a sync job', params: IdParams, response: { 200: Job, ...ERRORS } } }, async (request) =>
    visibleJob(request, scheduler, request.params.id),
  );

  app.get(
    '/accounts/:id/runs',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        summary: "The account's past sync runs, newest first",
        params: IdParams,
        querystring: Type.Object({ limit: Type.Optional(Limit(50)) }, { additionalProperties: false }),
        response: { 200: RunList, ...ERRORS },
      },
    },
    async (request) => {
      const { accounts, store } = request.scoped;
      await accounts.row(request.params.id);
      return { runs: (await store.runs.forAccount(request.params.id, request.query.limit ?? 50)).map(runView) };
    },
  );
};

function runView(run: SyncRun) {
  return {
    id: run.id,
    accountId: run.account_id,
    status: run.status,
    startedAt: isoTime(run.started_at),
    finishedAt: isoTimeOrNull(run.finished_at),
    sessions: run.sessions,
    newMessages: run.new_messages,
    alreadyHad: run.already_had,
    deleted: run.deleted,
    skipped: run.skipped,
    bytes: run.bytes,
    error: run.error_code === null && run.error_message === null ? null : { code: run.error_code, message: run.error_message },
  };
}
