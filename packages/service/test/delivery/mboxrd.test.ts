/**
 * The mboxrd encoder: quoting of /^>*From / lines and CRLF -> LF, at every chunk boundary, and
 * reversible: reading the mbox back gives the message with LF line endings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromLine, MboxrdEncoder, MboxrdQuoter, roomFor } from '../../src/delivery/mboxrd.ts';
import { lfNormalized, readMboxrd } from './mboxrd-reader.ts';

/** Runs the encoder over `chunks` (it is synchronous: every push happens during write/end). */
function encode(chunks: readonly Buffer[]): Buffer {
  const encoder = new MboxrdEncoder();
  const out: Buffer[] = [];
  encoder.on('data', (chunk: Buffer) => out.push(chunk));
  for (const chunk of chunks) encoder.write(chunk);
  encoder.end();
  return Buffer.concat(out);
}

/** The same transformation done the obvious way, on the whole message at once. */
function reference(message: Buffer): Buffer {
  const lines = lfNormalized(message).toString('latin1').split('\n');
  const quoted = lines.map((line) => (/^>*From /.test(line) ? `>${line}` : line)).join('\n');
  return Buffer.from(`${quoted}\n`, 'latin1');
}

const bytes = (text: string) => Buffer.from(text, 'latin1');

/** `message` cut at the given offsets. */
/**
 * The chunks through one quoter's updateTo, each into its own buffer at `offset`, then finalize.
 * Each buffer is filled with a marker first, so an octet written before `offset` or past roomFor shows.
 */
function quotedThroughUpdateTo(chunks: readonly Buffer[], offset: number): Buffer {
  const quoter = new MboxrdQuoter();
  const parts: Buffer[] = [];
  for (const chunk of chunks) {
    const out = Buffer.alloc(offset + roomFor(chunk.length) + 8, 0xee);
    const end = quoter.updateTo(chunk, out, offset);
    assert.ok(end - offset <= roomFor(chunk.length), 'within roomFor');
    assert.ok(out.subarray(0, offset).every((octet) => octet === 0xee), 'nothing before the offset');
    assert.ok(out.subarray(end).every((octet) => octet === 0xee), 'nothing after the end');
    parts.push(out.subarray(offset, end));
  }
  return Buffer.concat([...parts, quoter.finalize()]);
}

function split(message: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [0, ...[...cuts].sort((a, b) => a - b), message.length];
  return points.slice(1).map((end, index) => message.subarray(points[index] as number, end));
}

const TRICKY: ReadonlyArray<readonly [string, string, string]> = [
  ['From at the start', 'From alice\r\nbody\r\n', '>From alice\nbody\n\n'],
  ['From after a line', 'a\r\nFrom b\r\n', 'a\n>From b\n\n'],
  ['>From', 'a\r\n>From b\r\n', 'a\n>>From b\n\n'],
  ['>>From', '>>From b\r\n', '>>>From b\n\n'],
  ['From in the middle of a line', 'x From y\r\nxFrom z\r\n', 'x From y\nxFrom z\n\n'],
  ['From without its space', 'From\r\nFromage\r\n>From\r\n', 'From\nFromage\n>From\n\n'],
  ['> lines that are not From', '>\r\n>> x\r\n>Fro\r\n', '>\n>> x\n>Fro\n\n'],
  ['From as the whole last line, no newline', 'a\r\nFrom ', 'a\n>From \n\n'],
  ['a partial From at the very end', 'a\r\nFro', 'a\nFro\n\n'],
  ['no final newline', 'Subject: x\r\n\r\nlast line', 'Subject: x\n\nlast line\n\n'],
  ['CRLF only', '\r\n', '\n\n'],
  ['a bare CR is kept', 'a\rb\r\nc\r', 'a\rb\nc\r\n\n'],
  ['CR CR LF', 'a\r\r\n', 'a\r\n\n'],
  ['bare LF endings', 'a\nFrom b\n', 'a\n>From b\n\n'],
  ['an empty message', '', '\n'],
  ['8-bit octets stay octets', 'caf\xe9\r\n\xff\x80From \r\n', 'caf\xe9\n\xff\x80From \n\n'],
];

