/**
 * A private, real Postfix for tests and benchmarks: an SMTP server on a free loopback port that
 * delivers locally, into Maildirs a test reads back.
 *
 * Everything lives in a temp folder: its own config_directory (main.cf, master.cf written here),
 * queue_directory and data_directory; no system-wide file is touched, and the system's Postfix (if
 * any runs) is another instance. Started with `postfix -c DIR start`, stopped with `postfix -c DIR
 * stop`, and the master killed by its PID if that fails (also at the test process's exit).
 *
 * Local delivery is virtual(8) (Postfix's own delivery agent for mailboxes that are not Unix
 * accounts): each address of `users` at `domain` gets DIR/mail/USER/Maildir/, owned by the `mail`
 * user. A message whose recipient is not listed is refused at RCPT with 550, and one over
 * `messageSizeLimit` at MAIL FROM (SIZE=) or after DATA with 552: the permanent refusals tests need.
 *
 * What Postfix 3.7 does with a message (seen with this harness): virtual(8) prepends
 * `Return-Path: <sender>` and `Delivered-To: <rcpt>`; smtpd prepends a `Received:` field (in the
 * file: Return-Path, Delivered-To, Received, then the message, which dropDeliveryHeaders() of
 * support/dovecot-delivery.ts takes off), and the file has LF line endings. A Return-Path the message brings is dropped
 * (Postfix's default message_drop_headers): only the one written from MAIL FROM stays. Nothing else is added
 * (always_add_missing_headers = no, no header rewriting). Delivery is asynchronous: 250 after DATA means queued, so waitForMessages()
 * polls the Maildir.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePorts, isExecutable, lookupAccount, requireRoot } from './daemon.ts';

export interface PostfixOptions {
  /** Local parts that have a Maildir (default: alice, bob). */
  users?: string[];
  /** Default example.org. */
  domain?: string;
  /** message_size_limit in bytes (default Postfix's 10240000). */
  messageSizeLimit?: number;
}

