import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { checkServerIdentity, connect as tlsConnect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import type { Pop3Client, Pop3ClientOptions } from './client.js';
import type { TraceEvent } from './engine.js';
import { Pop3ConnectionError, Pop3Error, type Pop3ErrorCode } from './errors.js';
import { abortError, lookupWith, tlsConnectionOptions, type TransportOptions } from './transport.js';
import { deadline } from './deadline.js';

/**
 * `Pop3Client.test(options)`: connect step by step and say how each step went, for a person
 * setting up an account ("is it the password or the firewall?").
 *
 * DNS, TCP and (for implicit TLS) the TLS handshake are timed on a probe connection opened here
 * with the transport's own TLS settings, so the certificate is shown even when it does not
 * verify. The POP3 steps then run on a real Pop3Client session to the address DNS gave (the
 * certificate still checked against the name), timed from its protocol trace: with STLS, the
 * TLS step is timed there too. The report never throws; a failure is its verdict.
 */

export type ConnectionTestStepName = 'dns' | 'tcp' | 'tls' | 'greeting' | 'capa' | 'login' | 'stat';

export interface CertificateInfo {
  /** `CN=pop.example.com, O=Example` */
  readonly subject: string;
  readonly issuer: string;
  readonly validFrom: Date;
  readonly validTo: Date;
  /** Whole days until it expires (negative once expired). */
  readonly daysLeft: number;
  readonly altNames: string | undefined;
  readonly fingerprint256: string;
}

export interface ConnectionTestError {
  readonly code: Pop3ErrorCode;
  readonly message: string;
  readonly responseCode: string | undefined;
}

export interface ConnectionTestStep {
  readonly step: ConnectionTestStepName;
  readonly ok: boolean;
  /** Milliseconds, to a tenth. */
  readonly ms: number;
  /** What the step found, in words: the address, the TLS version and cipher, the greeting... */
  readonly detail?: string;
  readonly certificate?: CertificateInfo;
  /** The login mechanism used (`SCRAM-SHA-256`, `USER` for USER/PASS...). */
  readonly mechanism?: string;
  readonly error?: ConnectionTestError;
}

export interface ConnectionTestReport {
  readonly ok: boolean;
  readonly host: string;
  readonly port: number;
  readonly tls: 'implicit' | 'starttls' | 'none';
  readonly steps: readonly ConnectionTestStep[];
  /** The step that failed, when one did. */
  readonly failedStep?: ConnectionTestStepName;
  readonly error?: ConnectionTestError;
}

type Connect = (options: Pop3ClientOptions) => Promise<Pop3Client>;

export async function testConnection(options: Pop3ClientOptions, connect: Connect): Promise<ConnectionTestReport> {
  const tls = options.tls ?? 'implicit';
  const port = options.port ?? (tls === 'implicit' ? 995 : 110);
  const steps: ConnectionTestStep[] = [];
  const report = (error?: Pop3Error): ConnectionTestReport => {
    const failed = steps.find((s) => !s.ok);
    const summary = error === undefined ? failed?.error : summarise(error);
    return { ok: failed === undefined && error === undefined, host: options.host, port, tls, steps, ...(failed ? { failedStep: failed.step } : {}), ...(summary ? { error: summary } : {}) };
  };
  const limit = deadline(options.connectTimeout ?? options.timeout ?? 30_000, options.signal);
  const signal = limit.signal;
  const { host, ca, insecure, servername } = options;
  const transport: TransportOptions = { host, port, implicitTls: true, ca, insecure, servername, tlsOptions: options.tlsOptions, signal };
  try {
    const addresses = await timed(steps, 'dns', () => resolve(options.host, options.lookup, { port, signal }), (all) => all.join(', '));
    const { socket, address } = await timed(steps, 'tcp', () => openFirst(addresses, port, signal), (c) => `${c.address}:${port}`);
    if (tls === 'implicit') await timed(steps, 'tls', () => probeTls(socket, transport), describeTls, (r) => ({ certificate: r.certificate }));
    socket.destroy();
    await session(options, address, steps, connect);
  } catch (error) {
    if (!(error instanceof StepFailed)) return report(asPop3Error(error));
  } finally {
    limit.clear();
  }
  return report();
}

/** The POP3 steps, on a real session, timed from its trace. */
async function session(options: Pop3ClientOptions, address: string, steps: ConnectionTestStep[], connect: Connect): Promise<void> {
  const events: Array<TraceEvent & { at: number }> = [];
  let certificate: CertificateInfo | undefined;
  const tlsOptions: ConnectionOptions = {
    ...options.tlsOptions,
    // Called on the STLS handshake once the chain verifies: the certificate, for the report.
    checkServerIdentity: (host, cert) => {
      certificate = certificateInfo(cert);
      return (options.tlsOptions?.checkServerIdentity ?? checkServerIdentity)(host, cert);
    },
  };
  const start = performance.now();
  let client: Pop3Client | undefined;
  let failure: Pop3Error | undefined;
  try {
    client = await connect({
      ...options,
      // Pinned to the address the DNS step found (and a caller's lookup approved, for this
      // name): the session goes where the probe went, and the name still selects the certificate.
      lookup: (_host, _options, callback) => callback(null, [{ address, family: isIP(address) }]),
      servername: options.servername ?? (isIP(options.host) === 0 ? options.host : undefined),
      tlsOptions,
      retry: undefined,
      trace: (event) => {
        events.push({ ...event, at: performance.now() });
        options.trace?.(event);
      },
    });
  } catch (error) {
    failure = asPop3Error(error);
  }
  const sessionSteps = segments(events, start, performance.now());
  steps.push(...sessionSteps);
  const failedAt = failure === undefined ? undefined : failingStep(failure, sessionSteps);
  if (failedAt !== undefined) {
    const index = steps.findLastIndex((s) => s.step === failedAt);
    const error = failedAt === 'greeting' && failure?.code === 'POP3_BAD_REPLY' ? notPop3(failure) : summarise(failure as Pop3Error);
    const failed: ConnectionTestStep = { ...(steps[index] ?? { step: failedAt, ms: 0 }), ok: false, error };
    if (index === -1) steps.push(failed);
    else steps.splice(index, steps.length - index, failed);
    return;
  }
  const tlsStep = steps.findIndex((s) => s.step === 'tls');
  if (tlsStep !== -1 && certificate !== undefined) steps[tlsStep] = { ...(steps[tlsStep] as ConnectionTestStep), certificate };
  const loginStep = steps.findIndex((s) => s.step === 'login');
  if (loginStep !== -1 && client?.authMechanism !== undefined) {
    steps[loginStep] = { ...(steps[loginStep] as ConnectionTestStep), mechanism: client.authMechanism, detail: `logged in with ${client.authMechanism}` };
  }
  try {
    if (client?.state === 'transaction') {
      const ready = client;
      await timed(steps, 'stat', () => ready.stat(), (s) => `${s.count} messages, ${s.size} octets`);
    }
  } finally {
    await client?.quit().catch(() => client?.close());
  }
}

/**
 * Splits the trace into steps: the greeting (from connecting to its line), then one step per run
 * of commands of a kind: CAPA, STLS (the TLS step: its reply and the handshake), and the login
 * commands (USER, PASS, APOP, AUTH and its SASL lines). Each runs until the next kind starts.
 */
function segments(events: ReadonlyArray<TraceEvent & { at: number }>, start: number, end: number): ConnectionTestStep[] {
  const out: ConnectionTestStep[] = [];
  const greeting = events.find((e) => e.direction === 'server');
  if (greeting === undefined) return out;
  out.push({ step: 'greeting', ok: true, ms: tenth(greeting.at - start), detail: greeting.line });
  let current: { step: ConnectionTestStepName; at: number; detail?: string } | undefined;
  const close = (at: number) => {
    if (current !== undefined) out.push({ step: current.step, ok: true, ms: tenth(at - current.at), ...(current.detail ? { detail: current.detail } : {}) });
  };
  for (const event of events) {
    if (event.direction !== 'client') continue;
    const verb = event.line.split(' ')[0]?.toUpperCase() ?? '';
    const kind: ConnectionTestStepName | undefined =
      verb === 'CAPA' ? 'capa' : verb === 'STLS' ? 'tls' : ['USER', 'PASS', 'APOP', 'AUTH'].includes(verb) ? 'login' : undefined;
    if (kind === undefined || kind === current?.step) continue; // a SASL line, or more of the same
    close(event.at);
    current = { step: kind, at: event.at, ...(kind === 'tls' ? { detail: 'STLS' } : {}) };
  }
  close(end);
  return out;
}

/**
 * Which step a session failure belongs to: by its code where that says, else the session's step
 * in progress; before any POP3 line was understood, that is the greeting.
 */
function failingStep(error: Pop3Error, sessionSteps: readonly ConnectionTestStep[]): ConnectionTestStepName {
  if (error.code === 'POP3_CONNECT_FAILED' || error.code === 'POP3_ADDRESS_REFUSED') return 'tcp';
  if (error.code === 'POP3_TLS_FAILED' || error.code === 'POP3_TLS_UNAVAILABLE') return 'tls';
  if (error.kind === 'authentication' || error.code === 'POP3_PLAINTEXT_REFUSED') return 'login';
  return sessionSteps[sessionSteps.length - 1]?.step ?? 'greeting';
}

/**
 * The first line was not POP3: an SSH, SMTP, database or admin port, say. Its banner is not
 * repeated: it names the software and version of whatever listens there, which is what someone
 * probing a network through this test would want to read.
 */
function notPop3(error: Pop3Error): ConnectionTestError {
  return { code: error.code, message: 'Not a POP3 server: the first line it sent is not a POP3 greeting (not shown)', responseCode: undefined };
}

class StepFailed extends Error {}

async function timed<T>(
  steps: ConnectionTestStep[],
  step: ConnectionTestStepName,
  run: () => Promise<T>,
  describe: (value: T) => string,
  extra: (value: T) => Partial<ConnectionTestStep> = () => ({}),
): Promise<T> {
  const start = performance.now();
  try {
    const value = await run();
    steps.push({ step, ok: true, ms: tenth(performance.now() - start), detail: describe(value), ...extra(value) });
    return value;
  } catch (error) {
    steps.push({ step, ok: false, ms: tenth(performance.now() - start), error: summarise(asPop3Error(error)) });
    throw new StepFailed();
  }
}

async function resolve(host: string, hook: Pop3ClientOptions['lookup'], options: { port: number; signal: AbortSignal }): Promise<string[]> {
  if (hook !== undefined) return (await lookupWith(hook, host, options)).map((a) => a.address);
  try {
    return (await lookup(host, { all: true })).map((a) => a.address);
  } catch (error) {
    throw new Pop3ConnectionError(`Cannot resolve ${host}: ${(error as Error).message}`, { code: 'POP3_CONNECT_FAILED', cause: error });
  }
}

/** The first address that accepts, in the resolver's order (a name may have an IPv6 address first that no one listens on). */
async function openFirst(addresses: readonly string[], port: number, signal: AbortSignal): Promise<{ socket: Socket; address: string }> {
  let failure: unknown;
  for (const address of addresses) {
    try {
      return { socket: await openTcp(address, port, signal), address };
    } catch (error) {
      failure = error;
      if (signal.aborted) break;
    }
  }
  throw failure;
}

async function openTcp(address: string, port: number, signal: AbortSignal): Promise<Socket> {
  const socket = netConnect({ host: address, port, noDelay: true });
  try {
    await once(socket, 'connect', { signal });
    return socket;
  } catch (error) {
    socket.destroy();
    if (signal.aborted) throw abortError(signal, `connect to ${address}:${port}`);
    throw new Pop3ConnectionError(`Cannot connect to ${address}:${port}: ${(error as Error).message}`, { code: 'POP3_CONNECT_FAILED', cause: error });
  }
}

interface TlsProbe {
  readonly protocol: string;
  readonly cipher: string;
  readonly certificate: CertificateInfo;
}

/** The handshake with verification deferred, so that a certificate that fails is still shown. */
async function probeTls(socket: Socket, transport: TransportOptions): Promise<TlsProbe> {
  const secure = tlsConnect({ ...tlsConnectionOptions(transport), socket, rejectUnauthorized: false });
  try {
    await once(secure, 'secureConnect', { signal: transport.signal });
    const probe = { protocol: secure.getProtocol() ?? '?', cipher: secure.getCipher().name, certificate: certificateInfo(secure.getPeerCertificate()) };
    if (!secure.authorized && transport.insecure !== true) {
      throw new Pop3ConnectionError(`The certificate of ${transport.host} (${probe.certificate.subject}) does not verify: ${String(secure.authorizationError)}`, {
        code: 'POP3_TLS_FAILED',
        retryable: false,
      });
    }
    return probe;
  } catch (error) {
    if (error instanceof Pop3Error) throw error;
    if (transport.signal.aborted) throw abortError(transport.signal, `TLS handshake with ${transport.host}`);
    throw new Pop3ConnectionError(`TLS with ${transport.host} failed: ${(error as Error).message}`, { code: 'POP3_TLS_FAILED', cause: error });
  } finally {
    secure.destroy();
  }
}

function describeTls(probe: TlsProbe): string {
  return `${probe.protocol} ${probe.cipher}; ${probe.certificate.subject}, issued by ${probe.certificate.issuer}, expires ${probe.certificate.validTo.toISOString()}`;
}

function certificateInfo(cert: PeerCertificate): CertificateInfo {
  const validTo = new Date(cert.valid_to);
  return {
    subject: distinguishedName(cert.subject),
    issuer: distinguishedName(cert.issuer),
    validFrom: new Date(cert.valid_from),
    validTo,
    daysLeft: Math.floor((validTo.getTime() - Date.now()) / 86_400_000),
    altNames: cert.subjectaltname,
    fingerprint256: cert.fingerprint256,
  };
}

function distinguishedName(name: PeerCertificate['subject'] | undefined): string {
  return Object.entries(name ?? {})
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : String(value)}`)
    .join(', ');
}

function summarise(error: Pop3Error): ConnectionTestError {
  return { code: error.code, message: error.message, responseCode: error.responseCode };
}

function asPop3Error(error: unknown): Pop3Error {
  if (error instanceof Pop3Error) return error;
  return new Pop3ConnectionError(`Unexpected failure: ${(error as Error)?.message ?? String(error)}`, { code: 'POP3_CONNECT_FAILED', cause: error });
}

function tenth(ms: number): number {
  return Math.round(ms * 10) / 10;
}
