/**
 * A private, real Dovecot POP3 server for tests and benchmarks.
 *
 * Each startDovecot() gets a fresh temp folder holding its config, runtime and state directories,
 * log (`dovecot.log`, plus `dovecot.stderr` for early start-up errors), passwd-file, Maildirs and
 * TLS material, and listens on two free loopback ports: plain POP3 that offers STLS, and implicit
 * TLS. It must run as root: Dovecot's master switches users for its processes, and mail processes
 * run as the existing `mail` user, which owns the Maildirs (first_valid_uid lets its low uid in).
 *
 * What Dovecot 2.3.19 sends for a Maildir file (measured with a raw socket against this harness;
 * it matches fetch_callback() in src/pop3/pop3-commands.c):
 *   (a) CRLF line endings: RETR returns the file byte for byte.
 *   (b) bare LF endings: every LF that does not follow a CR gets a CR in front of it.
 *   (c) mixed endings: only the bare LFs change, as in (b). A bare CR (not followed by LF) and
 *       CR CR LF are sent unchanged; so are NUL bytes and 8-bit bytes.
 *   (d) no final newline: RETR appends CRLF after the last byte, before the terminating ".".
 *       An empty file comes back as a single CRLF, and a file ending in a bare CR as "...\r\r\n".
 * LIST and STAT report the "virtual size": the file's length after (b), without the CRLF that
 * (d) adds. So for a file that does not end in LF, LIST is 2 less than the octets RETR sends;
 * otherwise it is equal. The "+OK N octets" line of RETR repeats the LIST size.
 * See expectedRetrBytes() and expectedListSize().
 *
 * Greeting: `+OK <login_greeting> <pid.counter.timestamp.random@hostname>`: the angle-bracket
 * APOP timestamp is there because `apop` is among auth_mechanisms. login_greeting carries an
 * instance token so that start-up knows it reached its own server and not someone else's that
 * took the port in between.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, chown, mkdir, mkdtemp, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePorts, hasExited, isExecutable, lookupAccount, requireRoot, spawnDaemon, terminate, type Account } from './daemon.ts';

export interface DovecotUser { user: string; password: string; maildir: string }

export interface DovecotOptions {
  users?: Array<{ user: string; password: string }>;
  /**
   * Dovecot takes whole seconds: rounded up. Even at the default 0, Dovecot 2.3 answers a failed
   * login only on its next 500 ms check, so about 0.5 s.
   */
  authFailureDelayMs?: number;
  /** pop3_lock_session: a second session of the same user waits, then fails with -ERR [IN-USE]. */
  lockSession?: boolean;
  /** Appended to dovecot.conf; a later setting overrides an earlier one. Leave login_greeting alone: start-up looks for its token. */
  extraConfig?: string;
}

export interface Dovecot {
  host: '127.0.0.1';
  port: number;
  tlsPort: number;
  ca: Buffer;
  dir: string;
  users: Record<string, DovecotUser>;
  /** Replace the whole mailbox of `user` (message 1 = first). Call it while no session of that user is open. */
  setMailbox(user: string, messages: Buffer[]): Promise<void>;
  /** Add one message at the end of the mailbox. */
  deliver(user: string, message: Buffer): Promise<void>;
  stop(): Promise<void>;
}

const DOVECOT_BIN = '/usr/sbin/dovecot';
const HOST = '127.0.0.1';
const DEFAULT_USERS = [
  { user: 'alice', password: 'alice-secret' },
  { user: 'bob', password: 'bob-secret' },
  { user: 'carol', password: 'carol-secret' },
];
const START_ATTEMPTS = 5;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

const execFileAsync = promisify(execFile);

/** Installs Dovecot's POP3 server (and the openssl CLI the harness needs) from Debian's packages if missing. */
export async function ensureDovecotInstalled(): Promise<void> {
  const missing: string[] = [];
  if (!(await isExecutable(DOVECOT_BIN))) missing.push('dovecot-pop3d');
  if (!(await isExecutable('/usr/bin/openssl'))) missing.push('openssl');
  if (missing.length === 0) return;
  requireRoot(`install ${missing.join(' ')}`);
  try {
    await aptGet(['install', '-y', ...missing]);
  } catch {
    // A fresh machine has no package lists yet; updating them first costs time, so only on failure.
    await aptGet(['update']);
    await aptGet(['install', '-y', ...missing]);
  }
}

