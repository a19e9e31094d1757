import { Pop3AbortError } from 'popwire';
import { isoTimeOrNull } from '../../iso-time.js';
import type { SyncReport } from '../../sync/run.js';
import { CommandFailure, ExitCode, failureOf, signalExitCode } from '../failure.js';
import type { StopSignal } from '../fetch/interrupt.js';
import { formatBytes } from '../fetch/progress.js';
import { report, type Json, type Report } from '../output.js';

export interface SyncContext {
  /** The account's key in the store: `user@host:port`. */
  readonly account: string;
  /** Where the store is, its password hidden. */
  readonly store: string;
  readonly interrupted: StopSignal | undefined;
}

/** The summary for people, and the run's report itself for --json: a contract with scripts. */
export function describeSync(result: SyncReport, context: SyncContext): Report {
  const headersOnly = result.headersOnly > 0 ? ` (${result.headersOnly} headers only, over --max-size)` : '';
  const lines = [
    `synced ${context.account} into ${context.store}`,
    `new                ${result.newMessages}${headersOnly}`,
    `already had        ${result.alreadyHad}`,
    `deleted on server  ${result.deleted}`,
    `skipped            ${result.skipped.length}${result.skipped.length > 0 ? ' over --max-size (--json lists them)' : ''}`,
    `bytes              ${result.bytes} (${formatBytes(result.bytes)})`,
    `seconds            ${result.seconds.toFixed(2)}`,
    `sessions           ${result.sessions}`,
    ...(result.delivery.handedOver > 0 || result.delivery.undelivered > 0
      ? [`handed over        ${result.delivery.handedOver} (${result.delivery.delivered} accepted, ${result.delivery.temporary} deferred, ${result.delivery.permanent} refused; ${result.delivery.undelivered} kept on the server for a destination)`]
      : []),
    ...result.delivery.refusals.map((r) => `${r.temporary ? 'deferred' : 'refused'}: UID ${r.uid} by ${r.destination}: ${r.reply}`),
    ...result.notes.map((note) => `note: ${note}`),
  ];
  return report(lines, {
    status: result.status,
    account: context.account,
    store: context.store,
    runId: result.runId,
    accountId: result.accountId,
    sessions: result.sessions,
    newMessages: result.newMessages,
    headersOnly: result.headersOnly,
    alreadyHad: result.alreadyHad,
    deleted: result.deleted,
    skipped: result.skipped.map(({ uid, size }) => ({ uid, size })),
    bytes: result.bytes,
    seconds: result.seconds,
    identity: result.identity,
    notes: [...result.notes],
    retryAfter: isoTimeOrNull(result.retryAfter),
    error: errorJson(result.error),
    ignoredExisting: result.ignoredExisting,
    delivery: {
      handedOver: result.delivery.handedOver,
      delivered: result.delivery.delivered,
      temporary: result.delivery.temporary,
      permanent: result.delivery.permanent,
      undelivered: result.delivery.undelivered,
      refusals: result.delivery.refusals.map((r) => ({ uid: r.uid, destination: r.destination, reply: r.reply, temporary: r.temporary })),
    },
  });
}

/**
 * A run that did not end `ok` as a failure: its exit code, and a line that says what was done
 * before it ended. Undefined for a run that did.
 */
export function syncFailure(result: SyncReport, context: SyncContext): CommandFailure | undefined {
  const done = whatWasDone(result);
  const cause = { cause: result.error };
  const signal = context.interrupted;
  if (signal !== undefined) {
    // A stop asked for while connecting fails the connection with an abort: nothing more to say.
    const aborted = result.status === 'stopped' || result.error instanceof Pop3AbortError;
    const then = aborted ? '' : `; and: ${failureOf(result.error).message ?? String(result.error)}`;
    return new CommandFailure(`Interrupted by ${signal}: ${done}${then}`, signalExitCode(signal), cause);
  }
  if (result.status === 'ok') {
    // Stored, but a destination did not take everything: those stay on the server. Like fetch:
    // 7 when every refusal was for now (the next run tries again), 6 when one was for good.
    const { temporary, permanent, refusals } = result.delivery;
    if (temporary + permanent === 0) return undefined;
    const first = refusals[0];
    const example = first === undefined ? '' : `; ${first.destination}: ${first.reply}`;
    const what = `${temporary + permanent} hand-over(s) not accepted (${temporary} deferred, ${permanent} refused), kept on the server and handed over again next run${example}`;
    return new CommandFailure(`${what} (${done})`, permanent > 0 ? ExitCode.delivery : ExitCode.deferred);
  }
  const { exitCode, message } = failureOf(result.error);
  if (result.status === 'deferred') {
    const when = result.retryAfter === null ? 'later' : `after ${new Date(result.retryAfter).toTimeString().slice(0, 8)}`;
    return new CommandFailure(`Deferred: ${message}; try again ${when} (${done})`, ExitCode.deferred, cause);
  }
  return new CommandFailure(`${message ?? String(result.error)} (${done})`, exitCode, cause);
}

function whatWasDone(result: SyncReport): string {
  if (result.newMessages === 0 && result.deleted === 0) return 'nothing stored or deleted';
  return `${result.newMessages} new ${result.newMessages === 1 ? 'message' : 'messages'} stored, ${result.deleted} deleted from the server`;
}

function errorJson(error: unknown): Json {
  if (error === undefined) return null;
  const code = (error as { code?: unknown } | null)?.code;
  return { code: typeof code === 'string' ? code : 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}
