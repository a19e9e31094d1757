/**
 * LIST and UIDL listings are parsed from the reply's octets (issue 13: parsing a 10,000-line UIDL
 * was the largest in-process cost of a sync with nothing new). These properties hold the byte
 * parser to the rules of the string parser it replaced, kept here as the oracle: same entries,
 * same errors (code and message), for any line and any chunking.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ListingSplitter, type ListingSink } from '../src/commands/listing.ts';
import { SizesBuilder } from '../src/commands/list.ts';
import { UidsBuilder } from '../src/commands/uidl.ts';
import { Pop3ProtocolError } from '../src/errors.ts';
import { splitAt } from '../../../support/chunks.ts';

type Outcome = { entries: [number, number | string][] } | { code: string | undefined; message: string };

function failure(error: unknown): Outcome {
  if (!(error instanceof Pop3ProtocolError)) throw error;
  return { code: error.code, message: error.message };
}

/** Feeds `reply` (a listing's body) to a builder in the chunks cut at `cuts`. */
function parse(verb: 'LIST' | 'UIDL', reply: Buffer, cuts: readonly number[], maxEntries: number): Outcome {
  const builder = verb === 'LIST' ? new SizesBuilder(maxEntries) : new UidsBuilder(maxEntries);
  const splitter = new ListingSplitter(builder as ListingSink<unknown>);
  try {
    for (const chunk of splitAt(reply, cuts)) splitter.push(chunk);
  } catch (error) {
    return failure(error);
  }
  if (builder instanceof SizesBuilder) {
    const sizes = builder.finish();
    return { entries: Array.from({ length: sizes.length }, (_, i) => [sizes.n(i), sizes.size(i)]) };
  }
  const uids = builder.finish();
  return { entries: Array.from({ length: uids.length }, (_, i) => [uids.n(i), uids.uid(i)]) };
}

// The string rules as they were before the byte parser (tokens, parseCount, the uid's pattern).