export async function startDovecot(options: DovecotOptions = {}): Promise<Dovecot> {
  requireRoot('run Dovecot');
  await ensureDovecotInstalled();
  const dir = await mkdtemp(join(tmpdir(), 'popwire-dovecot-'));
  try {
    return await startIn(dir, options);
  } catch (error) {
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    throw error;
  }
}

/**
 * Returns exactly what RETR yields for a Maildir file once the client has removed dot-stuffing and
 * the terminating ".": bare LFs become CRLF, and CRLF is appended if the file does not end in LF.
 */
export function expectedRetrBytes(file: Buffer): Buffer {
  const normalized = withCrBeforeBareLf(file);
  const endsWithLf = normalized.length > 0 && normalized[normalized.length - 1] === LF;
  return endsWithLf ? normalized : Buffer.concat([normalized, Buffer.from('\r\n')]);
}

/** Returns the size LIST and STAT report for a Maildir file: its length with bare LFs counted as CRLF. */
export function expectedListSize(file: Buffer): number {
  return file.length + countBareLf(file);
}

const LF = 0x0a;
const CR = 0x0d;

function countBareLf(file: Buffer): number {
  let count = 0;
  for (let i = file.indexOf(LF); i !== -1; i = file.indexOf(LF, i + 1)) {
    if (i === 0 || file[i - 1] !== CR) count++;
  }
  return count;
}

function withCrBeforeBareLf(file: Buffer): Buffer {
  if (countBareLf(file) === 0) return file;
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = file.indexOf(LF); i !== -1; i = file.indexOf(LF, i + 1)) {
    if (i > 0 && file[i - 1] === CR) continue;
    parts.push(file.subarray(start, i), Buffer.from('\r'));
    start = i;
  }
  parts.push(file.subarray(start));
  return Buffer.concat(parts);
}


interface Layout {
  dir: string;
  config: string;
  cert: string;
  key: string;
  dh: string;
  passwd: string;
  log: string;
  stderr: string;
}

function layoutOf(dir: string): Layout {
  return {
    dir,
    config: join(dir, 'dovecot.conf'),
    cert: join(dir, 'cert.pem'),
    key: join(dir, 'key.pem'),
    dh: join(dir, 'dh.pem'),
    passwd: join(dir, 'passwd'),
    log: join(dir, 'dovecot.log'),
    stderr: join(dir, 'dovecot.stderr'),
  };
}

async function startIn(dir: string, options: DovecotOptions): Promise<Dovecot> {
  const layout = layoutOf(dir);
  const mailAccount = await lookupAccount('mail');
  const authAccount = await lookupAccount('dovecot');
  // Mail processes run as `mail` and must be able to walk down to the Maildirs.
  await chmod(dir, 0o711);
  const [users] = await Promise.all([
    createUsers(layout, options.users ?? DEFAULT_USERS, mailAccount, authAccount),
    writeTlsMaterial(layout),
  ]);
  const { child, port, tlsPort } = await launch(layout, options, mailAccount);
  const ca = await readFile(layout.cert);
  return makeHandle({ dir, child, port, tlsPort, ca, users, mailAccount });
}

async function launch(
  layout: Layout,
  options: DovecotOptions,
  mailAccount: Account,
): Promise<{ child: ChildProcess; port: number; tlsPort: number }> {
  for (let attempt = 1; ; attempt++) {
    const [port, tlsPort] = await freePorts(HOST, 2) as [number, number];
    const token = randomBytes(6).toString('hex');
    await writeFile(layout.config, renderConfig(layout, { port, tlsPort, token, mailAccount, options }));
    // Diagnostics of a failed attempt must not make the next one look failed.
    await rm(layout.log, { force: true });
    const child = await spawnDovecot(layout);
    try {
      await waitForGreeting(port, token, child, layout);
      return { child, port, tlsPort };
    } catch (error) {
      await terminate(child, STOP_TIMEOUT_MS);
      // Another process may take a port between our probe and Dovecot's bind: try other ports.
      if (attempt < START_ATTEMPTS && (await diagnostics(layout)).includes('Address already in use')) continue;
      throw error;
    }
  }
}

