import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** What JSON.stringify writes; like it, a member whose value is undefined is left out. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json | undefined };

/** Lines for people, and the same facts as JSON for `--json`. */
export interface Report {
  readonly kind: 'report';
  readonly lines: readonly string[];
  readonly json: Json;
}

/** A message's exact bytes, whatever the output format. */
export interface Bytes {
  readonly kind: 'bytes';
  readonly body: Readable;
}

/**
 * A report of many rows, each made only as it is written: a listing of two million messages is
 * never an array of two million strings, nor one string of them all. `--json` writes the rows as
 * one JSON array, as a Report of the same rows would.
 */
export interface Rows {
  readonly kind: 'rows';
  readonly count: number;
  line(i: number): string;
  json(i: number): Json;
}

/**
 * What a command produces. Commands do not write to stdout themselves: the session decides when,
 * because a body must be read while the session is open and a report must wait for QUIT.
 */
export type CommandOutput = Report | Rows | Bytes;

export function rows(count: number, line: (i: number) => string, json: (i: number) => Json): Rows {
  return { kind: 'rows', count, line, json };
}

export function report(lines: readonly string[], json: Json): Report {
  return { kind: 'report', lines, json };
}

export function bytes(body: Readable): Bytes {
  return { kind: 'bytes', body };
}

/**
 * A message's bytes as JSON, for `--json` where the output is otherwise the bytes themselves:
 * base64, because JSON strings hold text and a message is bytes (8-bit, any charset, CRLF).
 * The message is held whole, up to the client's maxMessageBytes.
 */
export function messageJson(fields: Readonly<Record<string, number>>, message: Buffer): Report {
  return report([], { ...fields, size: message.length, base64: message.toString('base64') });
}

let wroteJson = false;

/** For a new run of main() in the same process. */
export function forgetJsonWritten(): void {
  wroteJson = false;
}

/** Whether this run printed a JSON report already: a failure after it adds no second document. */
export function jsonWritten(): boolean {
  return wroteJson;
}

/** Resolves once stdout has taken the report (or rejects with its error: EPIPE when the reader left). */
export function writeReport(output: Report, asJson: boolean): Promise<void> {
  if (asJson) wroteJson = true;
  const text = asJson ? `${JSON.stringify(output.json)}\n` : output.lines.map((line) => `${line}\n`).join('');
  if (text === '') return Promise.resolve();
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

/** Text written to stdout at a time: large enough for few writes, small enough to hold nothing much. */
const ROWS_CHUNK = 64 * 1024;

/** Writes rows to stdout a chunk at a time, waiting for it to drain: memory stays flat however many. */
export async function writeRows(output: Rows, asJson: boolean): Promise<void> {
  if (asJson) wroteJson = true;
  let text = asJson ? '[' : '';
  for (let i = 0; i < output.count; i++) {
    text += asJson ? `${i === 0 ? '' : ','}${JSON.stringify(output.json(i))}` : `${output.line(i)}\n`;
    if (text.length >= ROWS_CHUNK) {
      await writeText(text);
      text = '';
    }
  }
  if (asJson) text += ']\n';
  if (text !== '') await writeText(text);
}

/** Resolves once stdout has taken `text`; rejects with its error (EPIPE when the reader left). */
function writeText(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Streams a body to stdout as bytes, never as text. Backpressure reaches the server: a slow
 * reader pauses the body, which pauses the socket. stdout is not ended: it is the process's,
 * not ours (and main() may be called again in the same process).
 */
export function writeBytes(body: Readable): Promise<void> {
  return pipeline(body, process.stdout, { end: false });
}

function ignore(): void {}

/**
 * Keeps a failed write to stdout from becoming an uncaught 'error' event with a stack trace:
 * EPIPE, when the reader of a pipe goes away, is the usual one. Every write above awaits its own
 * outcome and sees the same error, so the listener itself has nothing to do. Added once per process.
 */
export function handleStdoutErrors(): void {
  if (!process.stdout.listeners('error').includes(ignore)) process.stdout.on('error', ignore);
}
