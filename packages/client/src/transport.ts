import type { LookupAddress } from 'node:dns';
import { isIP, Socket, connect as netConnect, type LookupFunction } from 'node:net';
import { createHash } from 'node:crypto';
import { connect as tlsConnect, createSecureContext, rootCertificates, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import { Pop3AbortError, Pop3ConnectionError, Pop3Error, Pop3TimeoutError } from './errors.js';

export interface TlsSettings {
  /** Extra trusted CA(s), PEM, added to (not replacing) Node's root store. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer> | undefined;
  /** Accept any certificate. Only when the caller names it: it makes TLS worthless against an active attacker. */
  readonly insecure?: boolean | undefined;
  /** Name to verify and send as SNI; defaults to the host when the host is a name. */
  readonly servername?: string | undefined;
  /** Anything else Node's TLS accepts (client certificates, ciphers); our settings above win. */
  readonly tlsOptions?: ConnectionOptions | undefined;
}

export interface TransportOptions extends TlsSettings {
  readonly host: string;
  readonly port: number;
  readonly implicitTls: boolean;
  /** Ends the attempt: the connect deadline and the caller's signal, combined. */
  readonly signal: AbortSignal;
  /** Resolves every host, literals included; the socket dials what it returns (Pop3ClientOptions.lookup). */
  readonly lookup?: LookupFunction | undefined;
}

/**
 * Opens the TCP connection, and the TLS session on top when TLS is implicit (RFC 8314, port 995).
 * One signal bounds DNS, TCP and TLS together, so a server that accepts and then stalls the
 * handshake cannot hold us past the connect deadline.
 */
export async function openTransport(options: TransportOptions): Promise<Socket> {
  const address = options.lookup === undefined ? options.host : (await lookupWith(options.lookup, options.host, options))[0]!.address;
  const socket = await settle<Socket>(options.signal, `connect to ${options.host}:${options.port}`, (done, fail) => {
    const socket = netConnect({ host: address, port: options.port, noDelay: true });
    socket.once('connect', () => done(socket));
    socket.once('error', (error) => fail(connectError(error, options)));
    return () => socket.destroy();
  });
  if (!options.implicitTls) return socket;
  return upgradeToTls(socket, options);
}

/** Starts TLS on an open socket: for implicit TLS, and for STLS (RFC 2595) after its +OK. */
export function upgradeToTls(socket: Socket, options: TransportOptions): Promise<TLSSocket> {
  return settle<TLSSocket>(options.signal, `TLS handshake with ${options.host}`, (done, fail) => {
    const secure = tlsConnect({ ...tlsConnectionOptions(options), socket });
    secure.once('secureConnect', () => done(secure));
    secure.once('error', (error) =>
      fail(
        new Pop3ConnectionError(`TLS with ${options.host}:${options.port} failed: ${notTls(error, options) ?? error.message}`, {
          code: 'POP3_TLS_FAILED',
          cause: error,
          // A certificate that does not verify will not verify on the next attempt either.
          retryable: false,
        }),
      ),
    );
    return () => secure.destroy();
  });
}

/**
 * OpenSSL's errors when the first bytes back are not a TLS record: a clear-text POP3 server's
 * greeting (`+OK ...`) read as a record header. The usual cause is pop3s:// (implicit TLS) to a
 * clear-text port such as 110; OpenSSL says only "wrong version number".
 */
const NOT_TLS_ERRORS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_HTTP_REQUEST']);

/** What went wrong, said plainly, when the server answered implicit TLS in clear text. */
function notTls(error: NodeJS.ErrnoException & { reason?: string }, options: TransportOptions): string | undefined {
  if (!options.implicitTls || error.code === undefined || !NOT_TLS_ERRORS.has(error.code)) return undefined;
  return (
    `the server answered in clear text, not TLS (OpenSSL: ${error.reason ?? error.code}): port ${options.port} is probably ` +
    'a clear-text POP3 port. Use pop3:// (port 110, upgraded with STLS), or the TLS port, usually 995'
  );
}

export function tlsConnectionOptions(options: TransportOptions): ConnectionOptions {
  const servername = options.servername ?? (isIP(options.host) === 0 ? options.host : undefined);
  const extra = (options.ca === undefined ? [] : Array.isArray(options.ca) ? options.ca : [options.ca]) as Array<string | Buffer>;
  const ownContext = Object.keys(options.tlsOptions ?? {}).some((key) => CONTEXT_OPTIONS.has(key));
  return {
    ...options.tlsOptions,
    host: options.host,
    servername,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: options.insecure !== true,
    ...(extra.length === 0 ? {} : ownContext ? { ca: [...rootCertificates, ...extra] } : { secureContext: sharedContext(extra) }),
  };
}

/**
 * Extra CAs are added to Node's roots, and a `ca` option builds a new TLS context from all
 * of them at every connection: some 140 root certificates parsed again, 35 to 65 ms of CPU and
 * about 0.5 MiB each time (measured in the service benchmark, where it was 40% of the CPU of
 * 200 accounts syncing). So the context is built once per set of extra CAs and shared, unless
 * the caller's tlsOptions shape the context themselves (a client certificate, ciphers...).
 */
const CONTEXT_OPTIONS = new Set([
  'ca', 'cert', 'key', 'pfx', 'passphrase', 'ciphers', 'ecdhCurve', 'maxVersion', 'minVersion', 'secureOptions',
  'secureProtocol', 'sessionIdContext', 'crl', 'dhparam', 'honorCipherOrder', 'sigalgs', 'ticketKeys', 'secureContext',
  'privateKeyEngine', 'privateKeyIdentifier', 'clientCertEngine',
]);
const SHARED_CONTEXTS = 32;
const contexts = new Map<string, SecureContext>();

function sharedContext(extra: ReadonlyArray<string | Buffer>): SecureContext {
  const hash = createHash('sha256');
  for (const ca of extra) hash.update(ca).update('\0');
  const key = hash.digest('hex');
  let context = contexts.get(key);
  if (context === undefined) {
    // Node's roots are kept as Node holds them, parsed once per process: the extra CAs are added
    // to this context's copy of that store. Handing them over as `ca` PEM text instead cost 40 to
    // 70 ms of the start of every `popwire ... --ca FILE` (about 140 certificates parsed again),
    // more than all the rest of `popwire capa` on loopback.
    context = createSecureContext({ minVersion: 'TLSv1.2' });
    for (const ca of extra) (context.context as { addCACert(ca: string | Buffer): void }).addCACert(ca);
    if (contexts.size >= SHARED_CONTEXTS) contexts.delete(contexts.keys().next().value!);
    contexts.set(key, context);
  }
  return context;
}

/**
 * Calls the caller's `lookup` (names and literals alike, unlike net.connect, which skips it for
 * literals) within the connect deadline. Its refusal says so in its own code: a policy decision,
 * not a network failure, and no retry changes it.
 */
export function lookupWith(lookup: LookupFunction, host: string, options: Pick<TransportOptions, 'port' | 'signal'>): Promise<LookupAddress[]> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return settle<LookupAddress[]>(options.signal, `look up ${host}`, (done, fail) => {
    let live = true;
    lookup(bare, { all: true }, (error, addresses) => {
      if (!live) return;
      const list = typeof addresses === 'string' ? [{ address: addresses, family: isIP(addresses) }] : (addresses ?? []);
      if (error === null && list.length > 0) return done(list);
      const cause = error ?? new Error('no address');
      const refused = (cause as { code?: unknown }).code === 'ADDRESS_REFUSED';
      fail(
        new Pop3ConnectionError(`Cannot connect to ${host}:${options.port}: ${cause.message}`, {
          code: refused ? 'POP3_ADDRESS_REFUSED' : 'POP3_CONNECT_FAILED',
          cause,
          retryable: !refused && (cause as { code?: unknown }).code !== 'ENOTFOUND',
        }),
      );
    });
    return () => (live = false);
  });
}

function connectError(error: NodeJS.ErrnoException, options: TransportOptions): Pop3ConnectionError {
  return new Pop3ConnectionError(`Cannot connect to ${options.host}:${options.port}: ${error.message}`, {
    code: 'POP3_CONNECT_FAILED',
    cause: error,
    // A name that does not resolve will not resolve on a retry a second later either.
    retryable: error.code !== 'ENOTFOUND',
  });
}

/**
 * Runs a callback-style step under an AbortSignal: the step's cleanup runs when the signal fires
 * first, and the signal's reason becomes a typed timeout or abort error.
 */
function settle<T>(
  signal: AbortSignal,
  what: string,
  start: (done: (value: T) => void, fail: (error: Pop3Error) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal, what));
      return;
    }
    let cleanup: (() => void) | undefined;
    const onAbort = () => {
      cleanup?.();
      reject(abortError(signal, what));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    cleanup = start(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        cleanup?.();
        reject(error);
      },
    );
  });
}

export function abortError(signal: AbortSignal, what: string): Pop3Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Pop3Error) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new Pop3TimeoutError(`Timed out: ${what}`, { cause: reason });
  }
  return new Pop3AbortError(reason);
}