interface ConfigValues {
  port: number;
  tlsPort: number;
  token: string;
  mailAccount: Account;
  options: DovecotOptions;
}

function renderConfig(layout: Layout, values: ConfigValues): string {
  const { port, tlsPort, token, mailAccount, options } = values;
  const failureDelaySeconds = Math.ceil((options.authFailureDelayMs ?? 0) / 1000);
  return `# Written by support/dovecot.ts for one test run: everything lives in ${layout.dir}.
base_dir = ${layout.dir}/run
state_dir = ${layout.dir}/state
log_path = ${layout.log}
protocols = pop3
listen = ${HOST}
login_greeting = Dovecot ready (${token}).

ssl = yes
ssl_cert = <${layout.cert}
ssl_key = <${layout.key}
ssl_dh = <${layout.dh}
# The client library enforces its own TLS policy; tests opt in to plaintext explicitly.
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256 apop
# Default 2 s; wrong-password tests should not wait. Dovecot 2.3 still answers a failure only on its
# next 500 ms check, so a wrong password takes about 0.5 s even at 0.
auth_failure_delay = ${failureDelaySeconds} secs

# {PLAIN} passwords so that CRAM-MD5, SCRAM and APOP can work.
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${layout.passwd}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${layout.passwd}
}
first_valid_uid = ${mailAccount.uid}
first_valid_gid = ${mailAccount.gid}
mail_location = maildir:~/Maildir
# Test mail is disposable; fsync would only slow tests and benchmarks down.
mail_fsync = never

protocol pop3 {
  pop3_lock_session = ${options.lockSession === true ? 'yes' : 'no'}
  # The default of 10 would make concurrency tests fail for a reason they do not test.
  mail_max_userip_connections = 1000
}

# Per-IP auth penalty: after a few failures from 127.0.0.1 it would delay every later login of the
# test run (including correct ones) by 4 s and more. mode = 0 removes its socket, which turns it off.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

service pop3-login {
  inet_listener pop3 {
    port = ${port}
  }
  inet_listener pop3s {
    port = ${tlsPort}
    ssl = yes
  }
}
${options.extraConfig ?? ''}
`;
}

async function spawnDovecot(layout: Layout): Promise<ChildProcess> {
  const stderr = await open(layout.stderr, 'w');
  try {
    return await spawnDaemon([DOVECOT_BIN, '-F', '-c', layout.config], { stopSignal: 'SIGTERM', logFd: stderr.fd });
  } finally {
    await stderr.close();
  }
}

async function waitForGreeting(port: number, token: string, child: ChildProcess, layout: Layout): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (hasExited(child)) throw new Error(`Dovecot exited during start-up:\n${await diagnostics(layout)}`);
    const greeting = await readGreeting(port).catch(() => undefined);
    if (greeting?.startsWith('+OK') === true && greeting.includes(token)) return;
    await delay(20);
  }
  throw new Error(`Dovecot did not greet on port ${port} within ${START_TIMEOUT_MS} ms:\n${await diagnostics(layout)}`);
}

function readGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port });
    let received = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error('greeting timed out')));
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n');
      if (end === -1) return;
      socket.destroy();
      resolve(received.slice(0, end));
    });
    socket.on('close', () => reject(new Error('closed before greeting')));
  });
}

async function diagnostics(layout: Layout): Promise<string> {
  const read = (path: string) => readFile(path, 'utf8').catch(() => '');
  const [stderr, log] = await Promise.all([read(layout.stderr), read(layout.log)]);
  return `${stderr}${log}`.split('\n').slice(-40).join('\n');
}

interface HandleParts {
  dir: string;
  child: ChildProcess;
  port: number;
  tlsPort: number;
  ca: Buffer;
  users: Record<string, DovecotUser>;
  mailAccount: Account;
}

