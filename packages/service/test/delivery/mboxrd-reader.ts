/**
 * A strict mboxrd reader for tests, written apart from the encoder: it splits an mbox at its
 * "From " lines, checks that each one follows a blank line (or starts the file), drops that blank
 * line, and takes one '>' off each /^>+From / line. It throws on anything a careful reader would
 * choke on, so that a test that reads an mbox back also checks that the mbox is well formed.
 */
import assert from 'node:assert/strict';

export interface MboxEntry {
  /** The envelope line, without its LF. */
  readonly from: string;
  readonly message: Buffer;
}

export function readMboxrd(mbox: Buffer): MboxEntry[] {
  const text = mbox.toString('latin1');
  if (text === '') return [];
  assert.ok(text.startsWith('From '), 'an mbox starts with a "From " line');
  assert.ok(text.endsWith('\n\n'), 'an mbox ends with a blank line');
  const lines = text.slice(0, -1).split('\n');
  const entries: Array<{ from: string; lines: string[] }> = [];
  for (const line of lines) {
    if (line.startsWith('From ')) {
      const previous = entries[entries.length - 1];
      if (previous !== undefined) {
        assert.equal(previous.lines.pop(), '', `a blank line before ${JSON.stringify(line)}`);
      }
      entries.push({ from: line, lines: [] });
      continue;
    }
    (entries[entries.length - 1] as { lines: string[] }).lines.push(line);
  }
  const last = entries[entries.length - 1] as { lines: string[] };
  assert.equal(last.lines.pop(), '', 'a blank line after the last message');
  return entries.map(({ from, lines: body }) => ({
    from,
    message: Buffer.from(body.map((line) => `${line.replace(/^>(>*From )/, '$1')}\n`).join(''), 'latin1'),
  }));
}

/** What an mbox stores of a message: CRLF as LF, and a final newline if it had none. */
export function lfNormalized(message: Buffer): Buffer {
  const text = message.toString('latin1').replace(/\r\n/g, '\n');
  return Buffer.from(text === '' || text.endsWith('\n') ? text : `${text}\n`, 'latin1');
}