function oracleMalformed(verb: string, reason: string, line: string): Outcome {
  const shown = JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}...` : line);
  return { code: 'POP3_BAD_REPLY', message: `Malformed ${verb} reply (${reason}): ${shown}` };
}

function oracleLine(verb: 'LIST' | 'UIDL', line: string): [number, number | string] | Outcome {
  const [n, second, extra] = line.trim().split(/[ \t]+/);
  if (n === undefined || !/^\d{1,15}$/.test(n)) return oracleMalformed(verb, 'the message number is not a number', line);
  if (verb === 'LIST') {
    if (second === undefined || !/^\d{1,15}$/.test(second)) return oracleMalformed(verb, 'the size is not a number', line);
    return [Number(n), Number(second)];
  }
  if (second === undefined || extra !== undefined || !/^[\x21-\x7e]{1,512}$/.test(second)) {
    return oracleMalformed(verb, 'the unique id is missing or not printable ASCII', line);
  }
  return [Number(n), second];
}

function oracle(verb: 'LIST' | 'UIDL', reply: Buffer, maxEntries: number): Outcome {
  const entries: [number, number | string][] = [];
  const text = reply.toString('latin1');
  let from = 0;
  for (let lf = text.indexOf('\n'); lf !== -1; lf = text.indexOf('\n', from)) {
    let line = text.slice(from, lf);
    from = lf + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length > 1024) return { code: 'POP3_LINE_TOO_LONG', message: 'The server sent a line longer than 1024 octets' };
    const entry = oracleLine(verb, line);
    if (!Array.isArray(entry)) return entry;
    if (entries.length >= maxEntries) {
      return {
        code: 'POP3_REPLY_TOO_LARGE',
        message: `The reply to ${verb} lists more than ${maxEntries} messages (maxListingEntries); it was refused to bound memory`,
      };
    }
    entries.push(entry);
  }
  if (text.length - from > 1024) return { code: 'POP3_LINE_TOO_LONG', message: 'The server sent a line longer than 1024 octets' };
  return { entries };
}

const blanks = fc.stringMatching(/^[ \t]{0,3}$/);
const separator = fc.stringMatching(/^[ \t]{1,3}$/);
const number = fc.stringMatching(/^\d{1,15}$/);
const uid = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 512 });
const eol = fc.constantFrom('\r\n', '\n');
const cuts = fc.array(fc.nat(), { maxLength: 12 });

const validUidLine = fc
  .tuple(blanks, number, separator, uid, blanks, eol)
  .map(([lead, n, sep, id, trail, end]) => ({ line: `${lead}${n}${sep}${id}${trail}${end}`, entry: [Number(n), id] as [number, string] }));

/** One line that breaks one UIDL rule, each kind named so a failure says which. */
const badUidLine = fc.oneof(
  fc.tuple(fc.constantFrom('', 'x', '-1', '1.5', '0x1', '1234567890123456'), uid).map(([n, id]) => `${n} ${id}`),
  fc.nat().map((n) => `${n + 1} ${'u'.repeat(513)}`),
  fc.tuple(fc.nat(), uid, fc.integer({ min: 0, max: 0x1f }).filter((c) => c !== 0x0a)).map(([n, id, c]) => `${n + 1} ${id}${String.fromCharCode(c)}x`),
  fc.tuple(fc.nat(), uid, fc.integer({ min: 0x7f, max: 0xff })).map(([n, id, c]) => `${n + 1} ${id.slice(0, 1)}${String.fromCharCode(c)}${id.slice(1)}`),
  fc.tuple(fc.nat(), uid, uid).map(([n, a, b]) => `${n + 1} ${a} ${b}`),
  fc.nat().map((n) => `${n + 1}`),
  fc.nat().map((n) => `${n + 1} `),
);

/** Lines drawn from the octets the rules turn on: digits, blanks, other whitespace, the edges of the uid range, 8-bit. */
const anyLine = fc
  .array(fc.constantFrom('1', '0', '9', ' ', '\t', '\r', '\x0b', '\x0c', '\xa0', '\x85', '\x00', '\x1f', '\x20', '\x21', '\x7e', '\x7f', '\x80', '\xff', 'a', '.'), { maxLength: 24 })
  .map((chars) => chars.join(''));

describe('listings parsed from the octets', () => {
  it('a UIDL reply of valid entries, split at any offsets, gives exactly those entries', () => {
    fc.assert(
      fc.property(fc.array(validUidLine, { maxLength: 40 }), cuts, (lines, at) => {
        const reply = Buffer.from(lines.map((l) => l.line).join(''), 'latin1');
        assert.deepEqual(parse('UIDL', reply, at, 4_000_000), { entries: lines.map((l) => l.entry) });
      }),
      { numRuns: 300 },
    );
  });

  it('a UIDL line breaking a rule (number, 513-octet uid, control or 8-bit octet, third token, no uid) is a POP3_BAD_REPLY quoting it, however the reply is split', () => {
    fc.assert(
      fc.property(fc.array(validUidLine, { maxLength: 5 }), badUidLine, eol, cuts, (before, bad, end, at) => {
        const reply = Buffer.from(`${before.map((l) => l.line).join('')}${bad}${end}1 after\r\n`, 'latin1');
        const got = parse('UIDL', reply, at, 4_000_000);
        assert.ok('code' in got && got.code === 'POP3_BAD_REPLY', `accepted ${JSON.stringify(bad)}`);
        assert.deepEqual(got, oracle('UIDL', reply, 4_000_000));
      }),
      { numRuns: 500 },
    );
  });

  for (const verb of ['UIDL', 'LIST'] as const) {
    it(`a ${verb} reply of any lines gives the same entries or the same error as the string rules`, () => {
      const line = fc.oneof(anyLine, verb === 'UIDL' ? validUidLine.map((l) => l.line.replace(/\r?\n$/, '')) : fc.constantFrom('1 100', ' 2\t300 x', '3 4\x0b'));
      fc.assert(
        fc.property(fc.array(fc.tuple(line, eol), { maxLength: 8 }), fc.integer({ min: 0, max: 8 }), cuts, (lines, max, at) => {
          const reply = Buffer.from(lines.map(([l, end]) => `${l}${end}`).join(''), 'latin1');
          assert.deepEqual(parse(verb, reply, at, max), oracle(verb, reply, max));
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('a line of more than 1024 octets is refused with POP3_LINE_TOO_LONG whether whole in a chunk or split, and one of 1024 is read', () => {
    const exact = `1 100 ${'x'.repeat(1018)}\r\n`;
    const long = `2 100 ${'x'.repeat(1019)}\r\n`;
    for (const at of [[], [3], [exact.length + 500], [exact.length - 1]]) {
      const reply = Buffer.from(exact + long);
      assert.deepEqual(parse('LIST', reply, at, 10), { code: 'POP3_LINE_TOO_LONG', message: 'The server sent a line longer than 1024 octets' });
      assert.deepEqual(parse('LIST', Buffer.from(exact), at, 10), { entries: [[1, 100]] });
    }
  });

  it('a message number or size of 15 digits is read exactly, with leading zeros', () => {
    const reply = Buffer.from('999999999999999 000000000000042\r\n000000000000007 u\r\n');
    assert.deepEqual(parse('LIST', reply.subarray(0, 33), [], 10), { entries: [[999999999999999, 42]] });
    assert.deepEqual(parse('UIDL', reply.subarray(33), [], 10), { entries: [[7, 'u']] });
  });
});
