import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createRequire } from 'node:module';
import { sql } from 'kysely';
import { Type } from 'typebox';
import { isoTime, isoTimeOrNull } from '../../iso-time.js';
import type { Account, SyncRun } from '../../store/schema.js';
import type { RouteDeps } from '../app.js';
import { ERRORS, IdParams, Nullable, Time } from '../schemas/common.js';

const DAY_MS = 86_400_000;

const AccountState = Type.Enum(['ok', 'failing', 'needs attention', 'paused', 'new'], {
  description: 'paused; needs attention (the server rejected the credentials, or the last run left a note); failing (the last run failed); new (never run); else ok',
});

const LastRun = Type.Object({
  id: Type.Integer(),
  status: Type.String(),
  startedAt: Time,
  finishedAt: Nullable(Time),
  newMessages: Type.Integer(),
  errorCode: Nullable(Type.String()),
  errorMessage: Nullable(Type.String()),
});

const AccountStatus = Type.Object({
  id: Type.Integer(),
  state: AccountState,
  lastRun: Nullable(LastRun),
  nextSyncAt: Nullable(Time),
  messageCount: Type.Integer(),
  syncing: Type.Boolean({ description: 'a sync (or a connection test) holds the account now' }),
  lastError: Nullable(Type.String({ description: "the last run's error, or the account's note, in words" })),
});

const ServiceStatus = Type.Object(
  {
    version: Type.String({ description: 'popwire-service' }),
    libraryVersion: Type.String({ description: 'the popwire library' }),
    node: Type.String(),
    startedAt: Time,
    queueDepth: Type.Integer({ description: 'sync jobs waiting to run' }),
    accounts: Type.Integer(),
    messages: Type.Integer(),
    token: Type.Object(
      { id: Type.Integer(), scopes: Type.Array(Type.String()), restricted: Type.Boolean({ description: 'restricted to some accounts' }) },
      { description: 'the token of this request: what it may do (the console shows only that)' },
    ),
    runningSyncs: Type.Array(Type.Object({ accountId: Type.Integer(), name: Type.String(), until: Time }), {
      description: 'accounts whose sync lock is held now (a sync, or a connection test), with the lease end',
    }),
  },
  { description: "What the service is and does now, over the token's accounts" },
);

const DailyQuery = Type.Object({ days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, description: 'default 30' })) }, { additionalProperties: false });
const Daily = Type.Object(
  { days: Type.Array(Type.Object({ day: Type.String({ description: 'YYYY-MM-DD, UTC' }), messages: Type.Integer() })) },
  { description: 'Messages stored per day (UTC), oldest first, every day of the range present' },
);

const require = createRequire(import.meta.url);
const VERSIONS = {
  version: (require('../../../package.json') as { version: string }).version,
  libraryVersion: (require('popwire/package.json') as { version: string }).version,
};
const STARTED_AT = Date.now();

/**
 * What the console shows at a glance and no other route gives: the service's own state, each
 * account's state in one word with its last run and message count, and messages per day.
 * Each reads through the token's view of the store, like every route.
 */
export const overviewRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps }> = async (app, { deps }) => {
  const config = { scope: 'read' } as const;

  app.get('/service', { config, schema: { tags: ['service'], summary: 'Version, queue depth and running syncs', response: { 200: ServiceStatus, ...ERRORS } } }, async (request) => {
    const { store } = request.scoped;
    const now = Date.now();
    const accounts = await store.accounts.list();
    const grant = request.grant!;
    return {
      token: { id: grant.id, scopes: [...grant.scopes], restricted: grant.accounts.kind !== 'all' },
      ...VERSIONS,
      node: process.version,
      startedAt: isoTime(STARTED_AT),
      queueDepth: deps.scheduler.queueDepth(),
      accounts: accounts.length,
      messages: await store.messages.count(),
      runningSyncs: accounts.filter((a) => holdsLock(a, now)).map((a) => ({ accountId: a.id, name: a.name ?? a.key, until: isoTime(a.lock_expires ?? now) })),
    };
  });

  app.get(
    '/overview/accounts',
    { config, schema: { tags: ['accounts'], summary: "Each account's state, last run and message count", response: { 200: Type.Object({ accounts: Type.Array(AccountStatus) }), ...ERRORS } } },
    async (request) => {
      const { store } = request.scoped;
      const now = Date.now();
      const rows = await store.accounts.list();
      const accounts = await Promise.all(
        rows.map(async (row) => {
          const [run] = await store.runs.forAccount(row.id, 1);
          return statusOf(row, run, await store.messages.count(row.id), now);
        }),
      );
      return { accounts };
    },
  );

  app.get(
    '/accounts/:id/daily',
    { config, schema: { tags: ['accounts'], summary: 'Messages stored per day', params: IdParams, querystring: DailyQuery, response: { 200: Daily, ...ERRORS } } },
    async (request) => {
      const { store } = request.scoped;
      const account = await store.accounts.get(request.params.id);
      const days = request.query.days ?? 30;
      const today = Math.floor(Date.now() / DAY_MS);
      const first = today - days + 1;
      // Integer division on both SQLite and PostgreSQL (stored_at is an integer of milliseconds).
      const dayNumber = sql<number>`stored_at / ${sql.lit(DAY_MS)}`;
      const rows = await store.db
        .selectFrom('messages')
        .select([dayNumber.as('day'), (eb) => eb.fn.countAll<number | string>().as('n')])
        .where('account_id', '=', account.id)
        .where('pending', '=', 0)
        .where('stored_at', '>=', first * DAY_MS)
        .groupBy(dayNumber)
        .execute();
      const counts = new Map(rows.map((r) => [Number(r.day), Number(r.n)]));
      return {
        days: Array.from({ length: days }, (_, i) => ({ day: isoTime((first + i) * DAY_MS).slice(0, 10), messages: counts.get(first + i) ?? 0 })),
      };
    },
  );
};

function holdsLock(account: Account, now: number): boolean {
  return account.lock_owner !== null && account.lock_expires !== null && account.lock_expires > now;
}

function statusOf(account: Account, run: SyncRun | undefined, messageCount: number, now: number) {
  const failed = run !== undefined && (run.status === 'failed' || run.status === 'interrupted');
  const state = account.paused === 1 ? 'paused' : account.needs_attention === 1 || account.status_note !== null ? 'needs attention' : failed ? 'failing' : run === undefined ? 'new' : 'ok';
  const runError = run?.error_message ?? null;
  return {
    id: account.id,
    state,
    lastRun:
      run === undefined
        ? null
        : {
            id: run.id,
            status: run.status,
            startedAt: isoTime(run.started_at),
            finishedAt: isoTimeOrNull(run.finished_at),
            newMessages: run.new_messages,
            errorCode: run.error_code,
            errorMessage: run.error_message,
          },
    nextSyncAt: isoTimeOrNull(account.next_sync_at),
    messageCount,
    syncing: holdsLock(account, now),
    lastError: account.status_note ?? (failed || run?.status === 'deferred' ? runError : null),
  } as const;
}
