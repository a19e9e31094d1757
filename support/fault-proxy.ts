/**
 * A TCP proxy in front of a real POP3 server (Dovecot's plain port) that drops the connection at
 * a chosen point of the conversation, for tests of what a client or a sync does when the network
 * fails there. It knows nothing of the code under test: it reads the POP3 dialogue itself.
 *
 * A fault names a command and its K-th occurrence in the session (1-based) and one of these points:
 *   `before`    the command reaches the proxy and is not forwarded (the commands before it are);
 *   `sent`      the command is forwarded, and nothing more: no reply to it reaches the client;
 *   `reply`     `bytes` octets of the server's reply to it (status line included) reach the client;
 *   `replied`   its whole reply reaches the client, and nothing after it;
 *   `handshake` (STLS only) its +OK reaches the client, whose first TLS handshake bytes reach the
 *               proxy and go no further: the connection drops mid-handshake.
 * The greeting counts as the command `greeting` (`before`: the connection drops at once, before
 * the server's first byte reaches the client). A line the client sends inside an AUTH exchange
 * (a SASL response, after a `+` challenge) counts as the command `SASL`.
 * At that point both connections are ended: each side receives what was passed to it so far, then
 * end of file. The server thus loses its client without a QUIT (RFC 1939 section 6: no UPDATE
 * state, so its DELEs are rolled back), and the client its server in mid-conversation. Whatever
 * else either side sends is read and thrown away. A FIN rather than a reset, because a reset may
 * discard bytes the kernel has not yet delivered: with it, `sent` could not promise that the
 * server got the command, nor `reply` that the client got exactly `bytes` octets. So a `sent`
 * QUIT is carried out by the server while the client never hears back.
 *
 * Pipelining clients send many commands in one write: the client-to-server stream is split into
 * CRLF-terminated lines and forwarded line by line. The server-to-client stream is framed by
 * pairing each client line with one reply, in order: after the greeting, every line a client
 * sends gets exactly one reply, SASL continuations included (`+ ...` answers each AUTH step).
 * A reply is multi-line when it is +OK to RETR, TOP, CAPA, or UIDL or LIST without argument.
 *
 * STLS: with `tls` (the proxy's own certificate, which the client must trust), the proxy answers
 * the client's handshake itself after the server's +OK, and makes its own TLS connection to the
 * server on the same socket; it keeps reading the dialogue in the clear between the two. Without
 * `tls`, a client's STLS ends in a failed handshake.
 *
 * `onClientLine`, if set, is called with each line the client sends, before it is forwarded; the
 * line (and every line after it) waits until the promise it returns settles. A test checks there
 * what must hold at the moment a command reaches the server (a DELE only once its message is
 * committed, say).
 *
 * Faults apply to connections in the order they are opened: `failOnce(fault)` arms the next
 * connection that has none; connections with no fault are passed through untouched, so the clean
 * run after a faulty one goes through.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';

export type FaultCommand = 'greeting' | 'CAPA' | 'STLS' | 'USER' | 'PASS' | 'AUTH' | 'SASL' | 'STAT' | 'UIDL' | 'LIST' | 'RETR' | 'TOP' | 'DELE' | 'QUIT';

export type FaultPoint =
  | { readonly at: 'before' }
  | { readonly at: 'sent' }
  | { readonly at: 'reply'; readonly bytes: number }
  | { readonly at: 'replied' }
  | { readonly at: 'handshake' };

export type Fault = FaultPoint & {
  readonly command: FaultCommand;
  /** Which occurrence of `command` in the session, from 1. */
  readonly occurrence: number;
};

/** An armed fault; `fired` says whether its connection reached the point and was dropped there. */
export interface ArmedFault {
  readonly fault: Fault;
  readonly fired: boolean;
}

/** A line from the client, as the proxy names it. */
export interface ClientLine {
  readonly command: FaultCommand | string;
  readonly line: string;
  /** Which connection, from 1, in the order they were opened. */
  readonly connection: number;
}

