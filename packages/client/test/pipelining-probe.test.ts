/**
 * Servers that do not advertise PIPELINING (popa3d has no CAPA at all). In lock-step such a server
 * costs a delayed ACK per message, so popwire asks once, with harmless commands, whether it answers
 * commands that arrive together (commands/pipelining-probe.ts), and pipelines if it does.
 *
 * What must hold: a server that reads a line and drops the rest of its input keeps every message
 * (byte-exact) and every DELE, in lock-step; one that closes on pipelined input costs that
 * session, never a message, and is spoken to in lock-step after; one that handles pipelined input
 * gets a bounded window; one that bends RFC 1939 around NOOP or unknown commands is left alone;
 * and Dovecot, which advertises PIPELINING, is never probed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pop3Client, Pop3ConnectionError, type TraceEvent } from '../src/index.ts';
import { PROBE_SENTINEL } from '../src/commands/pipelining-probe.ts';
import { dotStuff } from '../../../support/dot-stuff.ts';
import { startDovecot, type Dovecot } from '../../../support/dovecot.ts';
import { bulkMessages, smallFixtures } from '../../../support/fixtures.ts';
import type { Script } from '../../../support/scripted-server.ts';
import { isError, plainOptions, useScriptedServer } from './scripted.ts';

/** Every hard-case fixture and some bulk: more messages than the window a probed server earns. */
const MAILBOX = [...smallFixtures().map((f) => f.bytes), ...bulkMessages(60, 3000)];
const NUMBERS = MAILBOX.map((_, i) => i + 1);
const CRLF = Buffer.from('\r\n');
/** What RETR gives back: the body, with the CRLF a server adds before `.` if it lacked one. */
const retrieved = (body: Buffer) => (body.length > 0 && body.at(-1) !== 0x0a ? Buffer.concat([body, CRLF]) : body);

interface ServerLog {
  /** Commands answered, in order, across connections. */
  readonly answered: string[];
  /** Commands that arrived in the same read as an earlier one and were dropped unanswered. */
  readonly discarded: string[];
  /** Reads that held more than one command. */
  together: number;
  /** Messages marked deleted and removed at QUIT. */
  readonly deleted: number[];
}

interface Behaviour {
  /** What the server does when a read holds more than one command. */
  readonly together: 'discards' | 'closes' | 'answers';
  /** NOOP's status (RFC 1939: always +OK in TRANSACTION). */
  readonly noop?: 'ok' | 'err';
  /** An unknown command's status (RFC 1939 section 3: MUST be -ERR). */
  readonly unknown?: 'ok' | 'err';
}

/**
 * A popa3d-like maildrop: no CAPA, USER/PASS, STAT, LIST, RETR, DELE, NOOP, QUIT. A command with
 * more input already behind it is what a server sees when the client pipelines.
 */
function maildrop(behaviour: Behaviour, log: ServerLog): Script {
  return async (conn) => {
    conn.reply('+OK');
    const marked = new Set<number>();
    for (;;) {
      const line = await conn.lineOrClose();
      if (line === undefined) return;
      if (conn.hasInput()) {
        log.together += 1;
        if (behaviour.together === 'closes') return void conn.socket.destroy();
        // "Reads a line, discards the rest of its buffer": what RFC 2449 warns of.
        if (behaviour.together === 'discards') while (conn.hasInput()) log.discarded.push(await conn.line());
      }
      log.answered.push(line);
      const [verb = '', arg = ''] = line.split(' ');
      const n = Number(arg);
      const exists = Number.isInteger(n) && n >= 1 && n <= MAILBOX.length && !marked.has(n);
      switch (verb) {
        case 'CAPA':
          conn.reply('-ERR');
          break;
        case 'USER':
        case 'PASS':
          conn.reply('+OK');
          break;
        case 'STAT':
          conn.reply(`+OK ${MAILBOX.length} ${MAILBOX.reduce((sum, m) => sum + m.length, 0)}`);
          break;
        case 'LIST':
          conn.send(`+OK\r\n${MAILBOX.map((m, i) => `${i + 1} ${m.length}\r\n`).join('')}.\r\n`);
          break;
        case 'RETR':
          conn.send(exists ? Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(MAILBOX[n - 1]!)]) : '-ERR no such message\r\n');
          break;
        case 'DELE':
          if (exists) marked.add(n);
          conn.reply(exists ? '+OK' : '-ERR no such message');
          break;
        case 'NOOP':
          conn.reply(behaviour.noop === 'err' ? '-ERR' : '+OK');
          break;
        case 'QUIT':
          log.deleted.push(...[...marked].sort((a, b) => a - b));
          conn.reply('+OK');
          conn.socket.end();
          return;
        default:
          conn.reply(behaviour.unknown === 'ok' ? '+OK' : '-ERR');
      }
    }
  };
}

const newLog = (): ServerLog => ({ answered: [], discarded: [], together: 0, deleted: [] });

/** Retrieves every message and checks each, byte for byte, in order. */
async function retrieveAll(client: Pop3Client): Promise<void> {
  const seen: number[] = [];
  for await (const { n, body } of client.retrieveMany(NUMBERS)) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    assert.ok(Buffer.concat(chunks).equals(retrieved(MAILBOX[n - 1]!)), `message ${n} differs`);
    seen.push(n);
  }
  assert.deepEqual(seen, NUMBERS);
}

/** The most RETR commands written and not yet answered at any moment, from the trace. */
function retrWindow(): { trace: (event: TraceEvent) => void; max: () => number } {
  let inFlight = 0;
  let max = 0;
  return {
    trace: (event) => {
      if (event.direction === 'client' && event.line.startsWith('RETR ')) max = Math.max(max, ++inFlight);
      // Blocks before the first RETR (CAPA, LIST) answer no RETR.
      if (event.direction === 'server' && event.line.endsWith('then .]') && inFlight > 0) inFlight -= 1;
    },
    max: () => max,
  };
}

