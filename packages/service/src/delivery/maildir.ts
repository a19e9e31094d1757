import { randomBytes } from 'node:crypto';
import { close as closeCallback, closeSync, fsync as fsyncCallback, open as openCallback, openSync, rename as renameCallback, unlinkSync, writev as writevCallback } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { DeliveryError, type Delivery } from './delivery.js';
import { filesystemFlushFor, type FilesystemFlush } from './filesystem-flush.js';
import { readInto } from './read.js';
import { writeAllSync } from './write.js';

/**
 * Maildir delivery (https://cr.yp.to/proto/maildir.html): each message is written to tmp/ under a
 * name no other delivery can pick. A commit then waits for the batch's files to be written, makes
 * their data durable, renames each into new/, and fsyncs new/ once, so that the renames survive a
 * crash. A reader never sees a partial message: until its rename, which follows its data reaching
 * the disk, it is in tmp/, which readers ignore. The bytes are written exactly as retrieved (CRLF kept), which is what
 * Dovecot and Courier store.
 *
 * A message of at most BUFFERED_MESSAGE_BYTES is read whole into memory and its file created and
 * written on the thread pool while the next messages are read (creating a file costs 35 to 450 us
 * of kernel CPU on the ext4 disk this was measured on, more than the rest of fetch's work for a
 * 4 KB message); its descriptor stays open until the commit fsyncs it. A larger message streams
 * into its file on this thread, and the commit opens it again to fsync it.
 *
 * Making the data durable: one fsync per new file costs a journal commit and a flush of the
 * device's cache each (about 460 us here, four at a time: 10,000 of them were most of a fetch's
 * time, and an fsync of a file already written out still costs the device flush). So a commit of
 * at least FLUSH_MIN_FILES files has their whole filesystem written out with one syncfs instead
 * (filesystem-flush.ts), where it reports a failed write (Linux 5.8 and later, on ext4, XFS,
 * Btrfs); elsewhere, for a few files, or if `sync -f` cannot run, each file is fsynced through the
 * descriptor it was written with. docs/architecture.md, "Fetch: group commit", has the reasoning
 * and what is left to trust.
 */
