/**
 * A scripted POP3 mailbox for tests of what sits above one session (the pool, retry): any user
 * logs in with the password `secret` (USER/PASS, no TLS), then STAT, LIST, NOOP, DELE, RSET and
 * QUIT are answered for a mailbox of `count` messages. Each login is recorded, so a test can see
 * how many sessions were opened for whom and when they ended.
 */
import type { Script, ScriptedConnection } from './scripted-server.ts';

export interface MailboxLog {
  /** One entry per connection: the user who logged in (or undefined), how it ended, deletions QUIT applied. */
  readonly sessions: Array<{ user: string | undefined; ended: 'quit' | 'dropped' | undefined; applied: number }>;
  /** Sessions logged in and not yet ended. */
  open(): number;
}

export interface MailboxScriptOptions {
  readonly count?: number;
  /** Runs before the greeting; return false to end the connection there (after what it sent). */
  readonly onConnect?: (conn: ScriptedConnection, index: number) => Promise<boolean> | boolean;
}

export function mailboxScript(options: MailboxScriptOptions = {}): { script: Script; log: MailboxLog } {
  const sessions: MailboxLog['sessions'] = [];
  const log: MailboxLog = { sessions, open: () => sessions.filter((s) => s.user !== undefined && s.ended === undefined).length };
  const script: Script = async (conn) => {
    const entry: MailboxLog['sessions'][number] = { user: undefined, ended: undefined, applied: 0 };
    sessions.push(entry);
    if (options.onConnect && !(await options.onConnect(conn, sessions.length - 1))) return;
    const caps = () => conn.send('+OK\r\nUSER\r\nPIPELINING\r\nUIDL\r\n.\r\n');
    conn.reply('+OK scripted mailbox ready');
    let user: string | undefined;
    const count = options.count ?? 2;
    const deleted = new Set<number>();
    try {
      for (;;) {
        // A drop is as good an end as QUIT here: the log says which it was.
        const line = await conn.lineOrClose();
        if (line === undefined) return;
        const [verb = '', arg = ''] = line.split(' ');
        switch (verb.toUpperCase()) {
          case 'CAPA': caps(); break;
          case 'USER': user = arg; conn.reply('+OK'); break;
          case 'PASS':
            if (arg !== 'secret') { conn.reply('-ERR [AUTH] invalid credentials'); break; }
            entry.user = user;
            conn.reply('+OK logged in');
            break;
          case 'STAT': conn.reply(`+OK ${count - deleted.size} ${(count - deleted.size) * 100}`); break;
          case 'NOOP': conn.reply('+OK'); break;
          case 'DELE': deleted.add(Number(arg)); conn.reply('+OK marked'); break;
          case 'RSET': deleted.clear(); conn.reply('+OK'); break;
          case 'QUIT':
            entry.applied = deleted.size;
            entry.ended = 'quit';
            conn.reply('+OK bye');
            conn.socket.end();
            return;
          default: conn.reply('-ERR unknown command');
        }
      }
    } finally {
      entry.ended ??= 'dropped';
    }
  };
  return { script, log };
}
