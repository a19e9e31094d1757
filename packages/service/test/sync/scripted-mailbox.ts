/**
 * A scripted POP3 maildrop for the sync's fault tests: the behaviours a real server will not
 * produce on demand (a RETR refused mid-pipeline, a repeated UID, no UIDL, a reused UID, [IN-USE],
 * Gmail's partial listings), over a mailbox that lives across sessions as a real one does.
 *
 * Each session sees a snapshot taken at login (RFC 1939): the messages not deleted, numbered from
 * 1. DELE marks; only QUIT applies the marks (and, with `gmail`, hides what the session retrieved).
 * A session that ends any other way changes nothing. Login is USER alice / PASS secret.
 */
import { dotStuff } from '../../../../support/dot-stuff.ts';
import { startScriptedServer, type ScriptedConnection, type ScriptedServer } from '../../../../support/scripted-server.ts';

export interface MailboxMessage {
  uid: string;
  bytes: Buffer;
  /** Set when a QUIT applied its DELE. */
  deleted?: boolean;
  /** Gmail: retrieved in a session that QUIT, so no longer listed. */
  popped?: boolean;
}

export interface ScriptedMailboxOptions {
  /** Advertise UIDL in CAPA and answer it. Default true. */
  readonly uidl?: boolean;
  /** Advertise PIPELINING. Default true. */
  readonly pipelining?: boolean;
  /** More CAPA lines, e.g. `LOGIN-DELAY 300` as Gmail announces. */
  readonly capabilities?: readonly string[];
  /**
   * Gmail: list at most `perSession` messages per session, the oldest not yet popped; a QUIT pops
   * what its session retrieved, unless `pop` is false (Gmail's "recent" mode lists them again).
   */
  readonly gmail?: { readonly perSession: number; readonly pop?: boolean };
  /** An -ERR line (without the -ERR) to answer PASS with in session `session` (from 1), or undefined to log in. */
  readonly refuseLogin?: (session: number) => string | undefined;
  /** An -ERR text to answer RETR of this message with, or undefined to send it. */
  readonly refuseRetr?: (message: MailboxMessage, session: number) => string | undefined;
  /** True to end the connection (a FIN, after what was already sent) instead of answering this command line. */
  readonly dropAt?: (line: string, session: number) => boolean;
}

export interface SessionLog {
  readonly commands: string[];
  ended: 'quit' | 'dropped' | undefined;
  /** UIDs whose DELE the QUIT applied. */
  readonly deleted: string[];
}

export interface ScriptedMailbox {
  readonly server: ScriptedServer;
  readonly messages: MailboxMessage[];
  readonly sessions: SessionLog[];
  /** The messages a new session would list (before Gmail's limit). */
  remaining(): MailboxMessage[];
  close(): Promise<void>;
}

export function message(uid: string, subject: string, bodyLines = 20): MailboxMessage {
  const lines = [`From: sender@example.test`, `To: alice@example.test`, `Subject: ${subject}`, `Message-ID: <${uid}.${subject.length}@example.test>`, ''];
  for (let i = 0; i < bodyLines; i++) lines.push(`${subject}: line ${i}`);
  lines.push('.a line that needs dot-stuffing');
  return { uid, bytes: Buffer.from(`${lines.join('\r\n')}\r\n`) };
}

export async function startScriptedMailbox(messages: MailboxMessage[], options: ScriptedMailboxOptions = {}): Promise<ScriptedMailbox> {
  const sessions: SessionLog[] = [];
  const remaining = () => messages.filter((m) => !m.deleted && !m.popped);
  const server = await startScriptedServer(async (conn) => {
    const log: SessionLog = { commands: [], ended: undefined, deleted: [] };
    sessions.push(log);
    try {
      await serve(conn, log, sessions.length, remaining, options);
    } finally {
      log.ended ??= 'dropped';
    }
  });
  return { server, messages, sessions, remaining, close: () => server.close() };
}

