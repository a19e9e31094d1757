import { Type } from 'typebox';
import { Nullable, Time } from './common.js';

export const Job = Type.Object(
  {
    id: Type.Integer(),
    accountId: Type.Integer(),
    status: Type.Enum(['queued', 'running', 'done', 'failed']),
    reason: Type.String({ description: 'schedule, api or retry' }),
    queuedAt: Time,
    startedAt: Nullable(Time),
    finishedAt: Nullable(Time),
    runId: Nullable(Type.Integer({ description: 'the run it made, once started (GET /v1/accounts/{id}/runs)' })),
    error: Nullable(Type.String()),
  },
  { description: 'A sync job' },
);

export const Run = Type.Object({
  id: Type.Integer(),
  accountId: Type.Integer(),
  status: Type.Enum(['running', 'ok', 'failed', 'deferred', 'stopped', 'interrupted'], { description: 'interrupted: the process running it died, and another closed it' }),
  startedAt: Time,
  finishedAt: Nullable(Time),
  sessions: Type.Integer(),
  newMessages: Type.Integer(),
  alreadyHad: Type.Integer(),
  deleted: Type.Integer({ description: 'deleted from the server after they were stored' }),
  skipped: Type.Integer({ description: 'over the size limit, not stored' }),
  bytes: Type.Integer(),
  error: Nullable(Type.Object({ code: Nullable(Type.String()), message: Nullable(Type.String()) })),
});

export const RunList = Type.Object({ runs: Type.Array(Run) }, { description: 'Past runs, newest first' });
