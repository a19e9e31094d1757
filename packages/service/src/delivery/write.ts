import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/**
 * Writes all of `chunk` (a write may take less than asked: a full disk, a file size limit), or
 * throws. Synchronous on purpose: a chunk (at most one socket read) goes into the page cache in
 * microseconds, while an asynchronous write keeps it alive across a thread-pool round trip, long
 * enough to outlive a young-generation collection: streaming 100 MB that way more than doubled the
 * peak RSS. And abandon() (mbox.ts) relies on no write being in flight on another thread.
 */
export function writeAllSync(file: FileHandle | number, chunk: Buffer): void {
  const fd = typeof file === 'number' ? file : file.fd;
  for (let offset = 0; offset < chunk.length; ) {
    offset += writeSync(fd, chunk, offset, chunk.length - offset);
  }
}

