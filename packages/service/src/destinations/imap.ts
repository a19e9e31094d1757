/**
 * IMAP APPEND through ImapFlow: each message into one folder, over one connection, logged in with
 * a password or an OAuth 2.0 access token (XOAUTH2, what Gmail requires).
 *
 * - The internal date is the message's Date header (else the server's now), so that a client
 *   sorting by arrival shows old mail where it belongs.
 * - \Seen only when asked (`seen`).
 * - The folder is checked once at open (STATUS), so that a typo stops the run before any message
 *   is retrieved, instead of a NO per message.
 * - A tagged NO to APPEND refuses this message for now (over quota, a folder being moved: IMAP has
 *   no permanent/temporary distinction, and a NO is usually something the user fixes); BAD refuses
 *   it for good. A dropped connection or a timeout makes the destination unavailable. Either way the
 *   message stays on the POP3 server.
 *
 * TLS, as for POP3: imaps:// is TLS from the start; imap:// requires STARTTLS, with the
 * certificate verified, except to a loopback address, or with allowPlaintext (which still uses
 * STARTTLS where offered).
 */
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { DestinationRefused, DestinationUnavailable, type Destination, type DestinationOptions, type MessageMeta } from './destination.js';
import { isLoopback } from './smtp.js';

const DEFAULT_TIMEOUT_MS = 30_000;

export interface ImapTarget {
  readonly host: string;
  readonly port: number;
  readonly implicitTls: boolean;
  readonly user: string;
  readonly folder: string;
}

export function imapDestination(target: ImapTarget, options: DestinationOptions = {}): Destination {
  const scheme = target.implicitTls ? 'imaps' : 'imap';
  const describe = () => `IMAP ${scheme}://${encodeURIComponent(target.user)}@${target.host}:${target.port}/${target.folder}`;
  let client: ImapFlow | undefined;
  let lost: Error | undefined;

  return {
    kind: 'imap',
    describe,
    async open(signal?: AbortSignal): Promise<void> {
      const { password, accessToken } = options.auth ?? {};
      if (password === undefined && accessToken === undefined) {
        throw new DestinationUnavailable(describe(), 'no password or OAuth access token to log in with');
      }
      const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const local = isLoopback({ host: target.host, port: target.port });
      const settings: ImapFlowOptions = {
        host: target.host,
        port: target.port,
        secure: target.implicitTls,
        // true: STARTTLS or fail; false: stay in clear text; undefined: STARTTLS where offered.
        doSTARTTLS: target.implicitTls ? undefined : local ? false : options.tls?.allowPlaintext === true ? undefined : true,
        tls: { ca: options.tls?.ca, rejectUnauthorized: options.tls?.insecure !== true },
        auth: accessToken !== undefined ? { user: options.auth?.user ?? target.user, accessToken } : { user: options.auth?.user ?? target.user, pass: password },
        logger: false,
        disableAutoIdle: true,
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: Math.max(timeout, 60_000),
      };
      const opened = new ImapFlow(settings);
      opened.on('error', (error: Error) => void (lost ??= error));
      opened.on('close', () => void (lost ??= new Error('the server closed the connection')));
      const onAbort = () => opened.close();
      signal?.addEventListener('abort', onAbort, { once: true });
      let step = 'connect';
      try {
        await opened.connect();
        step = 'status';
        await opened.status(target.folder, { messages: true });
      } catch (error) {
        opened.close();
        const failed = error as { authenticationFailed?: boolean; responseText?: string };
        const reason =
          signal?.aborted === true
            ? 'aborted'
            : failed.authenticationFailed === true
              ? `login refused${failed.responseText ? ` (${failed.responseText})` : ''}`
              : step === 'status'
                ? `the folder "${target.folder}" cannot be used: ${failed.responseText ?? explain(error)}`
                : explain(error);
        throw new DestinationUnavailable(describe(), reason, { cause: error });
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      lost = undefined;
      client = opened;
    },
    async deliver(message: Buffer, meta: MessageMeta): Promise<void> {
      if (client === undefined) throw new DestinationUnavailable(describe(), 'not connected');
      if (lost !== undefined || !client.usable) throw new DestinationUnavailable(describe(), `the connection was lost: ${explain(lost)}`, { cause: lost });
      let result: unknown;
      try {
        result = await client.append(target.folder, message, options.seen === true ? ['\\Seen'] : [], meta.date);
      } catch (error) {
        const failed = error as { responseStatus?: string; responseText?: string };
        if ((failed.responseStatus === 'NO' || failed.responseStatus === 'BAD') && client.usable) {
          throw new DestinationRefused(describe(), `${failed.responseStatus} ${failed.responseText ?? explain(error)}`, failed.responseStatus === 'NO', { cause: error });
        }
        throw new DestinationUnavailable(describe(), `APPEND failed: ${explain(lost ?? error)}`, { cause: error });
      }
      // ImapFlow resolves without a result when the connection is no longer logged in.
      if (result === undefined || result === false) throw new DestinationUnavailable(describe(), 'APPEND was not sent: the session is no longer logged in');
    },
    async close(): Promise<void> {
      const current = client;
      client = undefined;
      if (current === undefined) return;
      try {
        if (current.usable) await withTimeout(current.logout(), 2_000);
      } catch {
        // LOGOUT is politeness; closing is what matters.
      } finally {
        current.close();
      }
    },
  };
}

function explain(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED' || /ECONNREFUSED/.test(error.message)) return 'connection refused';
  return error.message;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