describe('a server that does not advertise PIPELINING', () => {
  const serve = useScriptedServer();

  it('that reads a line and discards the rest of its input: lock-step after the probe, every message byte-exact, every DELE applied', async () => {
    const log = newLog();
    const srv = await serve(maildrop({ together: 'discards' }, log));
    const sent: string[] = [];
    const client = await Pop3Client.connect(plainOptions(srv, { trace: (e) => e.direction === 'client' && sent.push(e.line) }));
    await retrieveAll(client);
    assert.equal(client.pipelining, false);
    // The trace shows each command of the pair's one write.
    assert.deepEqual(sent.slice(4, 9), ['NOOP', 'NOOP', 'NOOP', PROBE_SENTINEL.display, 'RETR 1']);
    await client.deleteMany(NUMBERS);
    await client.quit();
    // The one command it dropped is the probe's second NOOP; nothing of the session's work.
    assert.deepEqual(log.discarded, ['NOOP']);
    assert.equal(log.together, 1);
    assert.deepEqual(log.deleted, NUMBERS);
    assert.deepEqual(log.answered.slice(4, 7), ['NOOP', 'NOOP', PROBE_SENTINEL.display]);
  });

  it('that closes the connection on pipelined input: that session fails with nothing deleted, and the next one retrieves every message in lock-step', async () => {
    const log = newLog();
    const srv = await serve(maildrop({ together: 'closes' }, log));
    const first = await Pop3Client.connect(plainOptions(srv));
    await assert.rejects(retrieveAll(first), isError(Pop3ConnectionError, 'POP3_CONNECTION_CLOSED'));
    assert.equal(log.answered.some((line) => line.startsWith('RETR') || line.startsWith('DELE')), false);
    const second = await Pop3Client.connect(plainOptions(srv));
    await retrieveAll(second);
    await second.deleteMany(NUMBERS);
    await second.quit();
    assert.equal(second.pipelining, false);
    assert.equal(log.together, 1, 'the second session was probed, or pipelined, again');
    assert.deepEqual(log.deleted, NUMBERS);
  });

  it('that answers commands that arrive together: pipelined after the probe, within a window of 32, every message byte-exact', async () => {
    const log = newLog();
    const srv = await serve(maildrop({ together: 'answers' }, log));
    const window = retrWindow();
    const client = await Pop3Client.connect(plainOptions(srv, { trace: window.trace }));
    assert.equal(client.pipelining, false);
    await retrieveAll(client);
    assert.equal(client.pipelining, true);
    assert.ok(window.max() > 1, 'no two RETR were ever in flight together');
    assert.ok(window.max() <= 32, `${window.max()} RETR in flight at once`);
    await client.deleteMany(NUMBERS);
    await client.quit();
    assert.deepEqual(log.discarded, []);
    assert.deepEqual(log.deleted, NUMBERS);
  });

  it('is not probed when pipelining is turned off', async () => {
    const log = newLog();
    const srv = await serve(maildrop({ together: 'discards' }, log));
    const client = await Pop3Client.connect(plainOptions(srv, { pipelining: false }));
    await retrieveAll(client);
    await client.quit();
    assert.equal(log.answered.includes('NOOP'), false);
    assert.equal(log.together, 0);
  });

  it('that answers NOOP with -ERR: no pair is sent, and every message arrives in lock-step', async () => {
    const log = newLog();
    const srv = await serve(maildrop({ together: 'answers', noop: 'err' }, log));
    const client = await Pop3Client.connect(plainOptions(srv));
    await retrieveAll(client);
    assert.equal(client.pipelining, false);
    await client.quit();
    assert.equal(log.together, 0);
    assert.deepEqual(log.answered.filter((line) => !line.startsWith('RETR')), ['CAPA', 'USER alice', 'PASS secret', 'CAPA', 'NOOP', 'QUIT']);
  });

  it('that answers an unknown command with +OK: it stays in lock-step, and the replies stay in step', async () => {
    const log = newLog();
    const srv = await serve(maildrop({ together: 'answers', unknown: 'ok' }, log));
    const client = await Pop3Client.connect(plainOptions(srv));
    await retrieveAll(client);
    assert.equal(client.pipelining, false);
    assert.equal((await client.stat()).count, MAILBOX.length);
    await client.quit();
    assert.equal(log.together, 1);
  });
});

describe('Dovecot, which advertises PIPELINING', () => {
  let dovecot: Dovecot;
  before(async () => {
    dovecot = await startDovecot();
    await dovecot.setMailbox('alice', bulkMessages(40, 2000));
  });
  after(() => dovecot?.stop());

  it('pipelines from the first RETR, with the full window, and is never probed', async () => {
    const sent: string[] = [];
    const window = retrWindow();
    await using client = await Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.port,
      tls: 'none',
      allowPlaintextAuth: true,
      user: 'alice',
      password: dovecot.users.alice!.password,
      trace: (event) => {
        if (event.direction === 'client') sent.push(event.line);
        window.trace(event);
      },
    });
    assert.equal(client.pipelining, true);
    let count = 0;
    for await (const { body } of client.retrieveMany()) {
      for await (const _ of body);
      count += 1;
    }
    assert.equal(count, 40);
    assert.equal(sent.includes('NOOP'), false);
    assert.equal(sent.includes(PROBE_SENTINEL.display), false);
    assert.equal(window.max(), 40);
  });
});
