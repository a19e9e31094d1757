/**
 * A private, real Dovecot as a delivery target: LMTP and IMAP on free loopback ports, delivering
 * into Maildirs that a test reads back byte for byte. It is a second instance of support/dovecot.ts
 * (its own temp folder, users and TLS certificate; the POP3 listeners it keeps are unused), so a
 * test fetches from one Dovecot over POP3 and delivers into another, as a user would.
 *
 * What Dovecot 2.3.19 does with a delivered message (seen with this harness):
 * - LMTP prepends `Return-Path: <sender>`, `Delivered-To: <rcpt>` and a `Received:` field, and the
 *   Maildir file has LF line endings (CRLF from the wire becomes LF). dropDeliveryHeaders() takes
 *   those three back off.
 * - IMAP APPEND stores the message with LF endings too, but FETCH BODY[] gives it back with CRLF,
 *   byte for byte as appended, and INTERNALDATE is the APPEND's date (the file's mtime).
 * - RCPT TO takes the passwd-file user name (`bob`) or `bob@anything`: the domain is ignored
 *   (auth_username_format = %n for LMTP).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from './daemon.ts';
import { startDovecot, type Dovecot, type DovecotOptions } from './dovecot.ts';

export interface DeliveryDovecot {
  readonly host: '127.0.0.1';
  readonly lmtpPort: number;
  /** Dovecot's own LMTP Unix socket (base_dir/lmtp), for lmtp:unix:/PATH. */
  readonly lmtpSocket: string;
  /** IMAP with STARTTLS offered. */
  readonly imapPort: number;
  /** IMAP over TLS from the start. */
  readonly imapsPort: number;
  /** The CA to trust for its TLS (a self-signed certificate for 127.0.0.1 and localhost). */
  readonly ca: Buffer;
  readonly dovecot: Dovecot;
  /** user -> password; every user has a Maildir. */
  readonly users: Readonly<Record<string, string>>;
  /** The Maildir files of `user`'s folder (INBOX by default), new/ and cur/, in delivery order. */
  readMaildir(user: string, folder?: string): Promise<Buffer[]>;
  stop(): Promise<void>;
}

export async function startDeliveryDovecot(options: Pick<DovecotOptions, 'users' | 'extraConfig'> = {}): Promise<DeliveryDovecot> {
  // Chosen before start-up, which only retries the POP3 ports: a collision here is rare, and fails loudly.
  const [lmtpPort, imapPort, imapsPort] = (await freePorts('127.0.0.1', 3)) as [number, number, number];
  const dovecot = await startDovecot({
    users: options.users,
    extraConfig: `
protocols = pop3 lmtp imap
# LMTP: RCPT TO:<bob@example.org> delivers to bob, as Dovecot's local delivery would.
protocol lmtp {
  auth_username_format = %n
  mail_fsync = never
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
service imap-login {
  inet_listener imap {
    port = ${imapPort}
  }
  inet_listener imaps {
    port = ${imapsPort}
    ssl = yes
  }
}
protocol imap {
  mail_max_userip_connections = 1000
}
${options.extraConfig ?? ''}`,
  });
  const users = Object.fromEntries(Object.values(dovecot.users).map(({ user, password }) => [user, password]));
  return {
    host: '127.0.0.1',
    lmtpPort,
    lmtpSocket: join(dovecot.dir, 'run', 'lmtp'),
    imapPort,
    imapsPort,
    ca: dovecot.ca,
    dovecot,
    users,
    async readMaildir(user, folder = 'INBOX') {
      const account = dovecot.users[user];
      if (account === undefined) throw new Error(`No such Dovecot user: ${user}`);
      const base = folder === 'INBOX' ? account.maildir : join(account.maildir, `.${folder}`);
      const files: Array<{ name: string; path: string }> = [];
      for (const sub of ['new', 'cur']) {
        const names = await readdir(join(base, sub)).catch(() => [] as string[]);
        for (const name of names) files.push({ name, path: join(base, sub, name) });
      }
      // Dovecot names files "<seconds>.M<micros>P<pid>..." : order by the time, then the microseconds.
      files.sort((a, b) => deliveryKey(a.name) - deliveryKey(b.name) || a.name.localeCompare(b.name));
      return Promise.all(files.map(({ path }) => readFile(path)));
    },
    stop: () => dovecot.stop(),
  };
}

function deliveryKey(name: string): number {
  const match = /^(\d+)\.M(\d+)/.exec(name);
  return match === null ? Number(name.split('.')[0]) * 1e6 : Number(match[1]) * 1e6 + Number(match[2]);
}

/** A delivered Maildir file without the Return-Path, Delivered-To and Received fields LMTP added on top. */
export function dropDeliveryHeaders(file: Buffer): Buffer {
  let offset = 0;
  for (const name of ['Return-Path:', 'Delivered-To:', 'Received:']) {
    if (file.subarray(offset, offset + name.length).toString('latin1') !== name) continue;
    // The field and its folded continuation lines.
    let end = file.indexOf(0x0a, offset);
    while (end >= 0 && (file[end + 1] === 0x20 || file[end + 1] === 0x09)) end = file.indexOf(0x0a, end + 1);
    offset = end + 1;
  }
  return file.subarray(offset);
}
