/**
 * A TCP proxy in front of a real POP3 server (Dovecot's plain port) that drops the connection at
 * a chosen point of the conversation, for tests of what a client or a sync does when the network
 * fails there. It knows nothing of the code under test: it reads the POP3 dialogue itself.
 *
 * A fault names a command and its K-th occurrence in the session (1-based) and one of four points:
 *   `before`  the command reaches the proxy and is not forwarded (the commands before it are);
 *   `sent`    the command is forwarded, and nothing more: no reply to it reaches the client;
 *   `reply`   `bytes` octets of the server's reply to it (status line included) reach the client;
 *   `replied` its whole reply reaches the client, and nothing after it.
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
 * Plain text only: there is no STLS here.
 *
 * Faults apply to connections in the order they are opened: `failOnce(fault)` arms the next
 * connection that has none; connections with no fault are passed through untouched, so the clean
 * run after a faulty one goes through.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type FaultCommand = 'RETR' | 'DELE' | 'QUIT' | 'UIDL' | 'LIST' | 'TOP';

export type FaultPoint =
  | { readonly at: 'before' }
  | { readonly at: 'sent' }
  | { readonly at: 'reply'; readonly bytes: number }
  | { readonly at: 'replied' };

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

export interface FaultProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Arms the next connection that opens (after those already armed) with `fault`. */
  failOnce(fault: Fault): ArmedFault;
  /** Resolves once every connection so far has closed on both sides (the server is done with it). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const pending: Array<{ fault: Fault; fired: boolean }> = [];
  const open = new Set<Promise<void>>();
  const sockets = new Set<Socket>();
  let connections = 0;

  const server: Server = createServer((client) => {
    connections++;
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
    const armed = pending.shift();
    if (armed === undefined) {
      client.pipe(upstream);
      upstream.pipe(client);
    } else {
      new FaultyConnection(client, upstream, armed);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
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
}

/** One expected reply: the client line it answers, and whether it is the faulted command's. */
interface Expected {
  readonly multiline: (status: string) => boolean;
  readonly target: boolean;
}

const MULTILINE_ALWAYS = new Set(['RETR', 'TOP', 'CAPA']);
const MULTILINE_BARE = new Set(['UIDL', 'LIST']);

class FaultyConnection {
  private readonly expected: Expected[] = [{ multiline: () => false, target: false }];
  private seen = 0;
  private lineTail = Buffer.alloc(0);
  private dropped = false;
  // Framing of the server's stream: the status line so far, then body-line states.
  private state: 'status' | 'line-start' | 'dot' | 'dot-cr' | 'mid-line' = 'status';
  private status = '';
  private replyBytes = 0;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    private readonly armed: { fault: Fault; fired: boolean },
  ) {
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => this.fromServer(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  }

  private get fault(): Fault {
    return this.armed.fault;
  }

  private fromClient(chunk: Buffer): void {
    if (this.dropped) return;
    const data = this.lineTail.length > 0 ? Buffer.concat([this.lineTail, chunk]) : chunk;
    let start = 0;
    for (let lf = data.indexOf(LF); lf !== -1; lf = data.indexOf(LF, start)) {
      const line = data.subarray(start, lf + 1);
      start = lf + 1;
      const text = line.toString('latin1').replace(/\r?\n$/, '');
      const [verb = '', ...args] = text.split(' ');
      const command = verb.toUpperCase();
      const target = command === this.fault.command && ++this.seen === this.fault.occurrence;
      if (target && this.fault.at === 'before') return this.drop();
      const bare = args.length === 0;
      this.expected.push({
        multiline: (status) => status.startsWith('+OK') && (MULTILINE_ALWAYS.has(command) || (bare && MULTILINE_BARE.has(command))),
        target,
      });
      this.upstream.write(line);
      if (target && this.fault.at === 'sent') return this.drop();
    }
    this.lineTail = Buffer.from(data.subarray(start));
  }

  /** Passes the server's bytes on, up to the fault's point if it lies in this chunk. */
  private fromServer(chunk: Buffer): void {
    if (this.dropped) return;
    const end = this.cutPoint(chunk);
    if (end === undefined) {
      this.client.write(chunk);
      return;
    }
    this.drop(chunk.subarray(0, end));
  }

  /** Where in `chunk` the connection must be cut, or undefined to pass it all. */
  private cutPoint(chunk: Buffer): number | undefined {
    let i = 0;
    while (i < chunk.length) {
      const current = this.expected[0];
      if (current === undefined) return undefined; // Unsolicited bytes: the client's problem, not ours.
      const from = i;
      const done = this.frame(chunk, i);
      i = done.index;
      if (current.target && this.fault.at === 'reply') {
        const left = this.fault.bytes - this.replyBytes;
        if (i - from >= left) return from + left;
      }
      this.replyBytes += i - from;
      if (done.complete) {
        this.expected.shift();
        this.replyBytes = 0;
        if (current.target && this.fault.at === 'replied') return i;
      }
    }
    return undefined;
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

  /** Ends both sides, the client's after `last`; the 'data' listeners keep reading and discard the rest. */
  private drop(last?: Buffer): void {
    this.armed.fired = true;
    this.dropped = true;
    if (last === undefined) this.client.end();
    else this.client.end(last);
    this.upstream.end();
  }
}
