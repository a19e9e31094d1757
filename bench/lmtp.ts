/**
 * Scenario (k) (issue 14): 10,000 messages of about 4 KB fetched from Dovecot POP3 and delivered
 * into Dovecot LMTP (one private Dovecot serving both, on loopback), in one run:
 *
 * - the raw limit: the messages already in memory, sent by a minimal LMTP client over one
 *   connection, MAIL/RCPT/DATA pipelined (Dovecot's LMTP offers PIPELINING), one message after
 *   another: what Dovecot's delivery itself allows, with no POP3 at all;
 * - `popwire fetch --lmtp` (the bin), POP3 over loopback with STLS (Dovecot's CA trusted), every message kept;
 * - `popwire sync --lmtp` into a fresh SQLite store (stored first, then handed over);
 * - fetchmail 6.4 with `--lmtp` into the same server, `keep` and `fetchall`, STLS with the same
 *   CA checked (fetchmail upgrades with STLS when offered, as popwire does).
 *
 * Each delivers to bob, whose Maildir is emptied before each run and counted after (a run that
 * delivered fewer than all fails the bench). Rounds interleave the rows, so the machine's drift
 * touches each alike; the median of BENCH_RUNS is reported, with every run, and ratios to the
 * raw limit and to fetchmail.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDeliveryDovecot, type DeliveryDovecot } from '../support/dovecot-delivery.ts';
import { bulkMessages } from '../support/fixtures.ts';

const BIN = fileURLToPath(new URL('../packages/service/bin/popwire.js', import.meta.url));

export interface LmtpOptions {
  readonly count: number;
  readonly runs: number;
}

interface Timed {
  readonly seconds: number;
}

export async function lmtpScenario(options: LmtpOptions): Promise<void> {
  const dovecot = await startDeliveryDovecot();
  const scratch = await mkdtemp(join(tmpdir(), 'popwire-bench-lmtp-'));
  try {
    const messages = bulkMessages(options.count, 4096);
    await dovecot.dovecot.setMailbox('alice', messages);
    const caFile = join(scratch, 'ca.pem');
    await writeFile(caFile, dovecot.ca);
    const rows: Array<{ name: string; run: (round: number) => Promise<Timed> }> = [
      { name: 'raw LMTP client, messages in memory (the limit)', run: () => rawLmtp(dovecot, messages) },
      { name: 'popwire fetch --lmtp', run: () => popwire(['fetch', '--lmtp', `127.0.0.1:${dovecot.lmtpPort}`, '--to', 'bob', pop3Url(dovecot), '--ca', caFile], dovecot) },
      {
        name: 'popwire sync --lmtp (into a fresh SQLite store first)',
        run: (round) => popwire(['sync', '--lmtp', `127.0.0.1:${dovecot.lmtpPort}`, '--to', 'bob', '--store', join(scratch, `store-${round}`), pop3Url(dovecot), '--ca', caFile], dovecot),
      },
      { name: 'fetchmail 6.4 --lmtp (keep, fetchall)', run: () => fetchmail(dovecot, scratch, caFile) },
    ];
    const seconds = rows.map(() => [] as number[]);
    for (let round = 0; round < options.runs; round++) {
      for (const [i, row] of rows.entries()) {
        await emptyMaildir(dovecot, 'bob');
        const { seconds: s } = await row.run(round);
        const delivered = (await dovecot.readMaildir('bob')).length;
        if (delivered !== options.count) throw new Error(`${row.name} delivered ${delivered} of ${options.count} messages`);
        seconds[i]!.push(s);
        // As it goes: on a busy machine a whole run takes long, and a partial result still says something.
        console.error(`(k) round ${round + 1}: ${row.name}: ${s.toFixed(2)} s, ${(options.count / s).toFixed(0)} messages/s`);
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const limit = median(seconds[0]!);
    const fetchmailSeconds = median(seconds[3]!);
    console.log(`\n### (k) ${options.count} messages of about 4 KB from Dovecot POP3 into Dovecot LMTP, loopback, median of ${options.runs}\n`);
    console.log('| client | seconds | messages/s | time ÷ raw limit | fetchmail ÷ this |');
    console.log('|---|---:|---:|---:|---:|');
    for (const [i, row] of rows.entries()) {
      const s = median(seconds[i]!);
      console.log(`| ${row.name} | ${s.toFixed(2)} | ${(options.count / s).toFixed(0)} | ${(s / limit).toFixed(2)} | ${(fetchmailSeconds / s).toFixed(2)} |`);
    }
    console.log(`\nEvery round, seconds: ${rows.map((row, i) => `${row.name}: ${seconds[i]!.map((s) => s.toFixed(2)).join(', ')}`).join('; ')}.`);
  } finally {
    await dovecot.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

function pop3Url(dovecot: DeliveryDovecot): string {
  return `pop3://alice@127.0.0.1:${dovecot.dovecot.port}`;
}

async function emptyMaildir(dovecot: DeliveryDovecot, user: string): Promise<void> {
  const base = dovecot.dovecot.users[user]!.maildir;
  for (const sub of ['new', 'cur']) {
    const names = await readdir(join(base, sub)).catch(() => [] as string[]);
    await Promise.all(names.map((name) => unlink(join(base, sub, name))));
  }
}

async function timedChild(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  const started = performance.now();
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const [code] = (await once(child, 'close')) as [number | null];
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`);
  return { seconds };
}

function popwire(args: readonly string[], dovecot: DeliveryDovecot): Promise<Timed> {
  return timedChild(process.execPath, [BIN, ...args], { ...process.env, POPWIRE_PASSWORD: dovecot.users.alice! });
}

async function fetchmail(dovecot: DeliveryDovecot, scratch: string, caFile: string): Promise<Timed> {
  const rc = join(scratch, 'fetchmailrc');
  await writeFile(
    rc,
    `set no syslog\npoll 127.0.0.1 protocol pop3 service ${dovecot.dovecot.port} user "alice" password "${dovecot.users.alice}" is "bob" here\n` +
      `  sslcertck sslcertfile "${caFile}" sslcommonname "localhost" keep fetchall lmtp smtphost "127.0.0.1/${dovecot.lmtpPort}" smtpname "bob"\n`,
  );
  await chmod(rc, 0o600);
  // Its own home (the .fetchids and pid files), so no run remembers another's.
  const home = join(scratch, 'fetchmail-home');
  await rm(home, { recursive: true, force: true });
  const { mkdir } = await import('node:fs/promises');
  await mkdir(home);
  const result = await timedChild('fetchmail', ['-f', rc, '--pidfile', join(home, 'pid'), '--nodetach'], { ...process.env, HOME: home, FETCHMAILHOME: home });
  return result;
}

/** The raw limit: LMTP with MAIL/RCPT/DATA pipelined, one connection, one message after another. */
async function rawLmtp(dovecot: DeliveryDovecot, messages: readonly Buffer[]): Promise<Timed> {
  const bodies = messages.map(dataBlock);
  const started = performance.now();
  const socket = connect(dovecot.lmtpPort, '127.0.0.1');
  await once(socket, 'connect');
  const replies = replyReader(socket);
  await replies.next(); // greeting
  socket.write('LHLO bench.test\r\n');
  await replies.next();
  for (const body of bodies) {
    socket.write('MAIL FROM:<>\r\nRCPT TO:<bob>\r\nDATA\r\n');
    for (const expected of ['250', '250', '354']) {
      const reply = await replies.next();
      if (!reply.startsWith(expected)) throw new Error(`raw LMTP: expected ${expected}, got ${reply}`);
    }
    socket.write(body);
    const done = await replies.next();
    if (!done.startsWith('250')) throw new Error(`raw LMTP: ${done}`);
  }
  socket.write('QUIT\r\n');
  await replies.next();
  socket.destroy();
  return { seconds: (performance.now() - started) / 1000 };
}

/** The message dot-stuffed and terminated, as DATA sends it (CRLF line endings, as the fixtures have). */
function dataBlock(message: Buffer): Buffer {
  const text = message.toString('latin1').replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
}

/** Final reply lines (multi-line replies joined), in order. */
function replyReader(socket: Socket): { next(): Promise<string> } {
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let buffer = '';
  let reply = '';
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      reply += line;
      if (line[3] === '-') continue;
      const complete = reply;
      reply = '';
      const taker = waiting.shift();
      if (taker === undefined) lines.push(complete);
      else taker(complete);
    }
  });
  return {
    next: () => {
      const line = lines.shift();
      return line === undefined ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve(line);
    },
  };
}
