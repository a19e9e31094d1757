/**
 * What the private servers of the tests (support/dovecot.ts, support/postgres.ts) share: a
 * server process that dies with the test process, is stopped by its PID, and never keeps the
 * test process alive on its own; free loopback ports; system users.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { constants, readdirSync, readFileSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';

export interface Account {
  uid: number;
  gid: number;
}

/** Children of the test process still running, with the signal that stops each. */
const running = new Map<ChildProcess, NodeJS.Signals>();
let exitHookInstalled = false;

/**
 * Starts `command` under `setpriv --pdeathsig SIGNAL` (plus `setprivOptions`, e.g. a user to
 * become). setpriv sets the parent-death signal after any change of user (the kernel clears it
 * on one) and then execs the server in place, same PID: the server goes away even when the test
 * process is killed outright and its 'exit' handler cannot run. Output goes to `logFd`.
 */
export async function spawnDaemon(
  command: readonly string[],
  options: { stopSignal: NodeJS.Signals; logFd: number; cwd?: string; setprivOptions?: readonly string[] },
): Promise<ChildProcess> {
  const child = spawn('setpriv', [...(options.setprivOptions ?? []), '--pdeathsig', options.stopSignal.replace(/^SIG/, ''), '--', ...command], {
    cwd: options.cwd,
    stdio: ['ignore', options.logFd, options.logFd],
  });
  if (child.pid === undefined) {
    const [error] = await once(child, 'error');
    throw error;
  }
  // A forgotten stop() must not keep the test process alive; terminate() re-references it to wait.
  child.unref();
  running.set(child, options.stopSignal);
  if (!exitHookInstalled) {
    process.on('exit', () => {
      for (const [each, signal] of running) each.kill(signal);
    });
    exitHookInstalled = true;
  }
  return child;
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Stops the server by its PID with its stop signal and waits for it; SIGKILL after `timeoutMs`. */
export async function terminate(child: ChildProcess, timeoutMs: number): Promise<void> {
  const signal = running.get(child) ?? 'SIGTERM';
  running.delete(child);
  if (hasExited(child)) return;
  child.ref();
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** Ports free on `host` now; all held open until every one is known, so they are distinct. */
export async function freePorts(host: string, count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  await Promise.all(
    servers.map(async (server) => {
      server.listen(0, host);
      await once(server, 'listening');
    }),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** A port nothing listens on now (bound, then released): for refused-connection tests. */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(host, 1))[0] as number;
}

export async function lookupAccount(name: string): Promise<Account> {
  // Node has no getpwnam(); /etc/passwd is where Debian keeps system users.
  const passwd = await readFile('/etc/passwd', 'utf8');
  const fields = passwd.split('\n').map((line) => line.split(':')).find((f) => f[0] === name);
  if (fields === undefined) throw new Error(`System user ${name} not found in /etc/passwd`);
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function requireRoot(what: string): void {
  if (!isRoot()) throw new Error(`Must be root to ${what}`);
}

export async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** The PIDs whose parent chain reaches `pid`, from /proc. */
export function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The 4th field of /proc/PID/stat, after the command name in parentheses (which may hold spaces).
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // It ended while we looked.
    }
  }
  const found: number[] = [];
  const walk = (parent: number): void => {
    for (const [each, ppid] of parents) {
      if (ppid !== parent) continue;
      found.push(each);
      walk(each);
    }
  };
  walk(pid);
  return found;
}
