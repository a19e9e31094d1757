import type { Pop3Client } from 'popwire';
import { CommandFailure, ExitCode, failureOf, signalExitCode } from '../failure.js';
import { DestinationRefused } from '../../destinations/destination.js';
import type { StopSignal } from './interrupt.js';
import type { MessageFailure, TransferResult } from './transfer.js';

/** What `fetch --json` prints: a contract with scripts, so named field by field. */
export interface FetchSummary {
  readonly messages: number;
  /** Octets as retrieved (before any mbox conversion). */
  readonly bytes: number;
  /** Messages the server confirmed deleting (+OK to their DELE and to QUIT). */
  readonly deleted: number;
  readonly seconds: number;
}

export interface FetchContext {
  readonly requested: number;
  readonly deleting: boolean;
  readonly interrupted: StopSignal | undefined;
  /** performance.now() at the start of the command. */
  readonly started: number;
}

/**
 * Ends the session after a transfer and turns the result into a summary, or into a failure that
 * says what was done before it.
 *
 * The session ends with QUIT whenever it is still usable: after a complete transfer, after a stop
 * asked for by a signal, and also after the destination failed (a full disk, say). QUIT commits
 * every DELE of this session, and transfer() sent a DELE only for a message already delivered and
 * fsynced: what QUIT commits is exactly what is safe to delete. Closing without QUIT would keep
 * those messages on the server too, which loses nothing but makes the next run fetch them again,
 * as duplicates. Only a broken connection ends without QUIT, because it has to: the server then
 * forgets every deletion of the session (RFC 1939 section 6), and again nothing is lost.
 */
export async function finish(client: Pop3Client, result: TransferResult, context: FetchContext, quitting?: Promise<void>): Promise<FetchSummary> {
  let quitError: unknown;
  // `quitting`: QUIT already sent, pipelined behind the last DELEs (see TransferOptions.onAllSent).
  const usable = quitting !== undefined || client.state === 'transaction';
  if (usable) {
    try {
      await (quitting ?? client.quit());
    } catch (error) {
      quitError = error;
    }
  }
  const committed = usable && quitError === undefined;
  const summary: FetchSummary = {
    messages: result.delivered,
    bytes: result.bytes,
    deleted: committed ? result.markedDeleted : 0,
    seconds: Math.round(performance.now() - context.started) / 1000,
  };
  const done = whatWasDone(result, context, committed, quitError !== undefined);
  const problem = result.failure ?? quitError;

  if (context.interrupted !== undefined) {
    const then = problem === undefined ? '' : `; and: ${failureOf(problem).message ?? String(problem)}`;
    throw new CommandFailure(`Interrupted by ${context.interrupted}: ${done}${then}`, signalExitCode(context.interrupted), {
      cause: problem,
    });
  }
  if (problem !== undefined) {
    const { exitCode, message } = failureOf(problem);
    // The reader of stdout went away (`popwire fetch --stdout URL | head`): it had all it wanted.
    if (message === undefined) return summary;
    throw new CommandFailure(`${message} (${done})`, exitCode, { cause: problem });
  }
  const left = [
    ...describeFailures(result.refused, 'were not accepted'),
    ...describeFailures(result.unretrievable, 'could not be retrieved'),
    ...describeFailures(result.notDeleted, 'were delivered but not deleted'),
  ];
  if (left.length > 0) {
    throw new CommandFailure(`${left.join('; ')}; they stay on the server (${done})`, leftExitCode(result), {
      cause: (result.refused[0] ?? result.unretrievable[0] ?? result.notDeleted[0])?.error,
    });
  }
  return summary;
}

/**
 * 6 (delivery) if a destination refused a message for good (5xx, an MDA's failure), 5 (server) if
 * the POP3 server failed one, 7 (deferred) if the only trouble is destinations saying "later" (4xx,
 * EX_TEMPFAIL): a cron job's next run delivers them.
 */
function leftExitCode(result: TransferResult): number {
  if (result.refused.some(({ error }) => error instanceof DestinationRefused && !error.temporary)) return ExitCode.delivery;
  if (result.unretrievable.length > 0 || result.notDeleted.length > 0) return ExitCode.server;
  return ExitCode.deferred;
}

function whatWasDone(result: TransferResult, context: FetchContext, committed: boolean, quitFailed: boolean): string {
  const fetched = `${result.delivered} of ${context.requested} messages delivered`;
  if (!context.deleting) return fetched;
  if (committed) return `${fetched}, ${result.markedDeleted} deleted from the server`;
  if (quitFailed) return `${fetched}; the server did not confirm deleting the ${result.markedDeleted} marked`;
  return `${fetched}, none deleted: the session could not end with QUIT, so the server keeps every message`;
}

/** "messages 3, 7 could not be retrieved (RETR failed: ...)", the reason from the first. */
function describeFailures(failures: readonly MessageFailure[], what: string): string[] {
  const first = failures[0];
  if (first === undefined) return [];
  const numbers = failures.slice(0, 10).map(({ n }) => n).join(', ') + (failures.length > 10 ? `, and ${failures.length - 10} more` : '');
  const reason = failureOf(first.error).message ?? String(first.error);
  return [`${failures.length === 1 ? 'message' : 'messages'} ${numbers} ${failures.length === 1 ? what.replace(/^were/, 'was') : what} (${reason})`];
}
