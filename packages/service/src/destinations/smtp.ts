/**
 * LMTP (RFC 2033) and SMTP delivery through nodemailer's SMTP connection, one connection for the
 * whole run, one transaction per message, one recipient.
 *
 * What nodemailer does for us, checked in its source (10.6): PIPELINING sends MAIL, RCPT and DATA
 * in one write when offered; BODY=8BITMIME when offered (we ask for it for every message: a POP3
 * message may hold 8-bit bytes); SIZE= when offered, so that a server refuses an oversized message
 * before its bytes cross; SMTPUTF8 when an address needs it; dot-stuffing, and bare LF to CRLF; in
 * LMTP, one reply per accepted recipient after the data, each read.
 *
 * Replies: 4xx (at MAIL, RCPT or after the data) is a temporary refusal, 5xx a permanent one; the
 * message stays on the POP3 server either way and is never bounced: popwire is a mailbox's owner
 * moving their own mail, not an MTA. No reply at all (connection refused or dropped, a timeout, TLS
 * that fails verification) makes the destination unavailable, and the run stops.
 *
 * TLS, as for POP3: `smtps:` is TLS from the start. Otherwise, to a loopback address or a Unix
 * socket, clear text (nothing on the path to read it; STARTTLS to localhost would only fail on the
 * usual self-signed "snakeoil" certificate); to any other host, STARTTLS is required, with the
 * certificate verified (system CAs plus --ca; --insecure accepts any), unless allowPlaintext opts
 * in, which then still uses STARTTLS where offered.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { SMTPConnectionOptions } from 'nodemailer/lib/smtp-connection';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { DestinationRefused, DestinationUnavailable, type Destination, type DestinationOptions, type MessageMeta } from './destination.js';
import type { SocketAddress } from './spec.js';

const DEFAULT_TIMEOUT_MS = 30_000;

export interface SmtpTarget {
  readonly protocol: 'lmtp' | 'smtp';
  readonly address: SocketAddress;
  /** smtps: TLS from the start. */
  readonly implicitTls?: boolean;
}

