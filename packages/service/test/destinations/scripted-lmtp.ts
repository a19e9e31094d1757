/**
 * A scripted LMTP/SMTP server for the faults a real one will not produce on demand: a 4xx or 5xx
 * for chosen messages, a connection dropped in the middle of the data. `answer` decides the reply
 * after the data of each message (LMTP: one per recipient; here there is one). Helper 14b's
 * sync tests may use it too.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';

export interface ScriptedLmtp {
  readonly port: number;
  /** The messages received whole (dot-unstuffed, CRLF), in order, whatever the answer was. */
  readonly messages: Buffer[];
  /** Envelope lines received (MAIL FROM, RCPT TO), in order. */
  readonly envelope: string[];
  close(): Promise<void>;
}

/** The reply to a message after its data: '250 ...' to accept; 'drop' closes the connection without one. */
export type Answer = (message: Buffer, index: number) => string;

export async function startScriptedLmtp(answer: Answer = () => '250 2.0.0 ok', options: { lmtp?: boolean; host?: string } = {}): Promise<ScriptedLmtp> {
  const messages: Buffer[] = [];
  const envelope: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    serve(socket, answer, messages, envelope, options.lmtp !== false);
  });
  server.listen(0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    messages,
    envelope,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function serve(socket: Socket, answer: Answer, messages: Buffer[], envelope: string[], lmtp: boolean): void {
  let buffer = Buffer.alloc(0);
  let inData = false;
  let data: Buffer[] = [];
  socket.write(`220 scripted ${lmtp ? 'LMTP' : 'ESMTP'} ready\r\n`);
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
      const line = buffer.subarray(0, end);
      buffer = buffer.subarray(end + 2);
      if (inData) {
        if (line.length === 1 && line[0] === 0x2e) {
          inData = false;
          const message = Buffer.concat(data);
          data = [];
          const reply = answer(message, messages.length);
          messages.push(message);
          if (reply === 'drop') {
            socket.destroy();
            return;
          }
          socket.write(`${reply}\r\n`);
        } else {
          data.push(line[0] === 0x2e ? line.subarray(1) : line, Buffer.from('\r\n'));
        }
        continue;
      }
      const command = line.toString('latin1');
      const verb = command.split(/[ :]/)[0]?.toUpperCase();
      if (verb === 'LHLO' || verb === 'EHLO') socket.write('250-scripted\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 100000000\r\n250 ENHANCEDSTATUSCODES\r\n');
      else if (verb === 'MAIL' || verb === 'RCPT') {
        envelope.push(command);
        socket.write('250 2.1.0 ok\r\n');
      } else if (verb === 'DATA') {
        inData = true;
        socket.write('354 go ahead\r\n');
      } else if (verb === 'RSET' || verb === 'NOOP') socket.write('250 ok\r\n');
      else if (verb === 'QUIT') {
        socket.end('221 bye\r\n');
        return;
      } else socket.write('500 unknown\r\n');
    }
  });
}