export interface FaultProxyOptions {
  /** The certificate the proxy answers a client's STLS with. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
}

export interface FaultProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Called before each client line is forwarded; the line waits for the promise it returns. */
  onClientLine: ((line: ClientLine) => void | Promise<void>) | undefined;
  /** Arms the next connection that opens (after those already armed) with `fault`. */
  failOnce(fault: Fault): ArmedFault;
  /** Resolves once every connection so far has closed on both sides (the server is done with it). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

export async function startFaultProxy(target: { host: string; port: number }, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const pending: Array<{ fault: Fault; fired: boolean }> = [];
  const open = new Set<Promise<void>>();
  const sockets = new Set<Socket>();
  let connections = 0;

  const proxy: FaultProxy = {
    host: '127.0.0.1',
    port: 0,
    onClientLine: undefined,
    get connections() {
      return connections;
    },
    failOnce(fault) {
      const armed = { fault, fired: false };
      pending.push(armed);
      return armed;
    },
    async settled() {
      while (open.size > 0) await Promise.all([...open]);
    },
    async close() {
      server.close();
      for (const socket of sockets) socket.destroy();
      await Promise.all([...open]);
    },
  };

  const server: Server = createServer((client) => {
    const index = ++connections;
    const upstream = connect(target);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
    }
    const closed = Promise.all([once(client, 'close'), once(upstream, 'close')]).then(() => {
      sockets.delete(client);
      sockets.delete(upstream);
    });
    open.add(closed);
    void closed.finally(() => open.delete(closed));
    // Either side gone (a reset included, which emits no 'end') ends the other.
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
    new Conversation(client, upstream, pending.shift(), index, options, (line) => proxy.onClientLine?.(line));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  (proxy as { port: number }).port = (server.address() as AddressInfo).port;
  return proxy;
}

/** One expected reply: the client line it answers, and whether it is the faulted command's. */
interface Expected {
  readonly command: string;
  readonly multiline: (status: string) => boolean;
  readonly target: boolean;
}

const MULTILINE_ALWAYS = new Set(['RETR', 'TOP', 'CAPA']);
const MULTILINE_BARE = new Set(['UIDL', 'LIST']);
/** Occurrence 0 never comes: a connection with no fault. */
const NO_FAULT: Fault = { command: 'greeting', occurrence: 0, at: 'before' };

class Conversation {
  private readonly expected: Expected[];
  private readonly seen = new Map<string, number>();
  private lineTail: Buffer = Buffer.alloc(0);
  private dropped = false;
  /** A hook's promise the next line waits for. */
  private waiting = false;
  /** Inside an AUTH exchange: the client's lines are SASL responses. */
  private inAuth = false;
  /** After +OK to STLS with a `handshake` fault: the client's next bytes are its handshake. */
  private handshakeDue = false;
  // Framing of the server's stream: the status line so far, then body-line states.
  private state: 'status' | 'line-start' | 'dot' | 'dot-cr' | 'mid-line' = 'status';
  private status = '';
  private lastStatus = '';
  private replyBytes = 0;
  private readonly onClientData = (chunk: Buffer) => this.fromClient(chunk);
  private readonly onServerData = (chunk: Buffer) => this.fromServer(chunk);
  private readonly onClientEnd = () => this.upstream.end();
  private readonly onServerEnd = () => this.client.end();

  constructor(
    private client: Socket,
    private upstream: Socket,
    private readonly armed: { fault: Fault; fired: boolean } | undefined,
    private readonly index: number,
    private readonly options: FaultProxyOptions,
    private readonly hook: (line: ClientLine) => void | Promise<void>,
  ) {
    const greeting = this.fault.command === 'greeting' && this.fault.occurrence === 1;
    this.expected = [{ command: 'greeting', multiline: () => false, target: greeting }];
    this.attach();
    if (greeting && this.fault.at === 'before') this.drop();
  }

  private get fault(): Fault {
    return this.armed?.fault ?? NO_FAULT;
  }

  private attach(): void {
    this.client.on('data', this.onClientData);
    this.upstream.on('data', this.onServerData);
    this.client.on('end', this.onClientEnd);
    this.upstream.on('end', this.onServerEnd);
  }

  private detach(): void {
    this.client.off('data', this.onClientData);
    this.upstream.off('data', this.onServerData);
    this.client.off('end', this.onClientEnd);
    this.upstream.off('end', this.onServerEnd);
  }

  private fromClient(chunk: Buffer): void {
    if (this.dropped) return;
    if (this.handshakeDue) return this.drop();
    this.lineTail = this.lineTail.length > 0 ? Buffer.concat([this.lineTail, chunk]) : chunk;
    this.pump();
  }

  /** Forwards the complete lines received, one by one, each after the hook has seen it. */
  private pump(): void {
    while (!this.dropped && !this.waiting) {
      const lf = this.lineTail.indexOf(LF);
      if (lf === -1) return;
      const line = this.lineTail.subarray(0, lf + 1);
      this.lineTail = Buffer.from(this.lineTail.subarray(lf + 1));
      const text = line.toString('latin1').replace(/\r?\n$/, '');
      const [verb = '', ...args] = text.split(' ');
      // A SASL response answers a `+` challenge, so the client sends one only once the line before
      // it was answered: a line behind an AUTH or SASL line still unanswered is a new command,
      // pipelined behind the login's last line (the CAPA after login, say).
      const answered = !this.expected.some((e) => e.command === 'AUTH' || e.command === 'SASL');
      const command = this.inAuth && answered ? 'SASL' : verb.toUpperCase();
      if (command === 'AUTH') this.inAuth = true;
      const count = (this.seen.get(command) ?? 0) + 1;
      this.seen.set(command, count);
      const target = command === this.fault.command && count === this.fault.occurrence;
      const forward = () => {
        if (this.dropped) return;
        if (target && this.fault.at === 'before') return this.drop();
        const bare = args.length === 0;
        this.expected.push({
          command,
          multiline: (status) => status.startsWith('+OK') && (MULTILINE_ALWAYS.has(command) || (bare && MULTILINE_BARE.has(command))),
          target,
        });
        this.upstream.write(line);
        if (target && this.fault.at === 'sent') this.drop();
      };
      const held = this.hook({ command, line: text, connection: this.index });
      if (held === undefined) {
        forward();
        continue;
      }
      this.waiting = true;
      void held.finally(() => {
        this.waiting = false;
        forward();
        this.pump();
      });
    }
  }

