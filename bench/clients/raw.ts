/**
 * The baseline: as fast as any client can go against this server. One socket logs in, writes
 * every RETR at once, and counts octets up to the last terminator; no framing, no unstuffing,
 * no per-message work at all. Not a usable client; a ceiling to measure real ones against.
 */
import { connect, type Socket } from 'node:net';
import { measure, readJob } from './common.ts';

const job = readJob();
const socket = connect(job.port, job.host);
socket.setNoDelay(true);

/** Resolves with the next status line (login is lock-step and tiny, so a simple reader will do). */
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

await line(socket);
socket.write(`USER ${job.user}\r\n`);
await line(socket);
socket.write(`PASS ${job.password}\r\n`);
await line(socket);

const TERMINATOR = Buffer.from('\r\n.\r\n');
await measure(
  () =>
    new Promise((resolve) => {
      let commands = '';
      for (let n = 1; n <= job.count; n++) commands += `RETR ${n}\r\n`;
      let seen = 0;
      let bytes = 0;
      let tail = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        // Search the seam too: a terminator may straddle two chunks.
        const window = tail.length > 0 ? Buffer.concat([tail, chunk.subarray(0, 4)]) : Buffer.alloc(0);
        for (let i = window.indexOf(TERMINATOR); i !== -1; i = window.indexOf(TERMINATOR, i + 1)) {
          if (i < tail.length && i + TERMINATOR.length > tail.length) seen++;
        }
        for (let i = chunk.indexOf(TERMINATOR); i !== -1; i = chunk.indexOf(TERMINATOR, i + 1)) seen++;
        tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - 4)));
        if (seen >= job.count) {
          socket.write('QUIT\r\n');
          socket.end();
          resolve({ messages: seen, bytes });
        }
      });
      socket.write(commands);
    }),
);
socket.destroy();