export interface Postfix {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly domain: string;
  readonly dir: string;
  /** The delivered files of `user`, in new/ and cur/, sorted by name (delivery order). */
  readMaildir(user: string): Promise<Buffer[]>;
  /** Polls until `user` has at least `count` messages, or fails with the mail log's tail. */
  waitForMessages(user: string, count: number, timeoutMs?: number): Promise<Buffer[]>;
  /** The mail log so far (Postfix's maillog_file). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

const POSTFIX = '/usr/sbin/postfix';
const HOST = '127.0.0.1';
const execFileAsync = promisify(execFile);
/** Instances still running, stopped at the test process's exit by PID if stop() was forgotten. */
const running = new Set<string>();
let exitHookInstalled = false;

export async function startPostfix(options: PostfixOptions = {}): Promise<Postfix> {
  requireRoot('run Postfix');
  if (!(await isExecutable(POSTFIX))) throw new Error('Postfix is not installed: apt-get install -y postfix (scripts/install-system-deps.sh)');
  const dir = await mkdtemp(join(tmpdir(), 'popwire-postfix-'));
  try {
    return await startIn(dir, options);
  } catch (error) {
    await stopIn(dir).catch(() => undefined);
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    throw error;
  }
}

async function startIn(dir: string, options: PostfixOptions): Promise<Postfix> {
  const users = options.users ?? ['alice', 'bob'];
  const domain = options.domain ?? 'example.org';
  const mail = await lookupAccount('mail');
  const config = join(dir, 'config');
  const mailBase = join(dir, 'mail');
  await mkdir(config, { recursive: true });
  await mkdir(mailBase, { recursive: true });
  await chown(mailBase, mail.uid, mail.gid);
  for (const user of users) {
    if (!/^[a-z0-9._-]+$/.test(user)) throw new Error(`Unsupported user name: ${user}`);
  }
  // texthash: read as is, no postmap needed. A value ending in "/" means a Maildir.
  await writeFile(join(config, 'mailboxes'), users.map((user) => `${user}@${domain} ${user}/Maildir/\n`).join(''));
  const [port] = (await freePorts(HOST, 1)) as [number];
  await writeFile(join(config, 'main.cf'), mainCf(dir, { domain, mail, mailBase, messageSizeLimit: options.messageSizeLimit }));
  await writeFile(join(config, 'master.cf'), masterCf(port));
  // `postfix check` creates the queue's subdirectories with Postfix's own owners and modes.
  await mkdir(join(dir, 'queue'));
  await mkdir(join(dir, 'data'));
  const owner = await lookupAccount('postfix');
  await chown(join(dir, 'data'), owner.uid, owner.gid);
  // The delivery agent runs as `mail` and must walk down to the Maildirs.
  await chmod(dir, 0o711);
  await postfix(config, ['check']);
  await postfix(config, ['start']);
  running.add(dir);
  installExitHook();
  await waitForBanner(port, dir);
  const readMaildir = async (user: string): Promise<Buffer[]> => {
    const files: string[] = [];
    for (const sub of ['new', 'cur']) {
      const base = join(mailBase, user, 'Maildir', sub);
      for (const name of await readdir(base).catch(() => [] as string[])) files.push(join(base, name));
    }
    files.sort((a, b) => a.split('/').pop()!.localeCompare(b.split('/').pop()!, 'en', { numeric: true }));
    return Promise.all(files.map((path) => readFile(path)));
  };
  const log = () => readFile(join(dir, 'maillog'), 'utf8').catch(() => '');
  let stopping: Promise<void> | undefined;
  return {
    host: HOST,
    port,
    domain,
    dir,
    readMaildir,
    log,
    async waitForMessages(user, count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const files = await readMaildir(user);
        if (files.length >= count) return files;
        if (Date.now() > deadline) throw new Error(`Postfix delivered ${files.length} of ${count} messages to ${user}:\n${(await log()).split('\n').slice(-30).join('\n')}`);
        await delay(50);
      }
    },
    stop() {
      stopping ??= stopIn(dir).finally(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
      return stopping;
    },
  };
}

interface MainValues {
  domain: string;
  mail: { uid: number; gid: number };
  mailBase: string;
  messageSizeLimit: number | undefined;
}

function mainCf(dir: string, { domain, mail, mailBase, messageSizeLimit }: MainValues): string {
  return `# Written by support/postfix.ts for one test run: everything lives in ${dir}.
compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
inet_interfaces = ${HOST}
inet_protocols = ipv4
myhostname = popwire-postfix.test
mydomain = popwire-postfix.test
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
relayhost =
alias_maps =
alias_database =
smtpd_banner = $myhostname ESMTP popwire test Postfix
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtputf8_enable = yes
biff = no
# The message as sent: no Message-Id or Date added, no address rewritten, no X-Original-To.
always_add_missing_headers = no
local_header_rewrite_clients =
enable_original_recipient = no
${messageSizeLimit === undefined ? '' : `message_size_limit = ${messageSizeLimit}\nvirtual_mailbox_limit = 0\n`}
virtual_mailbox_domains = ${domain}
virtual_mailbox_base = ${mailBase}
virtual_mailbox_maps = texthash:${dir}/config/mailboxes
virtual_uid_maps = static:${mail.uid}
virtual_gid_maps = static:${mail.gid}
virtual_minimum_uid = ${mail.uid}
# Tests want delivery now, not after a back-off.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
`;
}

/** The services Postfix needs, none chrooted (a chroot would need copies of /etc files in the queue). */
function masterCf(port: number): string {
  const services = [
    `${HOST}:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'local unix - n n - - local',
    'virtual unix - n n - - virtual',
    'lmtp unix - - n - - lmtp',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  return `# Written by support/postfix.ts.\n${services.join('\n')}\n`;
}

async function postfix(config: string, args: string[]): Promise<void> {
  try {
    await execFileAsync(POSTFIX, ['-c', config, ...args], { timeout: 30_000 });
  } catch (error) {
    // Postfix writes its reasons to stderr only when it is a terminal; otherwise to the mail log.
    const log = await readFile(join(config, '..', 'maillog'), 'utf8').catch(() => '');
    throw new Error(`postfix ${args.join(' ')} failed (run it under \`script\` to see why): ${String(error)}\n${log.split('\n').slice(-20).join('\n')}`);
  }
}

async function masterPid(dir: string): Promise<number | undefined> {
  const text = await readFile(join(dir, 'queue', 'pid', 'master.pid'), 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function stopIn(dir: string): Promise<void> {
  running.delete(dir);
  const pid = await masterPid(dir);
  await postfix(join(dir, 'config'), ['stop']).catch(() => undefined);
  if (pid === undefined) return;
  // `postfix stop` returns before the master has gone; wait for it, then make sure.
  for (let i = 0; i < 100 && isAlive(pid); i++) await delay(50);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dir of running) {
      try {
        // Synchronous: the process is exiting. The master's PID, read the only way 'exit' allows.
        const pid = Number(readFileSync(join(dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
        if (pid > 0) process.kill(pid, 'SIGTERM');
      } catch {
        // Gone already.
      }
    }
  });
}

async function waitForBanner(port: number, dir: string): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const banner = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: HOST, port });
      socket.setTimeout(2_000, () => socket.destroy(new Error('timeout')));
      socket.on('error', reject);
      socket.once('data', (chunk) => {
        socket.destroy();
        resolve(chunk.toString('latin1'));
      });
    }).catch(() => '');
    if (banner.startsWith('220 ') && banner.includes('popwire test Postfix')) return;
    await delay(50);
  }
  throw new Error(`Postfix did not greet on port ${port}:\n${await readFile(join(dir, 'maillog'), 'utf8').catch(() => '')}`);
}
