import { readFile } from 'node:fs/promises';
import { UsageError } from './failure.js';

/** Reads the file an option names; a file that cannot be read is the caller's mistake. */
export async function readOptionFile(option: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UsageError(`Cannot read the file given to ${option}: ${reason}`);
  }
}
