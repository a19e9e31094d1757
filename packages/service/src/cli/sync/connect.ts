import { Pop3Client, Pop3Error, retry, type Pop3ClientOptions, type RetryAttempt } from 'popwire';
import { SyncError } from '../../sync/errors.js';
import { warmTls } from '../session-command.js';

/**
 * Attempts per session. A refused or dropped connection, [SYS/TEMP] or [IN-USE] (another client
 * is reading the mailbox) gets two more chances, about 1 and 2 s later, before the run gives up
 * (and is reported deferred, for [IN-USE]). A rejected password is never tried again.
 */
const ATTEMPTS = 3;

export interface ConnectorHooks {
  /** The sync's stop: it also ends a connection attempt, or the wait before the next one. */
  readonly stop: AbortSignal;
  /** Told of each failed attempt, with the wait before the next (undefined when none follows). */
  readonly onAttempt: (attempt: RetryAttempt) => void;
}

/**
 * The `connect` a sync calls once per session: a logged-in client, made from the same options as
 * every session command, with a retry policy.
 *
 * [LOGIN-DELAY] is not retried here, although the library could: the server names the wait
 * between logins (RFC 2449 section 8.1.2), often many minutes, and a command line should not sit
 * that long. The run ends deferred at once, and the next run (cron's next turn) goes on.
 */
export function connector(url: string, options: Partial<Pop3ClientOptions>, hooks: ConnectorHooks): () => Promise<Pop3Client> {
  return async () => {
    if (hooks.stop.aborted) throw stopped(undefined);
    // A signal of its own: the client keeps the one it is given for the whole session, and a stop
    // must end the session between messages, after the commit, not abort it.
    const connecting = new AbortController();
    const abort = () => connecting.abort();
    hooks.stop.addEventListener('abort', abort, { once: true });
    try {
      return await retry(
        async () => {
          try {
            const session = Pop3Client.connect(url, { ...options, signal: connecting.signal });
            // The TLS context's one-time cost during the handshake and greeting, as for session commands.
            setImmediate(warmTls);
            return await session;
          } catch (error) {
            throw isLoginDelay(error) ? new NotNow(error) : error;
          }
        },
        { attempts: ATTEMPTS, signal: connecting.signal, onAttempt: hooks.onAttempt },
      );
    } catch (error) {
      if (hooks.stop.aborted) throw stopped(error);
      throw error instanceof NotNow ? error.error : error;
    } finally {
      hooks.stop.removeEventListener('abort', abort);
    }
  };
}

/** What the engine records as a clean stop (status `stopped`), not as a failed run. */
function stopped(cause: unknown): SyncError {
  return new SyncError('SYNC_ABORTED', 'stopped on request before the session began', { cause });
}

function isLoginDelay(error: unknown): error is Pop3Error {
  return error instanceof Pop3Error && error.responseCode?.toUpperCase() === 'LOGIN-DELAY';
}

/** Carries a [LOGIN-DELAY] past retry(), which retries every Pop3Error it can and lets anything else through. */
class NotNow extends Error {
  constructor(readonly error: Pop3Error) {
    super(error.message, { cause: error });
  }
}
