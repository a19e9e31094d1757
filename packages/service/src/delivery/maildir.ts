import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { DeliveryError, type Delivery } from './delivery.js';
import { readInto } from './read.js';
import { writeAllSync } from './write.js';

/**
 * Maildir delivery (https://cr.yp.to/proto/maildir.html): each message is written to tmp/ under a
 * name no other delivery can pick, fsynced, then renamed into new/, and new/ is fsynced so that
 * the rename itself survives a crash. A reader never sees a partial message: until the rename it
 * is in tmp/, which readers ignore. The bytes are written exactly as retrieved (CRLF kept), which
 * is what Dovecot and Courier store.
 */
export async function openMaildir(dir: string): Promise<Delivery> {
  await ensureMaildir(dir);
  const newDir = await open(join(dir, 'new'), 'r');
  let partial: string | undefined;

  return {
    durable: true,

    async deliver(_n: number, body: Readable, onRead?: (octets: number) => void): Promise<void> {
      // The body may fail (the connection drops) while the file is being created, before anything
      // reads it: the stream keeps the error for readInto() to report, and this listener keeps it
      // from being an uncaught 'error' event meanwhile.
      body.on('error', ignore);
      const name = uniqueName();
      const tmpPath = join(dir, 'tmp', name);
      partial = tmpPath;
      let size: number;
      try {
        // 'wx': O_EXCL, so that a name collision fails instead of overwriting another delivery.
        size = await writeDurably(tmpPath, body, onRead);
      } catch (error) {
        // Unread if the file could not even be created: let the connection drain it and go on.
        body.destroy();
        await unlink(tmpPath).catch(() => {});
        partial = undefined;
        throw error;
      }
      // The size goes into the final name (Dovecot and Courier read it from there); it is known only now.
      const finalPath = join(dir, 'new', `${name},S=${size}`);
      try {
        await rename(tmpPath, finalPath);
      } catch (error) {
        await unlink(tmpPath).catch(() => {});
        partial = undefined;
        throw error;
      }
      partial = undefined;
      try {
        await newDir.sync();
      } catch (error) {
        // Not durable, so not delivered: the message stays on the server and must not also stay here.
        await unlink(finalPath).catch(() => {});
        throw error;
      }
    },

    async close(): Promise<void> {
      await newDir.close();
    },

    abandon(): void {
      if (partial === undefined) return;
      try {
        unlinkSync(partial);
      } catch {
        // Gone already, or tmp/ unwritable: a reader ignores tmp/ anyway, and cleans it up.
      }
      partial = undefined;
    },
  };
}

function ignore(): void {}

/** Streams `body` into a new file at `path`, fsyncs it, and returns its size. */
async function writeDurably(path: string, body: Readable, onRead: ((octets: number) => void) | undefined): Promise<number> {
  const handle = await open(path, 'wx', 0o600);
  let size = 0;
  try {
    await readInto(body, (chunk) => {
      writeAllSync(handle, chunk);
      size += chunk.length;
      onRead?.(chunk.length);
    });
    await handle.sync();
  } finally {
    await handle.close();
  }
  return size;
}

/**
 * Creates DIR/tmp, DIR/new and DIR/cur where missing (and DIR, and its parents), and fsyncs the
 * directories that gained an entry, so that the Maildir outlives a crash before its first message.
 */
async function ensureMaildir(dir: string): Promise<void> {
  const first = await makeDirectories(dir, 0o700);
  let changed = false;
  for (const sub of ['tmp', 'new', 'cur']) {
    const path = join(dir, sub);
    try {
      await mkdir(path, { mode: 0o700 });
      changed = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (!(await stat(path)).isDirectory()) {
        throw new DeliveryError(`${dir} is not a Maildir: ${path} exists and is not a directory`);
      }
    }
  }
  if (changed) await syncDirectory(dir);
  if (first !== undefined) {
    // mkdir -p made `first` and everything below it down to `dir`: each one's parent gained an entry.
    const top = resolve(first);
    for (let made = resolve(dir); made.length >= top.length && made !== dirname(made); made = dirname(made)) {
      await syncDirectory(dirname(made));
    }
  }
}

/**
 * `mkdir -p`, one level at a time; resolves to the first folder it made, like mkdir's `recursive`.
 * Not `mkdir(dir, { recursive: true })`: where mkdir(2) says ENOENT although the parent exists
 * (`/proc/nope`: /proc takes no new entries), libuv's recursive mkdir (Node 20) goes back to
 * the parent, finds it there, and tries again, forever, at full CPU in a thread the process
 * cannot cancel. Here each level is tried once and its error is the answer.
 */
async function makeDirectories(dir: string, mode: number): Promise<string | undefined> {
  const path = resolve(dir);
  try {
    await mkdir(path, { mode });
    return path;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!(await stat(path)).isDirectory()) throw error;
      return undefined;
    }
    const parent = dirname(path);
    if (code !== 'ENOENT' || parent === path) throw error;
    const first = await makeDirectories(parent, mode);
    // The parent is there now (made, or found): this level's error, if it fails again, is final.
    await mkdir(path, { mode }).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
    return first ?? path;
  }
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

let deliveries = 0;
const safeHostname = hostname().replace(/[/:,]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

/**
 * A name unique across hosts, processes and time, in the Maildir spec's "modern" form:
 * `<seconds>.M<microseconds>P<pid>Q<deliveries by this process>R<random>.<host>`. The host has
 * '/' and ':' (and ',', which starts the ",S=" field) written as \057, \072 and \054.
 */
export function uniqueName(): string {
  const nowUs = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const seconds = Math.floor(nowUs / 1_000_000);
  const micros = nowUs % 1_000_000;
  deliveries += 1;
  const random = randomBytes(4).toString('hex');
  return `${seconds}.M${micros}P${process.pid}Q${deliveries}R${random}.${safeHostname}`;
}
