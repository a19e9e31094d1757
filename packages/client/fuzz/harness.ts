/**
 * What the fuzz targets share: the seed corpus, a mutator over it, arbitrary chunkings, an engine
 * on a fake socket, and the one property every target checks, that whatever the server sends
 * ends in a value or in one of popwire's typed errors.
 *
 * Not a coverage-guided fuzzer: @jazzer.js/core does not run here (4.0.0's prebuilt addon needs
 * glibc 2.38, Debian 12 has 2.36; 2.1.0 downloads its addon from GitHub at install). fast-check
 * at scale instead: random bytes, and the fixtures and real server replies mutated.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import fc from 'fast-check';
import { Engine, type SessionState } from '../src/engine.ts';
import { Pop3Error } from '../src/errors.ts';

export interface FuzzTarget {
  readonly name: string;
  readonly property: fc.IRawProperty<never> | fc.IRawProperty<any>;
}

const FIXTURES = new URL('../test/fixtures/', import.meta.url);
const CORPUS = new URL('./corpus/', import.meta.url);

function filesIn(dir: URL): Buffer[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory()) return filesIn(new URL(`${entry.name}/`, dir));
    return entry.name.endsWith('.eml') ? [readFileSync(new URL(entry.name, dir))] : [];
  });
}

/** The messages of test/fixtures (plain and MIME). */
export const MESSAGES: readonly Buffer[] = filesIn(FIXTURES);

/** Server replies (greetings, CAPA, LIST, UIDL, STAT, SASL challenges) from fuzz/corpus, one file each. */
export function corpus(prefix: string): Buffer[] {
  return readdirSync(CORPUS)
    .filter((name) => name.startsWith(prefix))
    .sort()
    .map((name) => readFileSync(new URL(name, CORPUS)));
}

/** Bytes a server is likely to get wrong, mixed into random and mutated inputs. */
const TOKENS = ['\r\n', '\n', '\r', '.', '..', '.\r\n', '\n.\r', '\r\n.\r', '\n.\n', '\r\n..', '.\rx', '+OK', '-ERR', '+ ', ' ', '\t', '<', '>', '@', '=', ',', '0', '4096', '99999999999999999', '\x00', '\xff', '[', ']'];

/** One of `seeds` with up to 8 edits: a byte set, a range cut, a range repeated, or a token inserted. */
export function mutated(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 64 }), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'repeat', 'token'), fc.constantFrom(...TOKENS)), {
        maxLength: 8,
      }),
    )
    .map(([base, edits]) => {
      let bytes = Buffer.from(base);
      for (const [at, length, byte, kind, token] of edits) {
        const i = at % (bytes.length + 1);
        if (kind === 'set' && i < bytes.length) bytes[i] = byte;
        else if (kind === 'cut') bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + length)]);
        else if (kind === 'repeat') bytes = Buffer.concat([bytes.subarray(0, i + length), bytes.subarray(i, i + length), bytes.subarray(i + length)]);
        else bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from(token, 'latin1'), bytes.subarray(i)]);
      }
      return bytes;
    });
}

/** Random bytes, biased toward the tokens above so that line structure appears. */
export const protocolish: fc.Arbitrary<Buffer> = fc
  .array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b).toString('latin1'))), { maxLength: 48 })
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

/** Seeds mutated, or protocol-ish random bytes. */
export function inputs(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return seeds.length === 0 ? protocolish : fc.oneof({ arbitrary: mutated(seeds), weight: 3 }, { arbitrary: protocolish, weight: 1 });
}

/** Cut points for splitting an input into socket chunks: fractions, so they fit any length. */
export const cuts: fc.Arbitrary<number[]> = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 });

export function chunked(bytes: Buffer, at: readonly number[]): Buffer[] {
  const points = [...new Set(at.map((f) => Math.floor(f * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(from, point));
    from = point;
  }
  chunks.push(bytes.subarray(from));
  // Copies: a view into one big buffer would hide a reader that looks past its chunk's end.
  return chunks.map((chunk) => Buffer.from(chunk));
}

/**
 * The property every target shares: a failure is a Pop3Error, and not the engine's wrapper for a
 * plain exception thrown while reading ("Internal error while reading a reply"), which is a bug.
 */
export function assertTyped(error: unknown): asserts error is Pop3Error {
  if (!(error instanceof Pop3Error)) throw new Error(`untyped failure: ${String(error)}`, { cause: error });
  if (error.cause !== undefined && !(error.cause instanceof Pop3Error) && /Internal error/.test(error.message)) {
    throw new Error(`a parser threw a plain exception: ${String(error.cause)}`, { cause: error.cause });
  }
}

/** Long enough for a SCRAM step's PBKDF2 (4096 rounds: about 5 ms); a longer one ends in a (typed) timeout. */
const IDLE_MS = 50;

/**
 * A socket that answers each command the engine writes with the next reply of `replies`, each
 * delivered in the chunks given; after the last reply it closes. Everything is synchronous
 * except the delivery, which waits a tick so the engine is never re-entered.
 */
class ScriptedSocket extends EventEmitter {
  destroyed = false;
  written: Buffer[] = [];
  constructor(private readonly replies: Buffer[][]) {
    super();
  }
  /** Sends the next reply (at connect: the greeting). */
  next(): void {
    const reply = this.replies.shift();
    const last = this.replies.length === 0;
    setImmediate(() => {
      if (this.destroyed) return;
      if (reply === undefined) {
        this.destroy();
        return;
      }
      for (const chunk of reply) if (!this.destroyed) this.emit('data', chunk);
      // The last reply said, the server hangs up: an unfinished reply must end, not wait forever.
      if (last) this.destroy();
      // A reply cut short, with more to come: the server waits for a command the client never
      // writes. The engine's idle timeout ends that in real life; here it fires after IDLE_MS.
      const written = this.written.length;
      setTimeout(() => {
        if (!this.destroyed && this.written.length === written) this.emit('timeout');
      }, IDLE_MS).unref();
    });
  }
  write(bytes: Buffer): boolean {
    this.written.push(bytes);
    this.next();
    return true;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    setImmediate(() => this.emit('close'));
  }
  cork(): void {}
  uncork(): void {}
  pause(): void {}
  resume(): void {}
  setTimeout(): void {}
}

/**
 * An engine in `state` whose server answers the first command with `replies[0]`, the next with
 * `replies[1]`, and so on (with `greeting`, replies[0] is sent at once), each reply cut into
 * chunks at `at`.
 */
export function scriptedEngine(replies: readonly Buffer[], at: readonly number[], state: SessionState = 'transaction', greeting = false): Engine {
  const socket = new ScriptedSocket(replies.map((reply) => chunked(reply, at)));
  const engine = new Engine(socket as unknown as Socket, { timeout: 1000, maxLineLength: 8192, pipelineDepth: 4, maxBufferedBytes: 1 << 20 });
  engine.state = state;
  // The server speaks first: replies[0] is the greeting, sent before any command.
  if (greeting) socket.next();
  return engine;
}

/** The outcome of a promise, for comparing two runs: its value as JSON, or its error's class and code. */
export async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    return `value ${JSON.stringify(await promise)}`;
  } catch (error) {
    assertTyped(error);
    return `${error.name} ${error.code}`;
  }
}

/** Fails an input that took longer than `ms` (a sync parser gone super-linear). */
export function timed<T>(ms: number, run: () => T): T {
  const start = performance.now();
  const result = run();
  const took = performance.now() - start;
  if (took > ms) throw new Error(`took ${Math.round(took)} ms (bound ${ms} ms)`);
  return result;
}