async function serve(
  conn: ScriptedConnection,
  log: SessionLog,
  session: number,
  remaining: () => MailboxMessage[],
  options: ScriptedMailboxOptions,
): Promise<void> {
  const caps = ['USER', 'TOP', ...(options.uidl === false ? [] : ['UIDL']), ...(options.pipelining === false ? [] : ['PIPELINING']), ...(options.capabilities ?? [])];
  let drop: MailboxMessage[] | undefined;
  const marked = new Set<number>();
  const retrieved = new Set<MailboxMessage>();
  const numbered = (arg: string | undefined) => {
    const n = Number(arg);
    return drop !== undefined && Number.isInteger(n) && n >= 1 && n <= drop.length && !marked.has(n) ? drop[n - 1] : undefined;
  };
  conn.reply('+OK scripted maildrop ready');
  for (;;) {
    // A drop is as good an end as QUIT for a maildrop: the log says which it was.
    const line = await conn.lineOrClose();
    if (line === undefined) return;
    log.commands.push(line);
    if (options.dropAt?.(line, session) === true) {
      conn.socket.end();
      return;
    }
    const [verb = '', arg] = line.split(' ');
    const m = numbered(arg);
    switch (verb.toUpperCase()) {
      case 'CAPA':
        conn.send(`+OK\r\n${caps.map((c) => `${c}\r\n`).join('')}.\r\n`);
        break;
      case 'USER':
        conn.reply('+OK');
        break;
      case 'PASS': {
        const refusal = options.refuseLogin?.(session);
        if (refusal !== undefined) {
          conn.reply(`-ERR ${refusal}`);
          break;
        }
        drop = remaining().slice(0, options.gmail?.perSession);
        conn.reply('+OK logged in');
        break;
      }
      case 'STAT':
        conn.reply(`+OK ${drop!.length} ${drop!.reduce((n, x) => n + x.bytes.length, 0)}`);
        break;
      case 'LIST':
      case 'UIDL': {
        if (verb.toUpperCase() === 'UIDL' && options.uidl === false) {
          conn.reply('-ERR no UIDL here');
          break;
        }
        const field = (x: MailboxMessage) => (verb.toUpperCase() === 'UIDL' ? x.uid : String(x.bytes.length));
        if (arg !== undefined) {
          conn.reply(m === undefined ? '-ERR no such message' : `+OK ${arg} ${field(m)}`);
          break;
        }
        const rows = drop!.map((x, i) => (marked.has(i + 1) ? '' : `${i + 1} ${field(x)}\r\n`)).join('');
        conn.send(`+OK\r\n${rows}.\r\n`);
        break;
      }
      case 'RETR': {
        const refusal = m === undefined ? 'no such message' : options.refuseRetr?.(m, session);
        if (refusal !== undefined) {
          conn.reply(`-ERR ${refusal}`);
          break;
        }
        retrieved.add(m!);
        conn.send(Buffer.concat([Buffer.from(`+OK ${m!.bytes.length} octets\r\n`), dotStuff(m!.bytes)]));
        break;
      }
      case 'TOP': {
        if (m === undefined) {
          conn.reply('-ERR no such message');
          break;
        }
        const end = m.bytes.indexOf('\r\n\r\n');
        conn.send(Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(end === -1 ? m.bytes : m.bytes.subarray(0, end + 4))]));
        break;
      }
      case 'DELE':
        if (m === undefined) conn.reply('-ERR no such message');
        else {
          marked.add(Number(arg));
          conn.reply('+OK marked');
        }
        break;
      case 'NOOP':
        conn.reply('+OK');
        break;
      case 'RSET':
        marked.clear();
        conn.reply('+OK');
        break;
      case 'QUIT':
        for (const n of marked) {
          drop![n - 1]!.deleted = true;
          log.deleted.push(drop![n - 1]!.uid);
        }
        if (options.gmail !== undefined && options.gmail.pop !== false) for (const x of retrieved) x.popped = true;
        log.ended = 'quit';
        conn.reply('+OK bye');
        conn.socket.end();
        return;
      default:
        conn.reply('-ERR unknown command');
    }
  }
}
