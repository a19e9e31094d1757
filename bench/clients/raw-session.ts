/**
 * The raw baselines' one session (raw.ts in clear text, raw-tls.ts over STLS): as fast as any
 * client can go against this server. It logs in with USER and PASS, writes every RETR at once,
 * and counts terminators (CRLF . CRLF) up to the last one; no framing, no unstuffing, no
 * per-message work at all. Not a usable client; a ceiling to measure real ones against.
 *
 * A true ceiling (issue 13): in clear text the socket reads into one reused 1 MiB buffer (net's
 * `onread`), so no chunk is allocated; terminators are found with indexOf inside a read, and the
 * ones that straddle two reads are found by comparing the previous read's last four octets, kept
 * in a four-byte array, with the next read's first ones. Nothing is allocated per read or per
 * message. Over STLS (greeting, STLS, the handshake with Dovecot's certificate as the CA, then the
 * same session; no CAPA: STLS is simply sent) a TLS socket cannot read into one reused buffer, so
 * each decrypted chunk arrives as its own Buffer; the counting is the same.
 *
 * `seconds` is the retrieval (first RETR written to the last terminator read), as for the other
 * clients; `sessionSeconds` is connect to close, QUIT answered (scenarios f and h).
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { peakRssKiB, readJob, type Result } from './common.ts';

const LF = 0x0a;
const TERMINATOR = Buffer.from('\r\n.\r\n', 'latin1');

type Phase = 'greeting' | 'stls' | 'user' | 'pass' | 'retrieving' | 'quit';

/** Runs the session of the job in argv and prints its Result line. */
export async function rawSession({ stls }: { readonly stls: boolean }): Promise<void> {
  const job = readJob();
  /** The last octets of the previous read, oldest first; `tailLength` of them are valid (at most 4). */
  const tail = new Uint8Array(4);
  let tailLength = 0;
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

  /** Called with each read (in clear text, in the same buffer every time). */
  const onRead = (length: number, buffer: Buffer): boolean => {
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
  };
  const onChunk = (chunk: Buffer) => onRead(chunk.length, chunk);

  const plain = stls
    ? connect({ host: job.host, port: job.port, noDelay: true }).on('data', onChunk)
    : connect({ host: job.host, port: job.port, noDelay: true, onread: { buffer: Buffer.allocUnsafe(1 << 20), callback: onRead } });
  let socket: Socket = plain;

  /** A status line ended: the next step of the session. */
  function next(): void {
    if (failed !== undefined) {
      socket.destroy();
      return;
    }
    switch (phase) {
      case 'greeting':
        phase = stls ? 'stls' : 'user';
        socket.write(stls ? 'STLS\r\n' : `USER ${job.user}\r\n`);
        break;
      case 'stls': {
        plain.off('data', onChunk);
        const secure = connectTls({ socket: plain, ca: readFileSync(job.fetch?.caFile as string), servername: 'localhost' });
        secure.on('secureConnect', () => {
          phase = 'user';
          secure.write(`USER ${job.user}\r\n`);
        });
        secure.on('data', onChunk);
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
      case 'retrieving':
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
}