export function smtpDestination(target: SmtpTarget, options: DestinationOptions = {}): Destination {
  const where = 'path' in target.address ? `unix:${target.address.path}` : `${isIP(target.address.host) === 6 ? `[${target.address.host}]` : target.address.host}:${target.address.port}`;
  const describe = () => `${target.protocol === 'lmtp' ? 'LMTP' : target.implicitTls === true ? 'SMTPS' : 'SMTP'} ${where}`;
  let connection: SMTPConnection | undefined;
  /** Why the connection ended under us (the server closed it, a socket error): the next deliver says so. */
  let lost: Error | undefined;

  const unavailable = (error: unknown, doing: string): DestinationUnavailable => {
    const reason = error instanceof Error ? explain(error) : String(error);
    return new DestinationUnavailable(describe(), `${doing}: ${reason}`, { cause: error });
  };

  return {
    kind: target.protocol,
    describe,
    async open(signal?: AbortSignal): Promise<void> {
      const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      let socket: Socket | undefined;
      try {
        if ('path' in target.address) socket = await connectUnix(target.address.path, timeout, signal);
      } catch (error) {
        throw unavailable(error, 'cannot connect');
      }
      const local = socket !== undefined || isLoopback(target.address);
      const plaintextOk = local || options.tls?.allowPlaintext === true;
      const settings: SMTPConnectionOptions = {
        ...('path' in target.address ? { connection: socket } : { host: target.address.host, port: target.address.port }),
        lmtp: target.protocol === 'lmtp',
        secure: target.implicitTls === true,
        // Loopback and Unix sockets: clear text. Elsewhere: STARTTLS required unless opted out.
        ignoreTLS: local && target.implicitTls !== true,
        requireTLS: !plaintextOk && target.implicitTls !== true,
        tls: { ca: options.tls?.ca, rejectUnauthorized: options.tls?.insecure !== true },
        name: hostname(),
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
        logger: false,
      };
      const opened = new SMTPConnection(settings);
      opened.on('error', (error: Error) => void (lost ??= error));
      opened.on('end', () => void (lost ??= new Error('the server closed the connection')));
      const onAbort = () => opened.close();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await new Promise<void>((resolve, reject) => {
          opened.once('error', reject);
          opened.connect(() => {
            opened.removeListener('error', reject);
            resolve();
          });
        });
        const { user, password, accessToken } = options.auth ?? {};
        if (user !== undefined && (password !== undefined || accessToken !== undefined)) {
          await new Promise<void>((resolve, reject) => {
            opened.login(
              accessToken !== undefined ? { user, method: 'XOAUTH2', oauth2: { getToken: (_renew: boolean, done: (error: Error | null, token: string) => void) => done(null, accessToken) } as never } : { user, pass: password },
              (error) => (error ? reject(error) : resolve()),
            );
          });
        }
      } catch (error) {
        opened.close();
        throw unavailable(error, signal?.aborted === true ? 'aborted' : 'cannot connect');
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      lost = undefined;
      connection = opened;
    },
    async deliver(message: Buffer, meta: MessageMeta): Promise<void> {
      if (connection === undefined) throw new DestinationUnavailable(describe(), 'not connected');
      if (lost !== undefined) throw unavailable(lost, 'the connection was lost');
      const current = connection;
      try {
        await new Promise<void>((resolve, reject) => {
          current.send(
            // from: false is MAIL FROM:<>, the null sender.
            { from: meta.envelope.sender === '' ? false : meta.envelope.sender, to: [meta.envelope.recipient], size: message.length, use8BitMime: true },
            message,
            (error, info) => {
              if (error) return reject(error);
              // One recipient: accepted, or the error above. Checked anyway: never count a refusal as delivered.
              if (info.rejected.length > 0 || info.accepted.length === 0) return reject(info.rejectedErrors?.[0] ?? new Error(`recipient refused: ${info.response}`));
              resolve();
            },
          );
        });
      } catch (error) {
        const failure = classify(error, describe(), lost, unavailable);
        // After a refusal the server may still hold the transaction (Dovecot answers the next MAIL
        // with "503 MAIL already given"), and nodemailer does not end it: RSET does.
        if (failure instanceof DestinationRefused) await reset(current).catch((resetError: unknown) => void (lost ??= resetError as Error));
        throw failure;
      }
    },
    async close(): Promise<void> {
      const current = connection;
      connection = undefined;
      if (current === undefined) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          current.close();
          resolve();
        }, 2_000);
        timer.unref();
        current.once('end', () => {
          clearTimeout(timer);
          resolve();
        });
        if (lost !== undefined) current.close();
        else current.quit();
      });
    },
  };
}

function reset(connection: SMTPConnection): Promise<void> {
  return new Promise((resolve, reject) => connection.reset((error) => (error ? reject(error) : resolve())));
}

/** A reply (4xx, 5xx) refuses this message; anything without a reply makes the destination unavailable. */
function classify(
  error: unknown,
  destination: string,
  lost: Error | undefined,
  unavailable: (error: unknown, doing: string) => DestinationUnavailable,
): Error {
  const code = (error as { responseCode?: unknown }).responseCode;
  const response = (error as { response?: unknown }).response;
  if (typeof code === 'number' && code >= 400 && code < 600 && lost === undefined) {
    const words = typeof response === 'string' && response !== '' ? response : error instanceof Error ? error.message : String(code);
    return new DestinationRefused(destination, words.trim().replace(/\s*\n\s*/g, ' '), code < 500, { cause: error });
  }
  // nodemailer refuses before sending a message larger than the server's SIZE: the server's own limit.
  if ((error as { code?: unknown }).code === 'EMESSAGE' && /larger than allowed/.test(String((error as Error).message)) && lost === undefined) {
    return new DestinationRefused(destination, `${(error as Error).message} (the server's SIZE)`, false, { cause: error });
  }
  return unavailable(lost ?? error, 'the connection failed');
}

function explain(error: Error): string {
  const original = (error as { originalCode?: unknown }).originalCode;
  const code = (error as { code?: unknown }).code;
  if (original === 'ECONNREFUSED' || code === 'ECONNREFUSED' || /ECONNREFUSED/.test(error.message)) return 'connection refused';
  if (code === 'ENOENT') return 'no such socket';
  return error.message;
}

export function isLoopback(address: SocketAddress): boolean {
  if ('path' in address) return true;
  const host = address.host.toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function connectUnix(path: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ path });
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    const onAbort = () => socket.destroy(new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
  });
}
