import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { statfs } from 'node:fs/promises';
import { release } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { DeliveryError } from './delivery.js';

/**
 * Makes a whole filesystem durable in one go: syncfs(2), which writes out every dirty page and
 * inode on it, commits the journal once and flushes the device's cache, and (Linux 5.8 and later)
 * fails if a write to that filesystem failed since the caller opened it. A Maildir commit uses it
 * instead of one fsync per file (see maildir.ts and docs/architecture.md, "Fetch: group commit").
 */
export interface FilesystemFlush {
  /**
   * Resolves true once the filesystem is durable; false if this flush cannot be had (the helper
   * did not start, `sync` knows no -f), so the caller fsyncs each file instead; rejects with a
   * DeliveryError if the syncfs failed: something written may not be on the disk.
   */
  flush(): Promise<boolean>;
  /** Ends the helper. Synchronous (abandon() calls it) and safe to call twice. */
  stop(): void;
}

/**
 * Filesystems whose syncfs writes out file data and reports writeback errors through the
 * superblock (mapping_set_error feeds sb->s_wb_err, which syncfs checks since Linux 5.8): ext2/3/4,
 * XFS, Btrfs, and tmpfs (nothing to write). Elsewhere the Maildir fsyncs each file: on NFS and
 * FUSE a syncfs may not reach the server's disk, and overlayfs passes errors on only since 5.15.
 */
const SYNCFS_FILESYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994]);

/**
 * The flush for the Maildir at `dir`, or undefined where syncfs cannot be trusted to report a
 * failed write: not Linux, a kernel before 5.8 (syncfs returned 0 whatever happened), or a
 * filesystem not in SYNCFS_FILESYSTEMS.
 */
export async function filesystemFlushFor(dir: string): Promise<FilesystemFlush | undefined> {
  if (process.platform !== 'linux' || !kernelAtLeast(release(), 5, 8)) return undefined;
  const { type } = await statfs(dir);
  if (!SYNCFS_FILESYSTEMS.has(type)) return undefined;
  return syncfsHelper(dir);
}

export function kernelAtLeast(version: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (match === null) return false;
  const [have, haveMinor] = [Number(match[1]), Number(match[2])];
  return have > major || (have === major && haveMinor >= minor);
}

/**
 * The shell loop behind syncfsHelper. Node has no binding for syncfs, and forking the Node process
 * for each flush costs 10 to 20 ms of its thread; the shell, forked once, forks `sync` (coreutils'
 * `sync -f DIR`: syncfs on DIR's filesystem) for each line it reads, and answers with a line. The
 * first sync is a probe, answered `ready` or `unavailable` (an old coreutils or a BusyBox without
 * -f): taken before any of this run's files exist, so that a usage error is never mistaken for a
 * failed write, nor a failed write for a missing option.
 */
const LOOP = [
  'if sync -f -- "$1" 2>/dev/null; then echo ready; else echo unavailable; exit 0; fi',
  'while read -r _; do if sync -f -- "$1" 2>/dev/null; then echo ok; else echo "failed $?"; fi; done',
].join('\n');

/** A FilesystemFlush through `sh -c LOOP` (see LOOP), started at the first flush. `path` replaces PATH (for tests). */
export function syncfsHelper(dir: string, { path }: { readonly path?: string } = {}): FilesystemFlush {
  let helper: ChildProcessByStdio<Writable, Readable, null> | undefined;
  /** Whether `ready` came; undefined until the probe answered. */
  let usable: boolean | undefined;
  let ended = false;
  /** Flushes waiting for their answer line, oldest first: the helper answers in order. */
  const waiting: Array<(line: string | undefined) => void> = [];

  const end = () => {
    ended = true;
    for (const answer of waiting.splice(0)) answer(undefined);
  };

  const start = () => {
    const env = path === undefined ? process.env : { ...process.env, PATH: path };
    const child = spawn('/bin/sh', ['-c', LOOP, 'popwire-syncfs', dir], { stdio: ['pipe', 'pipe', 'ignore'], env });
    child.on('error', end);
    child.on('close', end);
    child.stdin.on('error', () => {});
    let pending = '';
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (text: string) => {
      pending += text;
      for (let at = pending.indexOf('\n'); at !== -1; at = pending.indexOf('\n')) {
        const line = pending.slice(0, at);
        pending = pending.slice(at + 1);
        if (usable === undefined) usable = line === 'ready';
        else waiting.shift()?.(line);
      }
      if (waiting.length === 0) hold(child, false);
    });
    hold(child, false);
    return child;
  };

  return {
    flush() {
      if (ended || usable === false) return Promise.resolve(false);
      helper ??= start();
      const child = helper;
      return new Promise<boolean>((resolve, reject) => {
        waiting.push((line) => {
          if (line === 'ok') resolve(true);
          else if (line === undefined) resolve(false);
          else reject(new DeliveryError(`syncfs of the filesystem holding ${dir} failed (sync -f: ${line}): a write may not have reached the disk`));
        });
        // Held while a flush waits, so that the process cannot exit under it; let go between flushes.
        hold(child, true);
        child.stdin.write('\n');
      });
    },
    stop() {
      if (helper !== undefined && !ended) {
        helper.stdin.end();
        helper.kill();
      }
      end();
    },
  };
}

/** The helper and its pipes keep the process alive only while a flush waits for its answer. */
function hold(child: ChildProcessByStdio<Writable, Readable, null>, keepAlive: boolean): void {
  const pipes = [child.stdout, child.stdin] as Array<{ ref?: () => void; unref?: () => void }>;
  if (keepAlive) {
    child.ref();
    for (const pipe of pipes) pipe.ref?.();
  } else {
    child.unref();
    for (const pipe of pipes) pipe.unref?.();
  }
}
