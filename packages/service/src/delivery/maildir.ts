import { randomBytes } from 'node:crypto';
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { DeliveryError, type Delivery } from './delivery.js';
import { readInto } from './read.js';
import { writeAllSync } from './write.js';

/**
 * Maildir delivery (https://cr.yp.to/proto/maildir.html): each message is written to tmp/ under a
 * name no other delivery can pick, and fsynced. A commit then waits for the batch's files to be
 * written and fsynced, renames each into new/, and fsyncs new/ once, so that the renames survive a
 * crash. A reader never sees a partial message: until its rename, which follows its fsync, it is
 * in tmp/, which readers ignore. The bytes are written exactly as retrieved (CRLF kept), which is
 * what Dovecot and Courier store.
 *
 * Creating a file is the cost here: 150 to 450 us of kernel CPU per file on the ext4 disk this was
 * measured on (an open with O_CREAT, whatever follows it), more than all the rest of fetch's work
 * for a 4 KB message. So a message of at most BUFFERED_MESSAGE_BYTES is read whole into memory and
 * its file created, written, fsynced and closed on the thread pool while the next messages are
 * read: the creations run beside the retrieval instead of between its messages, and the fsyncs
 * are spread over the batch window rather than queued at the commit. A larger message streams
 * into its file on this thread, as before, and the commit fsyncs it.
 */
export async function openMaildir(dir: string, options: MaildirOptions = {}): Promise<Delivery> {
  const fsync = options.fsync ?? ((handle: FileHandle) => handle.sync());
  await ensureMaildir(dir);
  const newDir = await open(join(dir, 'new'), 'r');
  /** The large message being streamed to its file, to remove if the process exits now. */
  let partial: string | undefined;
  /** Whole messages in tmp/ (or on their way there), not yet renamed: the next commit's batch. */
  let written: Written[] = [];
  /** Renamed into new/ by the commit running now, and their tmp/ names: what a failed commit removes. */
  let committing: Written[] = [];
  /** Why the last commit failed; from then on nothing is accepted. */
  let broken: unknown;
  /**
   * Files being created on the thread pool, oldest first (the pool takes them in that order), and
   * the octets they hold in memory until then. Waited on one at a time, from the oldest: a race
   * over all of them would add a reaction to each, on every message.
   */
  const creating: Array<{ readonly created: Promise<unknown>; done: boolean }> = [];
  let creatingBytes = 0;

  /** Drops the settled creations at the front; waits for the oldest while there are too many. */
  async function makeRoom(): Promise<void> {
    for (;;) {
      while (creating[0]?.done === true) creating.shift();
      const oldest = creating[0];
      if (oldest === undefined || (creatingBytes <= CREATING_BYTES && creating.length < CREATING_FILES)) return;
      await oldest.created;
    }
  }

  /** Every creation started has settled: no file can appear in tmp/ after this. */
  async function creationsSettled(): Promise<void> {
    await Promise.all(creating.map(({ created }) => created));
    creating.length = 0;
  }

  function removeUncommitted(): void {
    for (const { tmpPath } of written) unlinkQuietly(tmpPath);
    written = [];
  }

  /** Starts creating `tmpPath` with `parts` on the thread pool; the promise never rejects (see Written.created). */
  function startCreating(tmpPath: string, parts: Buffer[], size: number): Promise<unknown> {
    creatingBytes += size;
    const entry = {
      created: createFile(tmpPath, parts, size, fsync).then(
        () => undefined,
        (error: unknown) => ({ error }),
      ),
      done: false,
    };
    creating.push(entry);
    void entry.created.then(() => {
      entry.done = true;
      creatingBytes -= size;
    });
    return entry.created;
  }

  return {
    durable: true,

    async deliver(_n: number, body: Readable, onRead?: (octets: number) => void): Promise<void> {
      if (broken !== undefined) {
        body.destroy();
        throw broken;
      }
      // Memory stays bounded when the disk is slower than the network.
      await makeRoom();
      const name = uniqueName();
      const tmpPath = join(dir, 'tmp', name);
      let parts: Buffer[] = [];
      let size = 0;
      /** Set once the message passed BUFFERED_MESSAGE_BYTES: it streams into this file from then on. */
      let fd: number | undefined;
      try {
        await readInto(body, (chunk) => {
          size += chunk.length;
          if (fd === undefined && size <= BUFFERED_MESSAGE_BYTES) {
            parts.push(chunk);
          } else {
            if (fd === undefined) {
              partial = tmpPath;
              // 'wx': O_EXCL, so that a name collision fails instead of overwriting another delivery.
              fd = openSync(tmpPath, 'wx', 0o600);
              for (const part of parts) writeAllSync(fd, part);
              parts = [];
            }
            writeAllSync(fd, chunk);
          }
          onRead?.(chunk.length);
        });
      } catch (error) {
        // Unread if the file could not even be created: let the connection drain it and go on.
        body.destroy();
        if (fd !== undefined) {
          closeQuietly(fd);
          unlinkQuietly(tmpPath);
        }
        throw error;
      } finally {
        partial = undefined;
      }
      // The size goes into the final name (Dovecot and Courier read it from there); it is known only now.
      const finalPath = join(dir, 'new', `${name},S=${size}`);
      if (fd !== undefined) {
        closeSync(fd);
        written.push({ tmpPath, finalPath, created: undefined });
      } else {
        written.push({ tmpPath, finalPath, created: startCreating(tmpPath, parts, size) });
      }
    },

    async commit(): Promise<void> {
      if (broken !== undefined) throw broken;
      const batch = written;
      written = [];
      if (batch.length === 0) return;
      committing = batch;
      try {
        // The data first: a rename that reached the disk before its file's data would show a
        // reader an empty or partial message in new/ after a crash. Every creation is waited
        // for, failed or not, so that none lands in tmp/ after a failure has cleaned up.
        let failure: { error: unknown } | undefined;
        for (const { created } of batch) {
          const outcome = (await created) as { error: unknown } | undefined;
          failure ??= outcome;
        }
        if (failure !== undefined) throw failure.error;
        const streamed = batch.filter(({ created }) => created === undefined);
        await eachAtMost(SYNC_CONCURRENCY, streamed, ({ tmpPath }) => syncFile(tmpPath, fsync));
        await eachAtMost(SYNC_CONCURRENCY, batch, ({ tmpPath, finalPath }) => rename(tmpPath, finalPath));
        await fsync(newDir);
      } catch (error) {
        // Not durable, so not delivered: the batch stays on the server and must not also stay here.
        broken = error;
        for (const { tmpPath, finalPath } of batch) {
          unlinkQuietly(tmpPath);
          unlinkQuietly(finalPath);
        }
        throw error;
      } finally {
        committing = [];
      }
    },

    async close(): Promise<void> {
      await creationsSettled();
      removeUncommitted();
      await newDir.close();
    },

    abandon(): void {
      if (partial !== undefined) unlinkQuietly(partial);
      partial = undefined;
      // Whole but never renamed: not delivered, so not left in tmp/ for a cleaner to find. A file
      // the thread pool is creating at this instant may still appear after this: tmp/ holds it
      // then, where readers do not look and cleaners remove what is over 36 hours old.
      removeUncommitted();
      for (const { tmpPath } of committing) unlinkQuietly(tmpPath);
    },
  };
}