export async function openMaildir(dir: string, options: MaildirOptions = {}): Promise<Delivery> {
  const fsync = options.fsync ?? fsyncDescriptor;
  await ensureMaildir(dir);
  const flushAtLeast = options.flushAtLeast ?? FLUSH_MIN_FILES;
  let flusher = options.flushFilesystem === undefined ? await filesystemFlushFor(dir) : (options.flushFilesystem ?? undefined);
  /** Descriptors of written files held open for their fsync (see Created); bounded, the rest are opened again. */
  const held = new Set<number>();
  /** Creations that will hold their descriptor open, or hold it: at most HELD_OPEN_FILES. */
  let holding = 0;
  const newDir = await openDescriptor(join(dir, 'new'));
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

  /** After creationsSettled(): closes and removes what no commit took. */
  async function removeUncommitted(): Promise<void> {
    const left = written;
    written = [];
    for (const { tmpPath, created } of left) {
      await releaseAll([await created]);
      unlinkQuietly(tmpPath);
    }
  }

  /** Closes held descriptors; again for the same one does nothing. */
  async function release(fds: ReadonlyArray<number | undefined>): Promise<void> {
    for (const fd of fds) {
      if (fd === undefined || !held.delete(fd)) continue;
      holding -= 1;
      closeQuietly(fd);
    }
  }

  async function releaseAll(outcomes: readonly Created[]): Promise<void> {
    await release(outcomes.map((outcome) => ('fd' in outcome ? outcome.fd : undefined)));
  }

  /** Starts creating `tmpPath` with `parts` on the thread pool; the promise never rejects (see Written.created). */
  function startCreating(tmpPath: string, parts: Buffer[], size: number): Promise<Created> {
    creatingBytes += size;
    const keepOpen = holding < HELD_OPEN_FILES;
    if (keepOpen) holding += 1;
    const entry = {
      created: createFile(tmpPath, parts, size, keepOpen).then(
        (fd): Created => {
          if (fd !== undefined) held.add(fd);
          return { fd };
        },
        (error: unknown): Created => {
          if (keepOpen) holding -= 1;
          return { error };
        },
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
        written.push({ tmpPath, finalPath, created: Promise.resolve({ fd: undefined }) });
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
      let outcomes: Created[] = [];
      try {
        // The data first: a rename that reached the disk before its file's data would show a
        // reader an empty or partial message in new/ after a crash. Every creation is waited
        // for, failed or not, so that none lands in tmp/ after a failure has cleaned up.
        outcomes = await Promise.all(batch.map(({ created }) => created));
        const failed = outcomes.find((outcome) => 'error' in outcome);
        if (failed !== undefined && 'error' in failed) throw failed.error;
        // One syncfs writes the batch out together; the fsyncs then cost little (see above).
        let flushed = false;
        if (flusher !== undefined && batch.length >= flushAtLeast) {
          await releaseAll(outcomes);
          flushed = await flusher.flush();
          // The helper cannot run here: each file on its own from now on.
          if (!flushed) flusher = undefined;
        }
        if (!flushed) {
          await eachAtMost(SYNC_CONCURRENCY, [...batch.keys()], async (index) => {
            const { fd } = outcomes[index] as { fd: number | undefined };
            if (fd === undefined || !held.has(fd)) return syncFile((batch[index] as Written).tmpPath, fsync);
            await fsync(fd);
            await release([fd]);
          });
        }
        await eachAtMost(SYNC_CONCURRENCY, batch, ({ tmpPath, finalPath }) => renameFile(tmpPath, finalPath));
        await fsync(newDir);
      } catch (error) {
        // Not durable, so not delivered: the batch stays on the server and must not also stay here.
        broken = error;
        await releaseAll(outcomes);
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
      await removeUncommitted();
      flusher?.stop();
      closeQuietly(newDir);
    },

    abandon(): void {
      if (partial !== undefined) unlinkQuietly(partial);
      partial = undefined;
      // Whole but never renamed: not delivered, so not left in tmp/ for a cleaner to find. A file
      // the thread pool is creating at this instant may still appear after this: tmp/ holds it
      // then, where readers do not look and cleaners remove what is over 36 hours old. Their
      // descriptors go with the process.
      for (const { tmpPath } of written) unlinkQuietly(tmpPath);
      written = [];
      for (const { tmpPath } of committing) unlinkQuietly(tmpPath);
      flusher?.stop();
    },
  };
}

export interface MaildirOptions {
  /** Makes a file, or new/ itself, durable through its descriptor: fsync(2) by default (a parameter for tests). */
  readonly fsync?: (fd: number) => Promise<void>;
  /**
   * Writes out the Maildir's filesystem before a large batch's fsyncs: by default syncfs through
   * `sync -f` on Linux (filesystem-flush.ts); null for none (a parameter for tests).
   */
  readonly flushFilesystem?: FilesystemFlush | null;
  /** The fewest files a commit flushes the filesystem for: FLUSH_MIN_FILES by default (a parameter for tests). */
  readonly flushAtLeast?: number;
}

interface Written {
  readonly tmpPath: string;
  readonly finalPath: string;
  /**
   * The message's file being created and written (on the thread pool for a message read whole);
   * settles once it is, or with the failure (never rejects, so that no failure goes unhandled
   * before the commit that reports it).
   */
  readonly created: Promise<Created>;
}

/**
 * A written file, not yet fsynced: `handle` the descriptor it was written through, held open so
 * that its fsync reports any write error since (Linux reports a writeback error to descriptors
 * open when it happened, and to a later open only if nothing evicted the inode meanwhile);
 * undefined for a streamed message or beyond HELD_OPEN_FILES, which the commit opens again.
 */
type Created = { readonly fd: number | undefined } | { readonly error: unknown };

/**
 * A message up to this size is read whole before its file is created (see openMaildir); a larger
 * one streams. 4 KB messages are the common case; 256 KB covers most mail without attachments.
 */
const BUFFERED_MESSAGE_BYTES = 256 * 1024;
/** Octets read but not yet in their files at most, about: a slow disk slows the reading instead. */
const CREATING_BYTES = 8 * 1024 * 1024;
/** Files queued on the thread pool at most: enough to keep its four threads busy through a slow creation. */
const CREATING_FILES = 256;
/** Written files whose descriptor waits open for the commit's fsync, at most (Linux's default soft limit is 1,024). */
const HELD_OPEN_FILES = 768;
/**
 * A commit of fewer files fsyncs each without a syncfs first: a syncfs writes out whatever else
 * on the filesystem is dirty too, which a few fsyncs need not wait for.
 */
const FLUSH_MIN_FILES = 32;

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
 * delivery) and writes `parts` (`size` octets), on the thread pool; resolves to the open
 * descriptor if `keepOpen`, else closes it. A failure after the creation removes the file.
 * Node's callbacks, not node:fs/promises: a FileHandle and a promise per call cost the main
 * thread about twice as much CPU per file (10,000 files: 0.52 to 0.77 s against 0.28 to 0.43 s).
 */
function createFile(path: string, parts: Buffer[], size: number, keepOpen: boolean): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    openCallback(path, 'wx', 0o600, (openError, fd) => {
      if (openError !== null) return reject(openError);
      const failed = (error: Error) => closeCallback(fd, () => (unlinkQuietly(path), reject(error)));
      const done = () => (keepOpen ? resolve(fd) : closeCallback(fd, (error) => (error === null ? resolve(undefined) : failed(error))));
      // A short write (a file size limit, more parts than one writev takes): the rest, or the
      // error, from the message joined once.
      let whole: Buffer | undefined;
      const writeFrom = (at: number, from: Buffer[]) => {
        if (at >= size) return done();
        writevCallback(fd, from, (error, written) => {
          if (error !== null) return failed(error);
          if (written === 0) return failed(new Error(`A write to ${path} wrote nothing`));
          whole ??= Buffer.concat(parts, size);
          writeFrom(at + written, [whole.subarray(at + written)]);
        });
      };
      writeFrom(0, parts);
    });
  });
}

