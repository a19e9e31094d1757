/**
 * The baseline of raw.ts over STLS, for the clients that must pay for TLS (`popwire fetch`,
 * mpop): greeting, STLS, the TLS handshake (Dovecot's certificate as the CA, `job.fetch.caFile`),
 * USER, PASS, every RETR at once, terminators counted, QUIT. Nothing else: no CAPA (STLS is
 * simply sent), no framing, no per-message work. `seconds` is the retrieval, `sessionSeconds`
 * connect to close, as in raw.ts. TLS sockets cannot read into one reused buffer (`onread`), so
 * each decrypted chunk arrives as its own Buffer; the counting is raw.ts's.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { peakRssKiB, readJob, type Result } from './common.ts';

const job = readJob();
const LF = 0x0a;
const TERMINATOR = Buffer.from('\r\n.\r\n', 'latin1');
/** The last octets of the previous read, oldest first; `tailLength` of them are valid (at most 4). */
const tail = new Uint8Array(4);
let tailLength = 0;

type Phase = 'greeting' | 'stls' | 'user' | 'pass' | 'retrieving' | 'quit';
let phase: Phase = 'greeting';
let seen = 0;
let bytes = 0;
let retrievalStarted = 0n;
let retrievalEnded = 0n;
let lineStart = true;
let failed: Error | undefined;

const startRssMiB = process.memoryUsage.rss() / 2 ** 20;
const cpu = process.cpuUsage();
const started = process.hrtime.bigint();

const plain = connect({ host: job.host, port: job.port, noDelay: true });
let socket: Socket = plain;
const onPlain = (chunk: Buffer) => onRead(chunk.length, chunk);
plain.on('data', onPlain);

/** Called with each read, in the same buffer every time. */
function onRead(length: number, buffer: Buffer): boolean {
  if (phase === 'retrieving') {
    count(buffer, length);
    return true;
  }
  // Login and QUIT are lock-step and tiny: each line is checked for +OK at its first octet.
  for (let i = 0; i < length; i++) {
    if (lineStart && buffer[i] !== 0x2b /* + */) failed ??= new Error(`${phase}: ${buffer.toString('latin1', i, length).trim()}`);
    lineStart = buffer[i] === LF;
    if (lineStart) next();
  }
  return true;
}

/** A status line ended: the next step of the session. */
function next(): void {
  if (failed !== undefined) {
    socket.destroy();
    return;
  }
  switch (phase) {
    case 'greeting':
      phase = 'stls';
      socket.write('STLS\r\n');
      break;
    case 'stls': {
      plain.off('data', onPlain);
      const secure = connectTls({ socket: plain, ca: readFileSync(job.fetch?.caFile as string), servername: 'localhost' });
      secure.on('secureConnect', () => {
        phase = 'user';
        secure.write(`USER ${job.user}\r\n`);
      });
      secure.on('data', (chunk: Buffer) => onRead(chunk.length, chunk));
      secure.on('error', (error) => (failed ??= error));
      secure.on('close', () => plain.destroy());
      socket = secure;
      break;
    }
    case 'user':
      phase = 'pass';
      socket.write(`PASS ${job.password}\r\n`);
      break;
    case 'pass': {
      phase = 'retrieving';
      let commands = '';
      for (let n = 1; n <= job.count; n++) commands += `RETR ${n}\r\n`;
      retrievalStarted = process.hrtime.bigint();
      socket.write(commands);
      break;
    }
    case 'quit':
      break;
  }
}

/** Counts the terminators in one read, those that straddle the previous read included. */
function count(buffer: Buffer, length: number): void {
  bytes += length;
  // A terminator starting `back` octets before this read: its first `back` octets are the tail's.
  for (let back = tailLength; back >= 1; back--) {
    if (5 - back > length) continue;
    let match = true;
    for (let k = 0; k < 5 && match; k++) {
      const byte = k < back ? tail[tailLength - back + k] : buffer[k - back];
      match = byte === TERMINATOR[k];
    }
    if (match) seen++;
  }
  const view = length === buffer.length ? buffer : buffer.subarray(0, length);
  for (let i = view.indexOf(TERMINATOR); i !== -1; i = view.indexOf(TERMINATOR, i + 5)) seen++;
  // Keep the last four octets seen (across reads shorter than four, too).
  for (let i = Math.max(0, length - 4); i < length; i++) {
    if (tailLength === 4) tail.copyWithin(0, 1);
    else tailLength++;
    tail[tailLength - 1] = buffer[i] as number;
  }
  if (seen >= job.count) {
    retrievalEnded = process.hrtime.bigint();
    phase = 'quit';
    lineStart = true;
    socket.write('QUIT\r\n');
  }
}

await new Promise<void>((resolve, reject) => {
  plain.on('close', () => resolve());
  plain.on('error', reject);
});
const ended = process.hrtime.bigint();
const { user, system } = process.cpuUsage(cpu);
if (failed !== undefined) throw failed;
if (seen !== job.count) throw new Error(`counted ${seen} terminators, expected ${job.count}`);

const result: Result = {
  messages: seen,
  bytes,
  seconds: Number(retrievalEnded - retrievalStarted) / 1e9,
  sessionSeconds: Number(ended - started) / 1e9,
  cpuSeconds: (user + system) / 1e6,
  peakRssMiB: peakRssKiB() / 1024,
  startRssMiB,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
