import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCommand, encodeSaslResponse, Sensitive } from '../../src/protocol/command.ts';
import { parseStatusLine } from '../../src/protocol/status.ts';
import { Pop3ProtocolError, Pop3UsageError } from '../../src/errors.ts';

const refused = (code: string) => (error: unknown) => error instanceof Pop3UsageError && error.code === code;

describe('encodeCommand', () => {
  it('writes the verb and arguments separated by single spaces, ending in CRLF', () => {
    assert.equal(encodeCommand('TOP', 3, 10).bytes.toString(), 'TOP 3 10\r\n');
    assert.equal(encodeCommand('STAT').bytes.toString(), 'STAT\r\n');
  });

  it('refuses CR, LF and NUL in an argument: no command injection through a user name', () => {
    assert.throws(() => encodeCommand('USER', 'alice\r\nDELE 1'), refused('POP3_INVALID_ARGUMENT'));
    assert.throws(() => encodeCommand('USER', 'alice\nDELE 1'), refused('POP3_INVALID_ARGUMENT'));
    assert.throws(() => encodeCommand('USER', 'alice\rx'), refused('POP3_INVALID_ARGUMENT'));
    assert.throws(() => encodeCommand('PASS', new Sensitive('pw\0x')), refused('POP3_INVALID_ARGUMENT'));
  });

  it('refuses an empty argument', () => {
    assert.throws(() => encodeCommand('USER', ''), refused('POP3_INVALID_ARGUMENT'));
  });

  it('refuses a command line over the RFC 2449 limit of 255 octets', () => {
    assert.equal(encodeCommand('USER', 'a'.repeat(248)).bytes.length, 255);
    assert.throws(() => encodeCommand('USER', 'a'.repeat(249)), refused('POP3_INVALID_ARGUMENT'));
  });

  it('counts octets, not characters, against the limit', () => {
    assert.throws(() => encodeCommand('USER', '\u00e9'.repeat(125)), refused('POP3_INVALID_ARGUMENT'));
  });

  it('keeps a space inside the PASS argument (RFC 1939 lets a password hold spaces)', () => {
    assert.equal(encodeCommand('PASS', new Sensitive('two words')).bytes.toString(), 'PASS two words\r\n');
  });

  it('shows secrets as *** in the display line, in errors and in inspect()', () => {
    const secret = new Sensitive('hunter2');
    const command = encodeCommand('PASS', secret);
    assert.equal(command.display, 'PASS ***');
    assert.equal(String(secret), '***');
    assert.equal(JSON.stringify({ secret }), '{"secret":"***"}');
    assert.doesNotMatch(inspect(secret), /hunter2/);
    try {
      encodeCommand('PASS', new Sensitive('x'.repeat(300)));
      assert.fail('expected a refusal');
    } catch (error) {
      assert.ok(error instanceof Pop3UsageError);
      assert.doesNotMatch(error.message + String(error.command), /xxxx/);
    }
  });

  it('allows SASL responses longer than 255 octets (RFC 5034 section 4)', () => {
    const response = encodeSaslResponse(new Sensitive('A'.repeat(5000)));
    assert.equal(response.bytes.length, 5002);
    assert.equal(response.display, '***');
  });
});

describe('parseStatusLine', () => {
  const parse = (s: string) => parseStatusLine(Buffer.from(s, 'latin1'));

  it('reads +OK and -ERR with their text', () => {
    assert.deepEqual(parse('+OK 2 320'), { status: 'ok', text: '2 320', code: undefined });
    assert.deepEqual(parse('-ERR no such message'), { status: 'err', text: 'no such message', code: undefined });
    assert.deepEqual(parse('+OK'), { status: 'ok', text: '', code: undefined });
  });

  it('extracts RFC 2449 / RFC 3206 response codes', () => {
    assert.deepEqual(parse('-ERR [IN-USE] Mailbox locked'), { status: 'err', text: 'Mailbox locked', code: 'IN-USE' });
    assert.deepEqual(parse('-ERR [SYS/TEMP] try later'), { status: 'err', text: 'try later', code: 'SYS/TEMP' });
    assert.deepEqual(parse('-ERR [auth] bad'), { status: 'err', text: 'bad', code: 'AUTH' });
  });

  it('accepts lower-case indicators from sloppy servers', () => {
    assert.equal(parse('+ok fine').status, 'ok');
    assert.equal(parse('-err no').status, 'err');
  });

  it('reads SASL continuations', () => {
    assert.deepEqual(parse('+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+'), {
      status: 'continue',
      text: 'PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+',
      code: undefined,
    });
    assert.equal(parse('+').status, 'continue');
  });

  it('reads the text of any +OK or -ERR line exactly as the full rules do (UTF-8 decoded, trimmed, [CODE] taken out)', () => {
    // The full rules, as they were before printable ASCII got its own path: the oracle.
    const oracle = (rest: Buffer) => {
      const raw = rest.toString('utf8').trim();
      const match = /^\[([^\]\s]+)\]\s*/.exec(raw);
      if (match === null) return { text: raw, code: undefined };
      return { text: raw.slice(match[0].length), code: (match[1] as string).toUpperCase() };
    };
    const octet = fc.oneof(
      fc.constantFrom(0x20, 0x20, 0x5b, 0x5d, 0x09, 0x0b, 0x0c, 0x2f, 0x41, 0x61, 0x30, 0x7e, 0x7f, 0xa0, 0xc3, 0xa9, 0xe2, 0x80, 0xa8),
      fc.integer({ min: 0, max: 255 }),
    );
    fc.assert(
      fc.property(fc.constantFrom('+OK', '-ERR'), fc.array(octet, { maxLength: 24 }), (head, octets) => {
        const rest = Buffer.from(octets);
        const line = Buffer.concat([Buffer.from(octets.length > 0 ? `${head} ` : head, 'latin1'), rest]);
        const { text, code } = parseStatusLine(line);
        assert.deepEqual({ text, code }, oracle(rest));
      }),
      { numRuns: 5000 },
    );
    assert.deepEqual(parse('+OK  4123 octets  '), { status: 'ok', text: '4123 octets', code: undefined });
    assert.deepEqual(parse('-ERR  [IN-USE]  locked '), { status: 'err', text: 'locked', code: 'IN-USE' });
  });

  it('rejects anything else as a protocol error', () => {
    for (const line of ['', 'OK', '+OKAY', '-ERROR', 'HTTP/1.1 200 OK', '* OK IMAP4rev1', '\u0000+OK']) {
      assert.throws(() => parse(line), (e: unknown) => e instanceof Pop3ProtocolError && e.code === 'POP3_BAD_REPLY', line);
    }
  });
});
