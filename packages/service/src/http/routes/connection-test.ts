import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Pop3Client, type ConnectionTestReport, type ConnectionTestStep } from 'popwire';
import { SyncError } from '../../sync/errors.js';
import { AccountLock } from '../../sync/lock.js';
import type { RouteDeps } from '../app.js';
import { ApiError } from '../errors.js';
import { ConnectionTestReport as ReportSchema } from '../schemas/accounts.js';
import { ERRORS, IdParams } from '../schemas/common.js';

/**
 * POST /v1/accounts/{id}/test: the client's step-by-step connection test with the account's
 * stored settings. The report holds no secret (the client redacts commands, and the schema has
 * no field for one); a failed login is a 200 with ok: false, since the test itself worked.
 */
export const connectionTestRoutes: FastifyPluginAsyncTypebox<{ deps: RouteDeps }> = async (app) => {
  app.post(
    '/accounts/:id/test',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['accounts'],
        summary: 'Test the connection and login',
        description:
          'DNS, TCP, TLS (with the certificate), greeting, CAPA, login and STAT, each timed; the failing step says why. ' +
          'A host the network policy refuses (loopback, private... unless in network.allow) fails at DNS with POP3_ADDRESS_REFUSED; ' +
          'a server that is not POP3 fails at the greeting, its banner not shown.',
        params: IdParams,
        response: { 200: ReportSchema, ...ERRORS },
      },
    },
    async (request) => {
      const { accounts, store } = request.scoped;
      const row = await accounts.row(request.params.id);
      // The account's sync lock, as a sync takes it: a test logging in beside a running sync is a
      // second session on the maildrop (Dovecot with pop3_lock_session answers it [IN-USE] after
      // 12 s; some providers lock an account that logs in twice at once).
      const lock = await AccountLock.acquire(store.db, row.id).catch((error: unknown) => {
        if (error instanceof SyncError && error.code === 'SYNC_LOCKED') throw new ApiError(409, 'ACCOUNT_BUSY', 'a sync of this account is running; test it when the sync has ended');
        throw error;
      });
      try {
        return reportView(await Pop3Client.test(accounts.clientOptions(row)));
      } finally {
        await lock.release();
      }
    },
  );
};

function reportView(report: ConnectionTestReport) {
  return { ...report, steps: report.steps.map(stepView) };
}

function stepView(step: ConnectionTestStep) {
  const { certificate, ...rest } = step;
  if (certificate === undefined) return rest;
  return { ...rest, certificate: { ...certificate, validFrom: isoDate(certificate.validFrom), validTo: isoDate(certificate.validTo) } };
}

/** An unreadable certificate date becomes an Invalid Date, whose toISOString() throws. */
function isoDate(date: Date): string {
  return Number.isNaN(date.getTime()) ? new Date(0).toISOString() : date.toISOString();
}