  /** Passes the server's bytes on, up to the fault's point if it lies in this chunk. */
  private fromServer(chunk: Buffer): void {
    if (this.dropped) return;
    const cut = this.cutPoint(chunk);
    if (cut === undefined) {
      this.client.write(chunk);
      return;
    }
    const passed = chunk.subarray(0, cut.end);
    if (cut.then === 'drop') return this.drop(passed);
    this.client.write(passed);
    if (cut.then === 'await-handshake') this.handshakeDue = true;
    else this.startTls();
  }

  /** Where in `chunk` the connection must be cut or upgraded, or undefined to pass it all. */
  private cutPoint(chunk: Buffer): { end: number; then: 'drop' | 'tls' | 'await-handshake' } | undefined {
    let i = 0;
    while (i < chunk.length) {
      const current = this.expected[0];
      if (current === undefined) return undefined; // Unsolicited bytes: the client's problem, not ours.
      const from = i;
      const done = this.frame(chunk, i);
      i = done.index;
      if (current.target && this.fault.at === 'reply') {
        const left = this.fault.bytes - this.replyBytes;
        if (i - from >= left) return { end: from + left, then: 'drop' };
      }
      this.replyBytes += i - from;
      if (done.complete) {
        this.expected.shift();
        this.replyBytes = 0;
        if ((current.command === 'AUTH' || current.command === 'SASL') && !/^\+(\s|$)/.test(this.lastStatus)) this.inAuth = false;
        if (current.target && this.fault.at === 'replied') return { end: i, then: 'drop' };
        if (current.command === 'STLS' && this.lastStatus.startsWith('+OK')) {
          return { end: i, then: current.target && this.fault.at === 'handshake' ? 'await-handshake' : 'tls' };
        }
      }
    }
    return undefined;
  }

  /**
   * After +OK to STLS: TLS on both legs, the proxy in the middle with its own certificate. The
   * server's certificate is not what is under test here, so it is not checked.
   */
  private startTls(): void {
    this.detach();
    if (this.options.tls === undefined) return this.drop();
    const client = new TLSSocket(this.client, { isServer: true, key: this.options.tls.key, cert: this.options.tls.cert });
    const upstream = tlsConnect({ socket: this.upstream, rejectUnauthorized: false });
    for (const socket of [client, upstream]) socket.on('error', () => {});
    this.client = client;
    this.upstream = upstream;
    this.attach();
  }

  /** Advances the reply framing from `i`: to the end of the current reply, or of the chunk. */
  private frame(chunk: Buffer, i: number): { index: number; complete: boolean } {
    while (i < chunk.length) {
      switch (this.state) {
        case 'status': {
          const lf = chunk.indexOf(LF, i);
          const end = lf === -1 ? chunk.length : lf + 1;
          if (this.status.length < 8) this.status += chunk.toString('latin1', i, Math.min(end, i + 8));
          if (lf === -1) return { index: end, complete: false };
          const multiline = this.expected[0]!.multiline(this.status);
          this.lastStatus = this.status;
          this.status = '';
          if (!multiline) return { index: end, complete: true };
          this.state = 'line-start';
          i = end;
          break;
        }
        case 'line-start':
          this.state = chunk[i] === DOT ? 'dot' : chunk[i] === LF ? 'line-start' : 'mid-line';
          i++;
          break;
        case 'dot':
          // ".CRLF" ends the block (a sloppy ".LF" too); anything else is a dot-stuffed line.
          if (chunk[i] === LF) return this.endBlock(i + 1);
          this.state = chunk[i] === CR ? 'dot-cr' : 'mid-line';
          i++;
          break;
        case 'dot-cr':
          if (chunk[i] === LF) return this.endBlock(i + 1);
          this.state = 'mid-line';
          break;
        case 'mid-line': {
          const lf = chunk.indexOf(LF, i);
          if (lf === -1) return { index: chunk.length, complete: false };
          this.state = 'line-start';
          i = lf + 1;
          break;
        }
      }
    }
    return { index: i, complete: false };
  }

  private endBlock(index: number): { index: number; complete: boolean } {
    this.state = 'status';
    return { index, complete: true };
  }

  /** Ends both sides, the client's after `last`; what either sends afterwards is discarded. */
  private drop(last?: Buffer): void {
    if (this.armed !== undefined) this.armed.fired = true;
    this.dropped = true;
    this.handshakeDue = false;
    if (last === undefined) this.client.end();
    else this.client.end(last);
    this.upstream.end();
  }
}
