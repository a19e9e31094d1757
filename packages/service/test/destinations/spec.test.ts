/** Destination specs, as the CLI and the API give them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DestinationSpecError } from '../../src/destinations/destination.js';
import { envelopeSender, messageDate, toLf, withUidHeader } from '../../src/destinations/message.js';
import { formatDestination, parseDestination, parseMdaCommand } from '../../src/destinations/spec.js';

describe('parseDestination', () => {
  it('reads every kind, with default ports, and formats each back to a spec that parses the same', () => {
    const cases: Array<[string, unknown]> = [
      ['lmtp:127.0.0.1:2424', { kind: 'lmtp', address: { host: '127.0.0.1', port: 2424 } }],
      ['lmtp:mail.example.org', { kind: 'lmtp', address: { host: 'mail.example.org', port: 24 } }],
      ['lmtp:[::1]:24', { kind: 'lmtp', address: { host: '::1', port: 24 } }],
      ['lmtp:unix:/run/dovecot/lmtp', { kind: 'lmtp', address: { path: '/run/dovecot/lmtp' } }],
      ['smtp:localhost', { kind: 'smtp', address: { host: 'localhost', port: 25 }, implicitTls: false }],
      ['smtps:mx.example.org', { kind: 'smtp', address: { host: 'mx.example.org', port: 465 }, implicitTls: true }],
      ['imaps://me%40gmail.com@imap.gmail.com/%5BGmail%5D%2FAll', { kind: 'imap', host: 'imap.gmail.com', port: 993, implicitTls: true, user: 'me@gmail.com', folder: '[Gmail]/All' }],
      ['imap://me@127.0.0.1:1143', { kind: 'imap', host: '127.0.0.1', port: 1143, implicitTls: false, user: 'me', folder: 'INBOX' }],
      ['mda:procmail -d %T', { kind: 'mda', shell: false, argv: ['procmail', '-d', '%T'] }],
      ['mda-shell:procmail -f "$POPWIRE_SENDER" | logger', { kind: 'mda', shell: true, script: 'procmail -f "$POPWIRE_SENDER" | logger' }],
      ['maildir:/home/me/Maildir', { kind: 'maildir', dir: '/home/me/Maildir' }],
      ['mbox:/var/mail/me', { kind: 'mbox', file: '/var/mail/me' }],
    ];
    for (const [text, expected] of cases) {
      const spec = parseDestination(text);
      assert.deepEqual(spec, expected, text);
      assert.deepEqual(parseDestination(formatDestination(spec)), spec, formatDestination(spec));
    }
  });

  it('refuses bad specs with a typed error that names the problem', () => {
    const cases: Array<[string, RegExp]> = [
      ['lmtp', /KIND:VALUE/],
      ['ftp:host', /Unknown destination kind "ftp"/],
      ['lmtp:host:99999', /Not a port number/],
      ['lmtp:::1:24', /IPv6 address in brackets/],
      ['lmtp:unix:relative', /absolute path/],
      ['imaps://me:secret@imap.example.org/INBOX', /must not hold the password/],
      ['imaps://imap.example.org/INBOX', /names no user/],
      ['smtp:host\r\nRCPT TO:<x>', /CR, LF or NUL/],
      ['mda:', /missing its value/],
      ['mda:procmail -a %X', /Unknown placeholder "%X"/],
      ["mda:procmail 'unterminated", /Unterminated ' quote/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseDestination(text), (error: unknown) => error instanceof DestinationSpecError && error.code === 'DESTINATION_SPEC_INVALID' && message.test(error.message), text);
    }
  });

  it('splits an MDA command into words like a shell, without expanding anything', () => {
    assert.deepEqual(parseMdaCommand(`maildrop -d "%T" 'a b' c\\ d $(rm) ; | > %%`), ['maildrop', '-d', '%T', 'a b', 'c d', '$(rm)', ';', '|', '>', '%%']);
  });
});

describe('message header helpers', () => {
  it('takes the envelope sender from Return-Path, and the null sender when it is absent, empty or unusable', () => {
    const withPath = (value: string) => Buffer.from(`Received: x\r\nReturn-Path: ${value}\r\nSubject: s\r\n\r\nReturn-Path: <body@example.org>\r\n`);
    assert.equal(envelopeSender(withPath('<alice@example.org>')), 'alice@example.org');
    assert.equal(envelopeSender(withPath('<>')), '');
    assert.equal(envelopeSender(withPath('<a b@example.org>')), '');
    assert.equal(envelopeSender(withPath('<-oQ/tmp@example.org>')), '', 'a leading dash would read as an option');
    assert.equal(envelopeSender(Buffer.from('Subject: s\r\n\r\nReturn-Path: <body@example.org>\r\n')), '', 'only the header counts');
  });

  it('reads the Date header, and nothing from an unparseable one', () => {
    assert.equal(messageDate(Buffer.from('Date: Tue, 3 Mar 2026 10:20:30 +0100 (CET)\r\n\r\n'))?.toISOString(), '2026-03-03T09:20:30.000Z');
    assert.equal(messageDate(Buffer.from('Date: soon\r\n\r\n')), undefined);
  });

  it('prepends X-Popwire-UID with the message line ending, and not for a UID that is not a UIDL', () => {
    assert.equal(withUidHeader(Buffer.from('A: b\r\n\r\nx\r\n'), 'u1').toString(), 'X-Popwire-UID: u1\r\nA: b\r\n\r\nx\r\n');
    assert.equal(withUidHeader(Buffer.from('A: b\n\nx\n'), 'u1').toString(), 'X-Popwire-UID: u1\nA: b\n\nx\n');
    assert.equal(withUidHeader(Buffer.from('A: b\r\n'), 'a b').toString(), 'A: b\r\n');
    assert.equal(withUidHeader(Buffer.from('A: b\r\n'), undefined).toString(), 'A: b\r\n');
  });

  it('turns CRLF into LF and leaves lone CR and LF alone', () => {
    assert.equal(toLf(Buffer.from('a\r\nb\rc\nd\r\n\r\n')).toString(), 'a\nb\rc\nd\n\n');
  });
});
