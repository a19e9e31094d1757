import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/**
 * A POP3 server whose every byte a test writes: for the faults a real server will not produce on
 * demand (a dropped connection mid-body, a stall, bare LF, an endless line, a lie in CAPA).
 *
 * Each accepted connection runs `script(conn)`. A script that throws (an `expect` that did not
 * match, say) is recorded and rethrown by `close()`, so a test cannot pass while the client sent
 * something the script did not expect. So is a script cut short: one still waiting for a line
 * when the client closed the connection (or when `close()` did), since the exchange it describes
 * did not happen. A script that expects the client to close says so with `await conn.closed()`.
 */
export interface ScriptedConnection {
  readonly socket: Socket;
  /** Writes bytes as they are: the script chooses CRLF or LF. */
  send(data: string | Buffer): void;
  /** Writes `line` + CRLF. */
  reply(line: string): void;
  /**
   * Next line from the client, without its line ending. Rejects if the client closes first, and
   * that fails the test at `close()`: the script did not run to its end.
   */
  line(): Promise<string>;
  /**
   * Next line, or undefined if the client closes first: for a script to which a close is as
   * good an end as any command (a mailbox serving whatever comes, until QUIT or a drop).
   */
  lineOrClose(): Promise<string | undefined>;
  /** Reads a line and checks it; returns it. */
  expect(expected: string | RegExp): Promise<string>;
  /** Resolves when the client closes the connection. */
  closed(): Promise<void>;
  /** Whether the client sent anything not yet read by line() or expect(). */
  hasInput(): boolean;
  /** Upgrades the server side to TLS (after answering +OK to STLS). */
  startTls(credentials: { key: string | Buffer; cert: string | Buffer }): Promise<void>;
}

export interface ScriptedServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Lines received from clients, in order, across connections. */
  readonly received: string[];
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export type Script = (conn: ScriptedConnection) => Promise<void>;

/**
 * Sends `bytes` one at a time, 50 ms apart, until the client closes: a slow-drip server, whose
 * every byte restarts a per-reply timeout, so only an overall deadline ends it.
 */
export async function drip(conn: ScriptedConnection, bytes: string): Promise<void> {
  let at = 0;
  const timer = setInterval(() => {
    if (!conn.socket.destroyed) conn.send(bytes[at++ % bytes.length] as string);
  }, 50);
  try {
    await conn.closed();
  } finally {
    clearInterval(timer);
  }
}

/**
 * The opening most scripts share: greeting, CAPA, USER alice / PASS secret, CAPA again (the
 * client asks after login), all in plain text, advertising `caps`.
 */
export async function acceptLogin(conn: ScriptedConnection, caps: string[] = ['USER', 'UIDL', 'TOP']): Promise<void> {
  conn.reply('+OK scripted ready');
  const capa = () => conn.send(`+OK\r\n${caps.map((c) => `${c}\r\n`).join('')}.\r\n`);
  await conn.expect('CAPA');
  capa();
  await conn.expect('USER alice');
  conn.reply('+OK');
  await conn.expect('PASS secret');
  conn.reply('+OK logged in');
  await conn.expect('CAPA');
  capa();
}

export async function startScriptedServer(script: Script): Promise<ScriptedServer> {
  const received: string[] = [];
  const errors: unknown[] = [];
  const sockets = new Set<Socket>();
  const running = new Set<Promise<void>>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const conn = new Connection(socket, received);
    const run = script(conn)
      .catch((error: unknown) => {
        errors.push(error);
      })
      .finally(() => running.delete(run));
    running.add(run);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    host: '127.0.0.1',
    port: address.port,
    received,
    get connections() {
      return connections;
    },
    async close() {
      if (!server.listening) return;
      server.close();
      for (const socket of sockets) socket.destroy();
      await Promise.allSettled([...running]);
      if (errors.length > 0) throw errors[0];
    },
  };
}

class ClientClosed extends Error {}

class Connection implements ScriptedConnection {
  socket: Socket;
  private buffer = '';
  private waiters: Array<() => void> = [];
  private ended = false;
  private lastLine: string | undefined;

  constructor(
    socket: Socket,
    private readonly received: string[],
  ) {
    this.socket = socket;
    this.listen(socket);
  }

  send(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  reply(line: string): void {
    this.send(`${line}\r\n`);
  }

  line(): Promise<string> {
    return this.read('a line');
  }

  async lineOrClose(): Promise<string | undefined> {
    try {
      return await this.read('a line');
    } catch (error) {
      if (error instanceof ClientClosed) return undefined;
      throw error;
    }
  }

  private async read(waitingFor: string): Promise<string> {
    for (;;) {
      const lf = this.buffer.indexOf('\n');
      if (lf !== -1) {
        const line = this.buffer.slice(0, lf).replace(/\r$/, '');
        this.buffer = this.buffer.slice(lf + 1);
        this.received.push(line);
        this.lastLine = line;
        return line;
      }
      if (this.ended) {
        const last = this.lastLine;
        throw new ClientClosed(
          `scripted server: the connection closed while the script waited for ${waitingFor} (last line received: ${last === undefined ? 'none' : JSON.stringify(last)}); ` +
            'the script did not run to its end (end it with `await conn.closed()` if the client is meant to close)',
        );
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async expect(expected: string | RegExp): Promise<string> {
    const line = await this.read(String(expected));
    const ok = typeof expected === 'string' ? line === expected : expected.test(line);
    if (!ok) throw new Error(`scripted server expected ${String(expected)}, got ${JSON.stringify(line)}`);
    return line;
  }

  hasInput(): boolean {
    return this.buffer.length > 0;
  }

  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async startTls(credentials: { key: string | Buffer; cert: string | Buffer }): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    plain.removeAllListeners('close');
    const secure = new TLSSocket(plain, { isServer: true, ...credentials });
    this.socket = secure;
    this.listen(secure);
    await once(secure, 'secure');
  }

  private listen(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => {
      this.buffer += data;
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', () => {});
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
