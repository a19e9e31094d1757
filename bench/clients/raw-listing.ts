/**
 * The listing baseline for scenario (d): the cheapest session that learns what a mailbox holds.
 * One socket connects, logs in (lock-step, tiny), writes UIDL, LIST and QUIT at once (or only
 * the commands `job.commands` names, then QUIT) and reads until the server closes. No parsing.
 * Timed as a whole session, from connect to close, like a sync run with nothing new, which also
 * connects and logs in inside its time.
 */
import { connect, type Socket } from 'node:net';
import { peakRssKiB, type Result } from './common.ts';

interface ListingJob {
  host: string;
  port: number;
  user: string;
  password: string;
  count: number;
  /** Sent pipelined after login, before QUIT. Default UIDL and LIST. */
  commands?: string[];
}

const job = JSON.parse(process.argv[2] ?? '') as ListingJob;
const commands = job.commands ?? ['UIDL', 'LIST'];

/** Resolves with the next status line (same simple reader as raw.ts). */
function line(sock: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const lf = text.indexOf('\n');
      if (lf === -1) return;
      sock.off('data', onData);
      if (lf + 1 < text.length) sock.unshift(Buffer.from(text.slice(lf + 1), 'latin1'));
      if (!text.startsWith('+OK')) reject(new Error(text.trim()));
      else resolve(text.slice(0, lf));
    };
    sock.on('data', onData);
  });
}

const startRssMiB = process.memoryUsage.rss() / 2 ** 20;
const started = process.hrtime.bigint();
const socket = connect(job.port, job.host);
socket.setNoDelay(true);
await line(socket);
socket.write(`USER ${job.user}\r\n`);
await line(socket);
socket.write(`PASS ${job.password}\r\n`);
await line(socket);
const loggedIn = process.hrtime.bigint();

let bytes = 0;
let tail = '';
socket.on('data', (chunk: Buffer) => {
  bytes += chunk.length;
  tail = (tail + chunk.toString('latin1')).slice(-64);
});
const closed = new Promise<void>((resolve, reject) => {
  socket.on('close', () => resolve());
  socket.on('error', reject);
});
socket.write(commands.map((c) => `${c}\r\n`).join('') + 'QUIT\r\n');
await closed;
const ended = process.hrtime.bigint();
// Dovecot answers QUIT with "+OK Logging out." and then closes: anything else means the session went wrong.
if (!/\+OK[^\r\n]*\r\n$/.test(tail)) throw new Error(`unexpected end of the listing session: ${JSON.stringify(tail)}`);

const peakRssMiB = peakRssKiB() / 1024;
const result: Result & { loginSeconds: number } = {
  messages: job.count,
  bytes,
  seconds: Number(ended - started) / 1e9,
  peakRssMiB,
  startRssMiB,
  loginSeconds: Number(loggedIn - started) / 1e9,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