describe('MboxrdEncoder', () => {
  for (const [name, input, expected] of TRICKY) {
    it(`${name}: the same output at every split point, and byte by byte`, () => {
      const message = bytes(input);
      assert.equal(encode([message]).toString('latin1'), expected);
      assert.equal(reference(message).toString('latin1'), expected, 'the reference agrees');
      for (let cut = 0; cut <= message.length; cut++) {
        assert.equal(encode(split(message, [cut])).toString('latin1'), expected, `split at ${cut}`);
      }
      for (let a = 0; a <= message.length; a++) {
        for (let b = a; b <= message.length; b++) {
          assert.equal(encode(split(message, [a, b])).toString('latin1'), expected, `split at ${a} and ${b}`);
        }
      }
      const oneByOne = [...message].map((octet) => Buffer.from([octet]));
      assert.equal(encode(oneByOne).toString('latin1'), expected, 'byte by byte');
    });
  }

  it('holds back at most four octets, however long the line: memory does not grow with the message', () => {
    for (const pattern of ['>', 'x', 'From', '\r']) {
      const encoder = new MboxrdEncoder();
      let written = 0;
      let emitted = 0;
      encoder.on('data', (chunk: Buffer) => (emitted += chunk.length));
      const chunk = Buffer.alloc(64 * 1024, pattern);
      for (let i = 0; i < 64; i++) {
        encoder.write(chunk);
        written += chunk.length;
        // A line of CRs: each may be the start of a CRLF, but only the last one can still be.
        assert.ok(written - emitted <= 4, `${JSON.stringify(pattern)}: ${written - emitted} octets held back`);
      }
      encoder.end();
    }
  });

  const tokens = fc.oneof(
    fc.constantFrom('From ', 'From', '>', '>>', 'F', 'rom ', ' ', '\r\n', '\n', '\r', 'x', '.', '\x00', '\xff'),
    fc.uint8Array({ maxLength: 8 }).map((octets) => Buffer.from(octets).toString('latin1')),
  );
  const messages = fc.array(tokens, { maxLength: 60 }).map((parts) => bytes(parts.join('')));
  const chunked = messages.chain((message) =>
    fc.tuple(fc.constant(message), fc.uniqueArray(fc.integer({ min: 0, max: message.length }), { maxLength: 12 })),
  );

  it('property: any chunking gives the output of the whole-message reference', () => {
    fc.assert(
      fc.property(chunked, ([message, cuts]) => {
        assert.deepEqual(encode(split(message, cuts)), reference(message));
      }),
      { numRuns: 2000 },
    );
  });

  it('property: MboxrdQuoter (update per chunk, then finalize) gives the same octets as the stream', () => {
    fc.assert(
      fc.property(chunked, ([message, cuts]) => {
        const quoter = new MboxrdQuoter();
        const out = Buffer.concat([...split(message, cuts).map((chunk) => quoter.update(chunk)), quoter.finalize()]);
        assert.deepEqual(out, reference(message));
      }),
      { numRuns: 1000 },
    );
  });

  it('property: MboxrdQuoter.updateTo (written into a buffer per chunk, then finalize) gives the same octets, within roomFor', () => {
    fc.assert(
      fc.property(chunked, fc.nat(16), ([message, cuts], offset) => {
        assert.deepEqual(quotedThroughUpdateTo(split(message, cuts), offset), reference(message));
      }),
      { numRuns: 2000 },
    );
  });

  // Chunks of 256 octets and more have their whole lines converted at once (bulkLines): these
  // messages are long enough, and cut rarely enough, to go that way, their lines beginning
  // anywhere in a chunk, and a chunk beginning or ending anywhere in a line.
  const longChunked = fc.array(tokens, { minLength: 200, maxLength: 900 }).map((parts) => bytes(parts.join(''))).chain((message) =>
    fc.tuple(fc.constant(message), fc.uniqueArray(fc.integer({ min: 0, max: message.length }), { maxLength: 3 })),
  );

  it('property: updateTo on long chunks (their whole lines converted at once) gives the same octets, within roomFor', () => {
    fc.assert(
      fc.property(longChunked, fc.nat(16), ([message, cuts], offset) => {
        assert.deepEqual(quotedThroughUpdateTo(split(message, cuts), offset), reference(message));
      }),
      { numRuns: 1000 },
    );
  });

  it('updateTo on a long chunk: CRLF made LF, every /^>*From / line quoted, bare CRs and 8-bit octets kept', () => {
    const line = 'x From y\r\nFrom a\r\n>From b\r\nFromage\r\n>>From c\nc\rd\r\n\xe9\xff\r\n';
    const message = bytes(`start ${line.repeat(20)}From end`);
    const quoter = new MboxrdQuoter();
    const out = Buffer.alloc(roomFor(message.length));
    const end = quoter.updateTo(message, out, 0);
    const expected = `start ${'x From y\n>From a\n>>From b\nFromage\n>>>From c\nc\rd\n\xe9\xff\n'.repeat(20)}>From end\n\n`;
    assert.equal(Buffer.concat([out.subarray(0, end), quoter.finalize()]).toString('latin1'), expected);
  });

  it('updateTo quotes a "From " line in every chunk of a message made of them, within roomFor', () => {
    const message = bytes('From \nFrom \r\nFrom \n>From \n'.repeat(50));
    for (const size of [1, 2, 5, 6, 7, 64]) {
      const quoter = new MboxrdQuoter();
      const parts: Buffer[] = [];
      for (let at = 0; at < message.length; at += size) {
        const chunk = message.subarray(at, at + size);
        const out = Buffer.alloc(roomFor(chunk.length));
        parts.push(out.subarray(0, quoter.updateTo(chunk, out, 0)));
      }
      assert.deepEqual(Buffer.concat([...parts, quoter.finalize()]), reference(message), `chunks of ${size}`);
    }
  });

  it('property: reading the mbox back gives the message with LF line endings', () => {
    fc.assert(
      fc.property(fc.array(chunked, { minLength: 1, maxLength: 4 }), (entries) => {
        const mbox = Buffer.concat(
          entries.flatMap(([message, cuts]) => [bytes(fromLine(new Date(0))), encode(split(message, cuts))]),
        );
        const read = readMboxrd(mbox);
        assert.deepEqual(
          read.map((entry) => entry.message),
          entries.map(([message]) => lfNormalized(message)),
        );
      }),
      { numRuns: 1000 },
    );
  });
});

describe('fromLine', () => {
  it('is "From MAILER-DAEMON" and the date in asctime() form, UTC, the day padded with a space', () => {
    assert.equal(fromLine(new Date(Date.UTC(1986, 10, 4, 8, 2, 9))), 'From MAILER-DAEMON Tue Nov  4 08:02:09 1986\n');
    assert.equal(fromLine(new Date(Date.UTC(2025, 0, 31, 23, 59, 59))), 'From MAILER-DAEMON Fri Jan 31 23:59:59 2025\n');
  });
});