function makeHandle(parts: HandleParts): Dovecot {
  const { dir, child, users, mailAccount } = parts;
  // Per-user sequence for file names, so that a delivered message sorts after all earlier ones.
  const nextSeq = new Map<string, number>();
  const userOf = (name: string): DovecotUser => {
    const user = users[name];
    if (user === undefined) throw new Error(`No such Dovecot user: ${name}`);
    return user;
  };
  const store = async (name: string, message: Buffer): Promise<void> => {
    const seq = nextSeq.get(name) ?? 0;
    nextSeq.set(name, seq + 1);
    await storeMessage(userOf(name).maildir, seq, message, mailAccount);
  };
  let stopping: Promise<void> | undefined;
  return {
    host: HOST,
    port: parts.port,
    tlsPort: parts.tlsPort,
    ca: parts.ca,
    dir,
    users,
    async setMailbox(name, messages) {
      await resetMaildir(userOf(name).maildir, mailAccount);
      nextSeq.set(name, 0);
      for (const message of messages) await store(name, message);
    },
    deliver: store,
    stop() {
      stopping ??= terminate(child, STOP_TIMEOUT_MS).then(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
      return stopping;
    },
  };
}

/**
 * Dovecot numbers new Maildir files by the number their name starts with (maildir_time_cmp()
 * compares it numerically; ties fall back to directory order), so each message gets its own number.
 * Files go to tmp/ first and are renamed into cur/, as Maildir requires, so a session never sees a
 * half-written message.
 */
async function storeMessage(maildir: string, seq: number, message: Buffer, owner: Account): Promise<void> {
  const base = `${1_000_000_000 + seq}.P${process.pid}Q${seq}.popwire`;
  const tmpPath = join(maildir, 'tmp', base);
  await writeFile(tmpPath, message, { mode: 0o600 });
  await chown(tmpPath, owner.uid, owner.gid);
  await rename(tmpPath, join(maildir, 'cur', `${base}:2,`));
}

/**
 * Empties a Maildir and Dovecot's indexes and uidlist, so that the next login sees only the new
 * files. dovecot-uidvalidity* stays: it makes the next UIDVALIDITY (and so every UIDL) differ from
 * the previous mailbox's even within the same second, as it would on a real server.
 */
async function resetMaildir(maildir: string, owner: Account): Promise<void> {
  const entries = await readdir(maildir);
  await Promise.all(entries
    .filter((entry) => !entry.startsWith('dovecot-uidvalidity'))
    .map((entry) => rm(join(maildir, entry), { recursive: true, force: true })));
  for (const sub of ['cur', 'new', 'tmp']) await makeOwnedDir(join(maildir, sub), owner);
}

async function createUsers(
  layout: Layout,
  list: Array<{ user: string; password: string }>,
  owner: Account,
  auth: Account,
): Promise<Record<string, DovecotUser>> {
  const users: Record<string, DovecotUser> = {};
  const lines: string[] = [];
  await makeOwnedDir(join(layout.dir, 'home'), owner);
  for (const { user, password } of list) {
    // passwd-file fields are colon-separated lines, and the user name becomes a directory name.
    if (!/^[A-Za-z0-9._@+-]+$/.test(user)) throw new Error(`Unsupported Dovecot user name: ${user}`);
    if (/[:\r\n]/.test(password)) throw new Error(`Unsupported password for ${user}: no ':' or line breaks`);
    const home = join(layout.dir, 'home', user);
    const maildir = join(home, 'Maildir');
    await makeOwnedDir(home, owner);
    await makeOwnedDir(maildir, owner);
    await resetMaildir(maildir, owner);
    users[user] = { user, password, maildir };
    lines.push(`${user}:{PLAIN}${password}:${owner.uid}:${owner.gid}::${home}::`);
  }
  await writeFile(layout.passwd, `${lines.join('\n')}\n`, { mode: 0o600 });
  // Dovecot's auth process reads it as default_internal_user, not as root.
  await chown(layout.passwd, auth.uid, auth.gid);
  return users;
}

async function makeOwnedDir(path: string, owner: Account): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chown(path, owner.uid, owner.gid);
}

/**
 * A self-signed certificate valid for both 127.0.0.1 and localhost, and the RFC 7919 ffdhe2048
 * group as ssl_dh: a named group is instant, where `openssl dhparam` would take seconds.
 */
async function writeTlsMaterial(layout: Layout): Promise<void> {
  await Promise.all([
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '7', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', layout.key, '-out', layout.cert]),
    openssl(['genpkey', '-genparam', '-algorithm', 'DH', '-pkeyopt', 'group:ffdhe2048', '-out', layout.dh]),
  ]);
}

async function openssl(args: string[]): Promise<void> {
  await execFileAsync('openssl', args);
}

async function aptGet(args: string[]): Promise<void> {
  await execFileAsync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  });
}
