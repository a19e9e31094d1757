import type { LookupFunction, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { authenticate } from './auth/authenticate.js';
import { readCredentials, type AccessToken, type Credentials, type LoginCredentials } from './auth/credentials.js';
import { parseAuthMechanism, type AuthMechanism } from './auth/select.js';
import { NO_CAPABILITIES, type Capabilities } from './capabilities.js';
import { capa, CapaBehind } from './commands/capa.js';
import { dele } from './commands/dele.js';
import { readGreeting } from './commands/greeting.js';
import { listAll, listOne, messageNumber, type MessageSize, type MessageSizes } from './commands/list.js';
import { DEFAULT_MAX_LISTING_ENTRIES } from './commands/listing.js';
import { noop } from './commands/noop.js';
import { probePipelining } from './commands/pipelining-probe.js';
import { quit } from './commands/quit.js';
import { retrBuffer, retrMany, retrStream, type RetrievedMessage } from './commands/retr.js';
import { rset } from './commands/rset.js';
import { stat, type MailboxStat } from './commands/stat.js';
import { stls } from './commands/stls.js';
import { topBuffer, topStream } from './commands/top.js';
import { uidlAll, uidlOne, type MessageUid, type MessageUids } from './commands/uidl.js';
import { Engine, type SessionState, type TraceFn } from './engine.js';
import type { ConnectionTestReport } from './connection-test.js';
import { Pop3AbortError, Pop3ConnectionError, Pop3Error, Pop3ServerError, Pop3TimeoutError, Pop3UsageError } from './errors.js';
import type { ParsedMessage, ParseOptions } from './message.js';
import { connectWithRetry, type RetryPolicy } from './retry.js';
import { abortError, openTransport, upgradeToTls, type TlsSettings, type TransportOptions } from './transport.js';
import { deadline, deadlinePassed, sessionDeadline, sessionEnd } from './deadline.js';
import { parsePop3Url } from './url.js';

export type TlsMode = 'implicit' | 'starttls' | 'none';

export interface Pop3ClientOptions extends TlsSettings {
  readonly host: string;
  /** Default: 995 for implicit TLS, 110 otherwise. */
  readonly port?: number | undefined;
  /**
   * `implicit` (default): TLS from the first byte (RFC 8314). `starttls`: plain TCP, then STLS
   * (RFC 2595); if the server does not offer STLS the connection fails before any credential is
   * sent, unless `allowPlaintextAuth` is set. `none`: never TLS.
   */
  readonly tls?: TlsMode | undefined;
  /** With `password` or `accessToken`, log in during `connect`. */
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  /**
   * An OAuth 2.0 access token, or a function returning one (called at each login, so it can
   * refresh), to log in with OAUTHBEARER or XOAUTH2 instead of a password.
   */
  readonly accessToken?: AccessToken | undefined;
  /**
   * The mechanism to log in with (a URL's `;AUTH=`): it is used, or the login fails. Default: the
   * strongest the server offers that fits the credentials, in the order SCRAM-SHA-256, SCRAM-SHA-1,
   * CRAM-MD5, PLAIN, LOGIN, APOP, USER (USER/PASS); with a token, OAUTHBEARER, XOAUTH2.
   */
  readonly auth?: AuthMechanism | undefined;
  /**
   * Log in without TLS with a mechanism that exposes the secret: PLAIN, LOGIN, USER, XOAUTH2,
   * OAUTHBEARER (sent readable), CRAM-MD5, APOP (an MD5 digest, crackable offline). Off by default;
   * say it by name to allow it. SCRAM needs no opt-in.
   */
  readonly allowPlaintextAuth?: boolean | undefined;
  /** Milliseconds allowed for each reply to start and keep arriving; and for connecting, unless `connectTimeout` says otherwise. Default 30,000. */
  readonly timeout?: number | undefined;
  /** Milliseconds for DNS, TCP, TLS, greeting, CAPA and login together. Default: `timeout`. */
  readonly connectTimeout?: number | undefined;
  /**
   * When the whole session must be over: milliseconds from `connect`, or a Date. `timeout` is per
   * reply, so a server that sends a byte every few seconds never trips it; this does. When it
   * passes, the connect (retries included) or whatever is in flight fails with POP3_TIMEOUT
   * naming the deadline, and the connection is closed (no QUIT: nothing marked deleted is
   * removed). Default: none.
   */
  readonly deadline?: number | Date | undefined;
  /** Aborts the connect and, later, whatever is in flight; the connection is then closed. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Resolves the host before each connection, in the signature of `dns.lookup`; it is called for
   * IP literals too (Node's own sockets skip it for them). The connection goes to the address it
   * gives, so a lookup that checks addresses checks the one dialled. An error from it fails the
   * connect with nothing sent: `POP3_ADDRESS_REFUSED` (not retried) when its `code` is
   * `ADDRESS_REFUSED`, else `POP3_CONNECT_FAILED`.
   */
  readonly lookup?: LookupFunction | undefined;
  /** Receives every line sent (secrets as `***`) and every status line received. */
  readonly trace?: TraceFn | undefined;
  /**
   * Use PIPELINING when the server offers it, and against a server that does not, once a probe
   * (three harmless exchanges, at the first `retrieveMany` or `deleteMany` of a session) shows it
   * answers commands that arrive together; see commands/pipelining-probe.ts. Default true.
   */
  readonly pipelining?: boolean | undefined;
  /**
   * Commands in flight at once when pipelining. Default 1,024: enough to keep a 20 ms round trip
   * full of 4 KB messages; the commands themselves stay under 16 KB, well inside any server's
   * socket buffer, so the server can always take them while we read.
   */
  readonly pipelineDepth?: number | undefined;
  /** Body octets held for slow readers before the socket is paused. Default 4 MiB. */
  readonly maxBufferedBytes?: number | undefined;
  /** Longest status line accepted, in octets. Default 8,192 (RFC 2449 says 512; servers exceed it). */
  readonly maxLineLength?: number | undefined;
  /** Largest message `retrieve()` and `top()` will hold in memory. Default 256 MiB; stream anything larger. */
  readonly maxMessageBytes?: number | undefined;
  /**
   * Most entries a LIST or UIDL listing may have. Default 4,000,000; past it the listing fails
   * with POP3_REPLY_TOO_LARGE and the connection is closed. A listing is held compactly (see
   * `sizeListing()`): 16 octets a message for LIST, 12 plus the uid for UIDL.
   */
  readonly maxListingEntries?: number | undefined;
  /**
   * Retry `connect` when it fails for a reason that can pass (refused, reset, timeout, [SYS/TEMP],
   * [IN-USE], [LOGIN-DELAY]); never after a rejected password. Each attempt has its own
   * `connectTimeout`. Default: one attempt. See retry.ts.
   */
  readonly retry?: RetryPolicy | undefined;
}

const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_PIPELINE_DEPTH = 1024;
const DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024;
const DEFAULT_MAX_LINE = 8192;
const DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024;
/** After +OK to QUIT the server closes; we wait this long for it before closing ourselves. */
const QUIT_CLOSE_GRACE = 2_000;

/**
 * Servers that advertised PIPELINING and then broke the protocol with several commands in
 * flight, by host and port. Some servers do exactly that (they drop commands that arrive in the
 * same packet); for the rest of this process we talk to them in lock-step.
 */
const pipeliningBroken = new Set<string>();

/**
 * The message parser (postal-mime and the header readers, a third of the library's code), loaded
 * when a message is first parsed: a session that only lists, retrieves raw or deletes never
 * compiles it (`popwire capa`, a sync with nothing new: about 10 ms of each start, issue 13).
 */
let messageModule: Promise<typeof import('./message.js')> | undefined;
function messageParser(): Promise<typeof import('./message.js')> {
  return (messageModule ??= import('./message.js'));
}

/**
 * The window for a server that passed the pipelining probe without advertising PIPELINING. Enough
 * to keep popa3d's replies flowing (with 8 in flight, a delayed ACK still stalled it now and then;
 * with 16 or more, never), and 32 RETR lines stay under 512 octets unread at the server at any
 * time: the probe showed a second line survives a read, not that any amount does.
 */
const UNADVERTISED_PIPELINE_DEPTH = 32;

interface Settings {
  readonly transport: TransportOptions;
  readonly tls: TlsMode;
  readonly allowPlaintextAuth: boolean;
  /** The mechanism named at connect, for a later `login()` too. */
  readonly auth: AuthMechanism | undefined;
  readonly pipelining: boolean;
  readonly maxMessageBytes: number;
  readonly maxListingEntries: number;
  readonly timeout: number;
}

/**
 * A POP3 session. A thin facade: the engine runs the wire, one module per command speaks it.
 *
 * ```ts
 * await using client = await Pop3Client.connect({ host: 'pop.example.com', user, password });
 * const { count } = await client.stat();
 * ```
 */
export class Pop3Client implements AsyncDisposable {
  private caps: Capabilities = NO_CAPABILITIES;
  private greetingText = '';
  private loggedInWith: AuthMechanism | undefined;
  /** The pipelining probe's answer, once asked (servers that do not advertise PIPELINING only). */
  private probed: boolean | undefined;
  private secureNow: boolean;
  private readonly detachSignal: () => void;
  /** The timer of `setDeadline()`, if one is set. */
  private laterDeadline: NodeJS.Timeout | undefined;

  private constructor(
    private readonly engine: Engine,
    private readonly settings: Settings,
    signal: AbortSignal | undefined,
  ) {
    this.secureNow = settings.tls === 'implicit';
    // The session deadline aborts with its own Pop3TimeoutError, which names it.
    const onAbort = () => engine.fail(signal?.reason instanceof Pop3Error ? signal.reason : new Pop3AbortError(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    this.detachSignal = () => signal?.removeEventListener('abort', onAbort);
  }

  /**
   * Connects, reads the greeting, asks CAPA, upgrades with STLS when asked to, and logs in when
   * credentials are given. A URL (`pop3s://alice@host`) may stand for host, port, TLS mode and user.
   */
  static async connect(target: string | Pop3ClientOptions, rest: Partial<Pop3ClientOptions> = {}): Promise<Pop3Client> {
    const given: Pop3ClientOptions = typeof target === 'string' ? { ...Pop3Client.fromUrl(target), ...rest } : { ...target, ...rest };
    // Fixed now, once: every retry attempt then shares the same end.
    const options: Pop3ClientOptions = { ...given, deadline: sessionEnd(given.deadline) };
    if (options.retry) return connectWithRetry(options, options.retry, (attempt) => Pop3Client.connect(attempt));
    const tls = options.tls ?? 'implicit';
    const timeout = positive(options.timeout, DEFAULT_TIMEOUT, 'timeout');
    const connectTimeout = positive(options.connectTimeout, timeout, 'connectTimeout');
    const session = sessionDeadline(options.deadline as Date | undefined, options.signal);
    const connectDeadline = deadline(connectTimeout, session?.signal ?? options.signal);
    try {
      const client = await Pop3Client.openWithin({ ...options, signal: session?.signal ?? options.signal }, tls, timeout, connectDeadline.signal);
      // However the session ends (QUIT, close, a failure), its deadline's timer goes with it.
      if (session !== undefined) void client.engine.whenClosed().then(session.clear);
      return client;
    } catch (error) {
      session?.clear();
      throw error;
    } finally {
      connectDeadline.clear();
    }
  }

  /** `connect` within the deadline `deadlineSignal` (connect timeout and caller's signal together). */
  private static async openWithin(options: Pop3ClientOptions, tls: TlsMode, timeout: number, deadlineSignal: AbortSignal): Promise<Pop3Client> {
    const transport: TransportOptions = {
      host: options.host,
      port: options.port ?? (tls === 'implicit' ? 995 : 110),
      implicitTls: tls === 'implicit',
      ca: options.ca,
      insecure: options.insecure,
      servername: options.servername,
      tlsOptions: options.tlsOptions,
      lookup: options.lookup,
      signal: deadlineSignal,
    };
    // Checked before connecting: a bad credential or mechanism name fails with nothing sent.
    const auth = options.auth === undefined ? undefined : parseAuthMechanism(options.auth);
    const credentials = Pop3Client.connectCredentials(options, auth);
    const socket = await openTransport(transport);
    const engine = new Engine(socket, {
      timeout,
      maxLineLength: positive(options.maxLineLength, DEFAULT_MAX_LINE, 'maxLineLength'),
      pipelineDepth: positive(options.pipelineDepth, DEFAULT_PIPELINE_DEPTH, 'pipelineDepth'),
      maxBufferedBytes: positive(options.maxBufferedBytes, DEFAULT_MAX_BUFFERED, 'maxBufferedBytes'),
      trace: options.trace,
      onPipelineFailure: () => pipeliningBroken.add(`${transport.host}:${transport.port}`),
    });
    const client = new Pop3Client(
      engine,
      {
        transport,
        tls,
        allowPlaintextAuth: options.allowPlaintextAuth === true,
        auth,
        pipelining: options.pipelining !== false && !pipeliningBroken.has(`${transport.host}:${transport.port}`),
        maxMessageBytes: positive(options.maxMessageBytes, DEFAULT_MAX_MESSAGE, 'maxMessageBytes'),
        maxListingEntries: positive(options.maxListingEntries, DEFAULT_MAX_LISTING_ENTRIES, 'maxListingEntries'),
        timeout,
      },
      options.signal,
    );
    const onDeadline = () => engine.fail(abortError(deadlineSignal, `connect to ${transport.host}:${transport.port}`));
    deadlineSignal.addEventListener('abort', onDeadline, { once: true });
    try {
      await client.open();
      if (credentials !== undefined) await client.loginWith(credentials);
      return client;
    } catch (error) {
      client.close();
      throw error;
    } finally {
      deadlineSignal.removeEventListener('abort', onDeadline);
    }
  }

  /** RFC 1939 session state; `closed` once the connection is gone. */
  get state(): SessionState {
    return this.engine.state;
  }

  /** Whether the connection is encrypted now (implicit TLS, or after STLS). */
  get secure(): boolean {
    return this.secureNow;
  }

  /** Whether commands are pipelined now: the server offers PIPELINING and nothing turned it off. */
  get pipelining(): boolean {
    return this.engine.pipelining;
  }

  /** The server's greeting text (after `+OK`). */
  get greeting(): string {
    return this.greetingText;
  }

  /** The capabilities from the last CAPA (asked at connect, after STLS and after login). */
  capabilities(): Capabilities {
    return this.caps;
  }

  /** Asks CAPA anew. */
  async capa(): Promise<Capabilities> {
    this.useCapabilities(await capa(this.engine));
    return this.caps;
  }

  private useCapabilities(capabilities: Capabilities): void {
    this.caps = capabilities;
    this.engine.pipelining = this.settings.pipelining && (this.caps.pipelining || this.probed === true);
  }

  /**
   * Logs in: with the mechanism named in `auth` (here or at connect), or else the strongest the
   * server offers. One attempt: a rejected password is not tried again with another mechanism.
   * Without TLS, a mechanism that would expose the secret is refused, before anything is sent,
   * unless the caller set `allowPlaintextAuth`.
   */
  async login(user: string, password: string): Promise<void>;
  async login(credentials: LoginCredentials): Promise<void>;
  async login(userOrCredentials: string | LoginCredentials, password?: string): Promise<void> {
    const input: LoginCredentials = typeof userOrCredentials === 'string' ? { user: userOrCredentials, password } : userOrCredentials;
    await this.loginWith(readCredentials({ ...input, auth: input.auth ?? this.settings.auth }));
  }

  /** The mechanism the login used (`SCRAM-SHA-256`, `APOP`, `USER` for USER/PASS...); undefined before it. */
  get authMechanism(): AuthMechanism | undefined {
    return this.loggedInWith;
  }

  stat(): Promise<MailboxStat> {
    return stat(this.engine);
  }

  /** Every message's size, or one message's with `n`. */
  list(): Promise<MessageSize[]>;
  list(n: number): Promise<MessageSize>;
  async list(n?: number): Promise<MessageSize[] | MessageSize> {
    return n === undefined ? (await this.sizeListing()).toArray() : listOne(this.engine, n);
  }

  /**
   * Every message's size (LIST), held compactly: read it by index (`n(i)`, `size(i)`) or iterate
   * it. For a large mailbox: two million messages take 32 MB here, and several times that as the
   * array `list()` returns. At most `maxListingEntries`.
   */
  sizeListing(): Promise<MessageSizes> {
    return listAll(this.engine, this.settings.maxListingEntries);
  }

  /** Every message's unique id (UIDL), held compactly like `sizeListing()`; `indexOf(n)` finds message n. */
  uidListing(): Promise<MessageUids> {
    return uidlAll(this.engine, this.settings.maxListingEntries);
  }

  /** Every message's unique id, or one message's with `n`. */
  uidl(): Promise<MessageUid[]>;
  uidl(n: number): Promise<MessageUid>;
  async uidl(n?: number): Promise<MessageUid[] | MessageUid> {
    return n === undefined ? (await this.uidListing()).toArray() : uidlOne(this.engine, n);
  }

  /**
   * Message `n` as a stream of its exact bytes (dot-unstuffed, line endings as sent). Read it to
   * the end or destroy it; commands issued meanwhile wait behind it.
   */
  async retrieveStream(n: number): Promise<Readable> {
    return (await retrStream(this.engine, n)).body;
  }

  /** Message `n` in one Buffer, up to `maxMessageBytes`. */
  retrieve(n: number): Promise<Buffer> {
    return retrBuffer(this.engine, n, this.settings.maxMessageBytes);
  }

  /**
   * Retrieves the given messages (default: every message, from LIST) in order, pipelined when the
   * server allows it. Each body is a stream to read before the loop moves on; breaking out of the
   * loop leaves the session usable.
   *
   * ```ts
   * for await (const { n, body } of client.retrieveMany()) await pipeline(body, sink(n));
   * ```
   */
  retrieveMany(numbers?: Iterable<number>): AsyncGenerator<RetrievedMessage> {
    // Made at the first next(), as a generator's body would run (see retrMany).
    return retrMany(this.engine, async () => {
      const which = numbers ?? Array.from(await this.sizeListing(), (m) => m.n);
      if (!Array.isArray(which) || which.length > 1) await this.pipelineIfProbed();
      // Without PIPELINING, one queued behind the one in flight is enough for the engine to send it
      // the moment the previous reply ends. With it, the window plus an eighth: the engine refills
      // the window an eighth at a time, in one write, which needs that eighth waiting; with only
      // the window's worth requested, each reply freed one slot and one RETR went out per write(2).
      const depth = this.engine.pipelineDepth;
      return { numbers: which, ahead: this.engine.pipelining ? depth + Math.ceil(depth / 8) : 2 };
    });
  }

  /** Headers and the first `lines` body lines of message `n` (TOP), as a stream. */
  async topStream(n: number, lines: number): Promise<Readable> {
    return (await topStream(this.engine, n, lines)).body;
  }

  /**
   * `maxBytes` (default `maxMessageBytes`) bounds this reply alone: a header block is small, and
   * a server that never ends one must not fill memory up to the message bound.
   */
  top(n: number, lines: number, maxBytes: number = this.settings.maxMessageBytes): Promise<Buffer> {
    return topBuffer(this.engine, n, lines, maxBytes);
  }

  /**
   * A deadline for what follows (ms from now, or a Date), say one long listing or retrieval: when
   * it passes, whatever is in flight fails with POP3_TIMEOUT naming it and the connection is
   * closed. It adds to the connect's `deadline`, which still holds (the earlier one wins); a new
   * call replaces the previous one, and `undefined` removes it.
   */
  setDeadline(at: number | Date | undefined): void {
    clearTimeout(this.laterDeadline);
    this.laterDeadline = undefined;
    const end = sessionEnd(at);
    if (end === undefined || this.engine.closed) return;
    const timer = setTimeout(() => this.engine.fail(deadlinePassed(end)), Math.max(0, end.getTime() - Date.now()));
    timer.unref();
    this.laterDeadline = timer;
    void this.engine.whenClosed().then(() => clearTimeout(timer));
  }

  /** Marks message `n` deleted; the server removes it at `quit()`, and only then. */
  delete(n: number): Promise<void> {
    return dele(this.engine, n);
  }

  noop(): Promise<void> {
    return noop(this.engine);
  }

  /** Unmarks every message marked deleted in this session (RSET). */
  reset(): Promise<void> {
    return rset(this.engine);
  }

  /**
   * Ends the session: QUIT, so the server applies the deletions, then the connection is closed.
   * Resolves once the server confirmed; a -ERR (some deletions failed) is thrown.
   */
  async quit(): Promise<void> {
    if (this.engine.closed) return;
    try {
      await quit(this.engine);
      await waitAtMost(this.engine.whenClosed(), QUIT_CLOSE_GRACE);
    } finally {
      this.close();
    }
  }

  /**
   * Drops the connection without QUIT. Anything marked deleted in this session stays on the server
   * (RFC 1939 section 6: no UPDATE state without QUIT).
   */
  close(): void {
    this.detachSignal();
    this.engine.fail(new Pop3UsageError('The client was closed', { code: 'POP3_CLOSED' }));
  }

  /** `await using`: QUIT, or close if QUIT fails or gets no answer in time. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.quit();
    } catch {
      this.close();
    }
  }

  /** Message `n`'s size in octets, as the server counts it (LIST n). */
  async size(n: number): Promise<number> {
    return (await listOne(this.engine, n)).size;
  }

  /**
   * Message `n`, retrieved and parsed (see parseMessage). Streamed from the socket into the
   * parser, so a message above the parser's in-memory cap is never held whole.
   */
  async fetchMessage(n: number, options?: ParseOptions): Promise<ParsedMessage> {
    const body = await this.retrieveStream(n);
    const parser = await messageParser().catch((error: unknown) => {
      body.destroy();
      throw error;
    });
    return parser.parseMessage(body, options);
  }

  /**
   * The given messages (default: every message), parsed, in order; retrieved pipelined like
   * `retrieveMany`. Breaking out of the loop leaves the session usable.
   */
  async *fetchMessages(numbers?: Iterable<number>, options?: ParseOptions): AsyncGenerator<{ n: number; message: ParsedMessage }> {
    for await (const { n, body } of this.retrieveMany(numbers)) yield { n, message: await (await messageParser()).parseMessage(body, options) };
  }

  /**
   * Marks the given messages deleted: every DELE is sent at once (pipelined when the server
   * allows it), then all replies are awaited. If any fails, the first failure (in the order
   * given) is thrown once all have answered; the others stay marked (`reset()` undoes them all).
   */
  async deleteMany(numbers: Iterable<number>): Promise<void> {
    // Checked before any is sent: a bad number in the list must not leave half of it marked.
    const valid = [...numbers].map(messageNumber);
    if (valid.length > 1) await this.pipelineIfProbed();
    const replies = await Promise.allSettled(valid.map((n) => dele(this.engine, n)));
    const failed = replies.find((reply) => reply.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /**
   * Connects step by step and reports each step with its duration: DNS, TCP, TLS (with the
   * certificate), greeting, CAPA, login (with the mechanism used) and STAT. Never throws for a
   * failure: the report's verdict names the step that failed.
   */
  static test(target: string | Pop3ClientOptions, rest: Partial<Pop3ClientOptions> = {}): Promise<ConnectionTestReport> {
    const options: Pop3ClientOptions = typeof target === 'string' ? { ...Pop3Client.fromUrl(target), ...rest } : { ...target, ...rest };
    // Loaded here: its DNS and timing modules cost every other session about 2 ms of start-up.
    return import('./connection-test.js').then(({ testConnection }) => testConnection(options, (attempt) => Pop3Client.connect(attempt)));
  }

  /**
   * Before several commands go out at once to a server that did not advertise PIPELINING: asks
   * once per session whether it answers commands that arrive together, and pipelines with a
   * small window if it does. A server that broke under the probe (closed, or answered nonsense)
   * is remembered like one that broke while pipelined: lock-step, no probe, from then on.
   */
  private async pipelineIfProbed(): Promise<void> {
    if (!this.settings.pipelining || this.engine.pipelining || this.probed !== undefined || this.engine.state !== 'transaction') return;
    const server = `${this.settings.transport.host}:${this.settings.transport.port}`;
    if (pipeliningBroken.has(server)) return;
    try {
      this.probed = await probePipelining(this.engine);
    } catch (error) {
      // Not when the caller aborted or closed: that says nothing about the server.
      if (!(error instanceof Pop3AbortError || error instanceof Pop3UsageError)) pipeliningBroken.add(server);
      throw error;
    }
    if (!this.probed) return;
    this.engine.limitPipelineDepth(UNADVERTISED_PIPELINE_DEPTH);
    this.engine.pipelining = true;
  }

  private async open(): Promise<void> {
    const greeting = await readGreeting(this.engine).catch((error: unknown) => {
      throw this.settings.tls === 'implicit' ? error : noGreetingHint(error, this.settings.transport);
    });
    this.greetingText = greeting.text;
    if (this.settings.tls !== 'starttls') {
      await this.capa();
      return;
    }
    if (this.settings.allowPlaintextAuth) {
      // Clear text will do if STLS is not there: CAPA first says whether it is, because a server
      // that does not know STLS may hang up on it rather than answer -ERR, and the session is lost.
      await this.capa();
      if (!this.caps.stls) return;
      await stls(this.engine);
      await this.upgrade();
      return;
    }
    // STLS straight after the greeting, without CAPA first (RFC 2595 section 4 allows it): the
    // capabilities that count are the ones asked over TLS, so that CAPA in the clear only cost a
    // round trip (20 ms of a fetch through a 10 ms proxy, issue 13). Nothing but STLS goes out
    // before TLS, and a server without it fails the session either way; after a -ERR, CAPA tells
    // "not offered" from "refused", so the error is the one it was when CAPA came first.
    try {
      await stls(this.engine);
    } catch (error) {
      throw await this.stlsRefused(error);
    }
    await this.upgrade();
  }

  /** What a failed STLS ends the session with: the server's -ERR if CAPA offers STLS, else POP3_TLS_UNAVAILABLE. */
  private async stlsRefused(error: unknown): Promise<unknown> {
    if (!(error instanceof Pop3ServerError)) return error;
    // A server that hangs up after its -ERR leaves no CAPA to ask: its own answer is the error.
    const asked = await this.capa().then(
      () => true,
      () => false,
    );
    if (!asked || this.caps.stls) return error;
    return new Pop3ConnectionError(
      `${this.settings.transport.host} does not offer STLS, so the connection cannot be encrypted.` +
        ' Use implicit TLS (pop3s://, port 995) if the server has it, or set allowPlaintextAuth to continue without TLS.',
      { code: 'POP3_TLS_UNAVAILABLE', retryable: false },
    );
  }

  /** After +OK to STLS: the handshake, then CAPA again (RFC 2595 section 4: what came in the clear may have been forged). */
  private async upgrade(): Promise<void> {
    const plain: Socket = this.engine.detachForUpgrade();
    try {
      this.engine.reattach(await upgradeToTls(plain, this.settings.transport));
    } catch (error) {
      this.engine.fail(error as Pop3Error);
      throw error;
    }
    this.secureNow = true;
    await this.capa();
  }

  private async loginWith(credentials: Credentials): Promise<void> {
    // With PIPELINING, the CAPA below goes out behind the login's last line instead of after its
    // +OK: one round trip fewer (see CapaBehind). Without it, the order stays lock-step.
    const capaBehind = new CapaBehind();
    this.loggedInWith = await authenticate(this.engine, credentials, {
      capaBehind,
      capabilities: this.caps,
      greeting: this.greetingText,
      secure: this.secureNow,
      allowPlaintextAuth: this.settings.allowPlaintextAuth,
      host: this.settings.transport.host,
      port: this.settings.transport.port,
    });
    // Some servers (Gmail) list TOP, UIDL and PIPELINING only after login.
    if (capaBehind.sent) this.useCapabilities(await capaBehind.promise);
    else await this.capa();
  }

  /** A URL's options; its `;AUTH=` (any case, `+APOP` for APOP: RFC 2384) checked as a mechanism name. */
  private static fromUrl(url: string): Pop3ClientOptions {
    const { auth, ...rest } = parsePop3Url(url);
    return { ...rest, auth: auth === undefined ? undefined : parseAuthMechanism(auth) };
  }

  /**
   * The credentials to log in with during connect: none when neither a user nor a secret is given.
   * A user without a secret is refused rather than taken as "do not log in": it is what an unset
   * environment variable (`password: process.env.POP3_PASSWORD`) looks like, and connecting
   * without a login would only fail later, at the first command, with POP3_INVALID_STATE.
   */
  private static connectCredentials(options: Pop3ClientOptions, auth: AuthMechanism | undefined): Credentials | undefined {
    if (options.password === undefined && options.accessToken === undefined) {
      if (options.user === undefined) return undefined;
      throw new Pop3UsageError(
        `A user (${JSON.stringify(options.user)}) was given without a password or an accessToken: both password and accessToken are undefined. ` +
          'Give one of them to log in (is an environment variable unset?), or leave out the user to connect without logging in.',
        { code: 'POP3_INVALID_ARGUMENT' },
      );
    }
    return readCredentials({ user: options.user ?? '', password: options.password, accessToken: options.accessToken, auth });
  }
}

/**
 * An implicit-TLS server (port 995) waits for the client's TLS hello and says nothing, and a
 * clear-text client waits for a greeting: the timeout was all one saw. No greeting at all is the
 * sign, so the timeout says what it probably means and what to do.
 */
function noGreetingHint(error: unknown, transport: TransportOptions): unknown {
  // The session's deadline is not a silent port: the greeting may have been arriving, slowly.
  if (!(error instanceof Pop3TimeoutError) || error.deadline !== undefined) return error;
  return new Pop3TimeoutError(
    `Timed out: no greeting from ${transport.host}:${transport.port}; is it an implicit-TLS port? ` +
      'Try implicit TLS (pop3s://, port 995), or the clear-text port (usually 110) with pop3://',
    { cause: error },
  );
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new Pop3UsageError(`${name} must be a positive number; got ${String(value)}`, { code: 'POP3_INVALID_ARGUMENT' });
  }
  return value;
}

async function waitAtMost(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  await Promise.race([promise, elapsed]);
  clearTimeout(timer);
}
