/**
 * The framing layer: the line reader, the dot decoder and the status-line parser, fed bytes in
 * every split a socket could produce.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Pop3Error, Pop3ProtocolError } from '../src/errors.ts';
import { DotDecoder } from '../src/protocol/dot-decoder.ts';
import { LineReader } from '../src/protocol/line-reader.ts';
import { parseStatusLine } from '../src/protocol/status.ts';
import { chunked, corpus, cuts, inputs, MESSAGES, timed, type FuzzTarget } from './harness.ts';

const replies = [...corpus('greeting'), ...corpus('capa'), ...corpus('list'), ...corpus('uidl'), ...corpus('stat')];

type Lines = { lines: string[]; tooLong: boolean };

/** What a reader must give for `bytes`, whatever the chunking: the lines, then a too-long failure or not. */
function expectedLines(bytes: Buffer, max: number): Lines {
  const lines: string[] = [];
  let start = 0;
  for (let lf = bytes.indexOf(0x0a); lf !== -1; lf = bytes.indexOf(0x0a, start)) {
    let line = bytes.subarray(start, lf);
    if (line.at(-1) === 0x0d) line = line.subarray(0, -1);
    if (line.length > max) return { lines, tooLong: true };
    lines.push(line.toString('latin1'));
    start = lf + 1;
  }
  // An unfinished line may still end well: a final CR is the first half of its CRLF.
  const tail = bytes.subarray(start);
  return { lines, tooLong: tail.length - (tail.at(-1) === 0x0d ? 1 : 0) > max };
}

function readLines(chunks: readonly Buffer[], max: number): Lines {
  const reader = new LineReader(max);
  const lines: string[] = [];
  try {
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length; ) {
        const end = reader.push(chunk, at);
        if (end === -1) break;
        lines.push(reader.take().toString('latin1'));
        at = end;
      }
    }
  } catch (error) {
    assert.ok(error instanceof Pop3ProtocolError && error.code === 'POP3_LINE_TOO_LONG', String(error));
    return { lines, tooLong: true };
  }
  return { lines, tooLong: false };
}

const lineReader = fc.property(inputs([...replies, ...MESSAGES]), cuts, fc.integer({ min: 1, max: 200 }), (bytes, at, max) => {
  assert.deepEqual(
    timed(1000, () => readLines(chunked(bytes, at), max)),
    expectedLines(bytes, max),
  );
});

/** RFC 1939 section 3 as a server does it: a leading dot doubled, CRLF added if missing, then `.` CRLF. */
function dotStuff(body: Buffer): { wire: Buffer; decoded: Buffer } {
  const decoded = body.length === 0 || body.at(-1) === 0x0a ? body : Buffer.concat([body, Buffer.from('\r\n')]);
  const text = decoded.toString('latin1').replace(/(^|\n)\./g, '$1..');
  return { wire: Buffer.from(`${text}.\r\n`, 'latin1'), decoded };
}

type Decoded = { body: Buffer; end: number };

/** Decodes `chunks` as one block: the content, and the offset just past the `.` line (-1: not found). */
function decodeAll(chunks: readonly Buffer[]): Decoded {
  const decoder = new DotDecoder();
  const out: Buffer[] = [];
  let base = 0;
  for (const chunk of chunks) {
    const end = decoder.decode(chunk, 0, (part) => out.push(Buffer.from(part)));
    if (end !== -1) return { body: Buffer.concat(out), end: base + end };
    base += chunk.length;
  }
  return { body: Buffer.concat(out), end: -1 };
}

const dotRoundTrip = fc.property(inputs(MESSAGES), inputs(replies), cuts, (body, after, at) => {
  const { wire, decoded } = dotStuff(body);
  const result = timed(1000, () => decodeAll(chunked(Buffer.concat([wire, after]), at)));
  assert.equal(result.end, wire.length, 'the block ends right after its `.` line');
  assert.ok(result.body.equals(decoded), 'stuffing then decoding gives the body back');
});

const dotAnyChunking = fc.property(inputs([...MESSAGES, ...replies]), cuts, (bytes, at) => {
  const whole = decodeAll([bytes]);
  const split = timed(1000, () => decodeAll(chunked(bytes, at)));
  assert.equal(split.end, whole.end);
  assert.ok(split.body.equals(whole.body), 'the same content whatever the chunking');
});

/**
 * RFC 1939 section 3 read line by line, the slow obvious way: a line `.` (CRLF or LF) ends the
 * block, any other line starting with `.` loses it. At the end of the input, a last line `.` CR
 * is still undecided (its LF may come next), so its CR is not content yet.
 */
function referenceDecode(bytes: Buffer): Decoded {
  const out: Buffer[] = [];
  for (let start = 0; start < bytes.length; ) {
    const lf = bytes.indexOf(0x0a, start);
    const end = lf === -1 ? bytes.length : lf + 1;
    const line = bytes.subarray(start, end);
    if (line[0] === 0x2e) {
      const rest = line.subarray(1).toString('latin1');
      if (rest === '\n' || rest === '\r\n') return { body: Buffer.concat(out), end };
      if (!(lf === -1 && rest === '\r')) out.push(line.subarray(1));
    } else {
      out.push(line);
    }
    start = end;
  }
  return { body: Buffer.concat(out), end: -1 };
}

const dotModel = fc.property(inputs([...MESSAGES, ...replies]), cuts, (bytes, at) => {
  const expected = referenceDecode(bytes);
  const actual = timed(1000, () => decodeAll(chunked(bytes, at)));
  assert.equal(actual.end, expected.end);
  assert.ok(actual.body.equals(expected.body), `content ${JSON.stringify(actual.body.toString('latin1'))}, expected ${JSON.stringify(expected.body.toString('latin1'))}`);
});

const statusLine = fc.property(inputs(replies), (line) => {
  try {
    const status = parseStatusLine(line);
    assert.ok(['ok', 'err', 'continue'].includes(status.status));
  } catch (error) {
    assert.ok(error instanceof Pop3Error && error.code === 'POP3_BAD_REPLY', String(error));
  }
});

export const targets: FuzzTarget[] = [
  { name: 'line reader: lines and length bound independent of chunking', property: lineReader },
  { name: 'dot decoder: dot-stuff then decode is the identity', property: dotRoundTrip },
  { name: 'dot decoder: any chunking gives the same result', property: dotAnyChunking },
  { name: 'dot decoder: the same as a line-by-line reading of RFC 1939, on any bytes', property: dotModel },
  { name: 'status line: a reply or POP3_BAD_REPLY', property: statusLine },
];
