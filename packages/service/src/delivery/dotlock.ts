import { readFileSync, unlinkSync } from 'node:fs';
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { DeliveryError } from './delivery.js';

/**
 * A dotlock: FILE.lock, created with O_CREAT|O_EXCL, which is how mail programs on Unix agree not
 * to write one mbox at once (procmail, mutt, Dovecot's mbox driver, liblockfile's dotlockfile).
 * Node has no fcntl()/flock(), so this is the only one of the usual mbox locks we take.
 *
 * A holder can die and leave its lock behind. Two rules break such a lock, in this order:
 *   1. The lock holds a pid that no longer runs on this host: the holder is gone. This is the
 *      common case (popwire killed with -9, a crash) and needs no waiting. A lock holding only a
 *      pid ("1234\n", liblockfile's format) is taken to be from this host, as liblockfile takes it.
 *   2. The lock was not touched for STALE_AFTER_MS (five minutes): liblockfile's rule, which mutt
 *      and Debian's mail tools follow. It covers holders on other hosts sharing the file over NFS,
 *      and programs that write no pid. A live holder therefore touches its lock every minute
 *      (TOUCH_EVERY_MS), which we do, so that a 100 MB message over a slow link keeps its lock.
 * A lock that names another host is never judged by its pid: that pid means nothing here.
 *
 * Breaking a stale lock races with another process breaking the same lock and creating its own
 * in between; we re-check the lock's identity (inode and mtime) just before unlinking, which
 * narrows the window to a few instructions. Every dotlock implementation shares that window.
 */

export const STALE_AFTER_MS = 5 * 60 * 1000;
const TOUCH_EVERY_MS = 60 * 1000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;

export interface DotlockOptions {
  /** How long to wait for another holder to let go before giving up. */
  readonly timeoutMs: number;
  /** Ends the wait early (Ctrl-C while another program holds the lock). */
  readonly signal?: AbortSignal | undefined;
  /** Told once, when the wait begins, what it waits for: a silent wait looks like a hang. */
  readonly onWait?: ((message: string) => void) | undefined;
}

/** The lock is held by someone else, and did not become free in time. */
export class LockBusyError extends DeliveryError {
  override readonly name = 'LockBusyError';
}

export interface Dotlock {
  readonly path: string;
  /** Removes the lock, if it is still ours. */
  release(): Promise<void>;
  /** The same, synchronously: for a process that must exit now. */
  releaseSync(): void;
}

/** What we write into our lock: the pid as the first token (what other tools read), then our host. */
function ownContent(): string {
  return `${process.pid} ${hostname()}\n`;
}

export async function acquireDotlock(target: string, options: DotlockOptions): Promise<Dotlock> {
  const path = `${target}.lock`;
  const content = ownContent();
  const deadline = Date.now() + options.timeoutMs;
  let wait = RETRY_MIN_MS;
  let told = false;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await tryCreate(path, content)) return holdLock(path, content);
    const holder = await inspect(path);
    if (holder !== undefined && holder.stale) {
      await breakStaleLock(path, holder);
      continue;
    }
    const holderText = `${path}${holder?.description ?? ''}`;
    if (!told && options.timeoutMs > 0) {
      told = true;
      options.onWait?.(`${target} is locked by another program (${holderText}); waiting up to ${options.timeoutMs} ms`);
    }
    if (Date.now() >= deadline) {
      throw new LockBusyError(
        `${target} is locked by another program (${holderText}); ` +
          `gave up after ${options.timeoutMs} ms. If no program is writing to it, remove ${path}.`,
      );
    }
    await delay(Math.min(wait, Math.max(1, deadline - Date.now())), undefined, { signal: options.signal });
    wait = Math.min(wait * 2, RETRY_MAX_MS);
  }
}

async function tryCreate(path: string, content: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx', 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(content);
    await handle.close();
    return true;
  } catch (error) {
    // A full disk can let us create the file and not write it: leave no empty lock behind.
    await handle.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw error;
  }
}

interface Holder {
  readonly ino: number;
  readonly mtimeMs: number;
  readonly stale: boolean;
  /** For the message when we give up: ", held by pid 123 on host". */
  readonly description: string;
}

/** What we know of the current lock; undefined if it vanished meanwhile (then just try again). */
async function inspect(path: string): Promise<Holder | undefined> {
  try {
    const [info, text] = await Promise.all([stat(path), readFile(path, 'latin1')]);
    const [pidText, host] = text.trim().split(/\s+/);
    const pid = /^\d{1,10}$/.test(pidText ?? '') ? Number(pidText) : undefined;
    const gone = pid !== undefined && (host === undefined || host === hostname()) && !isRunning(pid);
    const old = Date.now() - info.mtimeMs > STALE_AFTER_MS;
    return {
      ino: info.ino,
      mtimeMs: info.mtimeMs,
      stale: gone || old,
      description: pid === undefined ? '' : `, held by pid ${pid}${host === undefined ? '' : ` on ${host}`}`,
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function breakStaleLock(path: string, judged: Holder): Promise<void> {
  try {
    const now = await stat(path);
    // Someone else broke it and took a fresh lock in between: that one is not ours to remove.
    if (now.ino !== judged.ino || now.mtimeMs !== judged.mtimeMs) return;
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function holdLock(path: string, content: string): Dotlock {
  let held = true;
  // Keeps the lock fresh (rule 2 above). A failure to touch is not fatal: at worst, the lock
  // looks stale to others after five minutes, as a dead holder's would.
  const timer = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, TOUCH_EVERY_MS);
  timer.unref();
  const isOurs = (text: string | undefined) => text === content;
  return {
    path,
    async release() {
      if (!held) return;
      held = false;
      clearInterval(timer);
      const text = await readFile(path, 'latin1').catch(() => undefined);
      if (isOurs(text)) await unlink(path).catch(() => {});
    },
    releaseSync() {
      if (!held) return;
      held = false;
      clearInterval(timer);
      let text: string | undefined;
      try {
        text = readFileSync(path, 'latin1');
      } catch {
        return;
      }
      if (!isOurs(text)) return;
      try {
        unlinkSync(path);
      } catch {
        // Gone already: nothing to release.
      }
    },
  };
}