export interface MaildirOptions {
  /** Makes a file, or new/ itself, durable: fsync by default (a parameter for tests). */
  readonly fsync?: (handle: FileHandle) => Promise<void>;
}

interface Written {
  readonly tmpPath: string;
  readonly finalPath: string;
  /**
   * A message read whole: its file being created, written and fsynced on the thread pool; settles
   * with undefined once it is, or with the failure (never rejects, so that no failure goes
   * unhandled before the commit that reports it). Undefined for a large message, streamed into
   * its file already and fsynced by the commit.
   */
  readonly created: Promise<unknown> | undefined;
}

/**
 * A message up to this size is read whole before its file is created (see openMaildir); a larger
 * one streams. 4 KB messages are the common case; 256 KB covers most mail without attachments.
 */
const BUFFERED_MESSAGE_BYTES = 256 * 1024;
/** Octets read but not yet in their files at most, about: a slow disk slows the reading instead. */
const CREATING_BYTES = 8 * 1024 * 1024;
/** Files queued on the thread pool at most: enough to keep its four threads busy through a slow fsync. */
const CREATING_FILES = 256;

/**
 * fsyncs in flight at once in a commit. libuv runs four at a time (its thread pool); a few more
 * queued keep those four busy, while a whole batch queued at once could run out of descriptors.
 */
const SYNC_CONCURRENCY = 8;

/** Runs `task` on each item, at most `limit` at a time; rejects with the first failure, once every started task settled. */
async function eachAtMost<T>(limit: number, items: readonly T[], task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      await task(item).catch((error: unknown) => void (failure ??= { error }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already, or the folder unwritable: a reader ignores tmp/ anyway, and cleans it up.
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The descriptor goes with the process at the latest.
  }
}

/**
 * Creates `path` ('wx': O_EXCL, so that a name collision fails instead of overwriting another
 * delivery), writes `parts` (`size` octets) and fsyncs it, on the thread pool. A failure after
 * the creation removes the file.
 */
async function createFile(path: string, parts: Buffer[], size: number, fsync: (handle: FileHandle) => Promise<void>): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    let done = 0;
    if (size > 0) done = (await handle.writev(parts)).bytesWritten;
    if (done < size) {
      // A short write (more parts than one writev takes, a file size limit): the rest, or the error.
      const whole = Buffer.concat(parts, size);
      while (done < size) done += (await handle.write(whole, done, size - done)).bytesWritten;
    }
    await fsync(handle);
  } catch (error) {
    await handle.close().catch(() => {});
    unlinkQuietly(path);
    throw error;
  }
  await handle.close();
}

async function syncFile(path: string, fsync: (handle: FileHandle) => Promise<void>): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await fsync(handle);
  } finally {
    await handle.close();
  }
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
/** Read once: `process.pid` is a getpid(2) call each time (10,000 of them in a 10,000-message fetch, in strace). */
const PID = process.pid;
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
  return `${seconds}.M${micros}P${PID}Q${deliveries}R${random}.${safeHostname}`;
}