function renameFile(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => renameCallback(from, to, (error) => (error === null ? resolve() : reject(error))));
}

async function syncFile(path: string, fsync: (fd: number) => Promise<void>): Promise<void> {
  const fd = await openDescriptor(path);
  try {
    await fsync(fd);
  } finally {
    closeQuietly(fd);
  }
}

/** Opens `path` read-only on the thread pool, as a plain descriptor (see createFile). */
function openDescriptor(path: string): Promise<number> {
  return new Promise((resolve, reject) => openCallback(path, 'r', (error, fd) => (error === null ? resolve(fd) : reject(error))));
}

function fsyncDescriptor(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsyncCallback(fd, (error) => (error === null ? resolve() : reject(error))));
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
/**
 * Random octets for names, drawn 4 KB at a time: randomBytes(4) per name cost 3.5 us of CPU and a
 * getpid(2) each (OpenSSL's fork check; 10,000 of them in strace of a 10,000-message fetch),
 * 0.16 us from the pool.
 */
const RANDOM_POOL_BYTES = 4096;
let randomPool = Buffer.alloc(0);
let randomAt = 0;
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
  if (randomAt === randomPool.length) {
    randomPool = randomBytes(RANDOM_POOL_BYTES);
    randomAt = 0;
  }
  const random = randomPool.toString('hex', randomAt, (randomAt += 4));
  return `${seconds}.M${micros}P${PID}Q${deliveries}R${random}.${safeHostname}`;
}
