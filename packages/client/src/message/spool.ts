import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * The temporary folder that holds one message's large parts. It is made on first use, by
 * mkdtemp, so its mode is 0700 and its name cannot be guessed: mail is private, and /tmp is
 * shared.
 */
export class SpoolFolder {
  private made: Promise<string> | undefined;
  private files = 0;

  constructor(private readonly parent: string) {}

  /** The folder, if anything was spooled. */
  get path(): Promise<string> | undefined {
    return this.made;
  }

  /** A new file that receives what `decoder` (a transfer-encoding decoder) puts out. */
  async file(decoder: Transform): Promise<SpoolFile> {
    this.made ??= mkdtemp(join(this.parent, 'popwire-message-'));
    const path = join(await this.made, `part-${++this.files}`);
    return new SpoolFile(path, decoder);
  }

  async remove(): Promise<void> {
    const made = this.made;
    this.made = undefined;
    if (made !== undefined) await rm(await made, { recursive: true, force: true });
  }
}

/** One spooled part: encoded octets written in, decoded octets land in the file. */
export class SpoolFile {
  private readonly file: WriteStream;
  private readonly done: Promise<void>;

  constructor(
    readonly path: string,
    private readonly decoder: Transform,
  ) {
    this.file = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    this.done = pipeline(decoder, this.file);
    // Awaited in write() and end(); until then a failure must not count as unhandled.
    this.done.catch(() => {});
  }

  /** Writes with backpressure: a slow disk slows the parse rather than filling memory. */
  async write(chunk: Buffer): Promise<void> {
    if (!this.decoder.write(chunk)) await Promise.race([once(this.decoder, 'drain'), this.done]);
  }

  /** Ends the part; resolves with the decoded size once it is on disk. */
  async end(): Promise<number> {
    this.decoder.end();
    await this.done;
    return this.file.bytesWritten;
  }
}
