/**
 * The APOP timestamp parser. Regression header: Python's poplib found the timestamp with a
 * backtracking regex, and a greeting of many '<' made it run for hours (CVE-2018-1060). Ours is
 * one indexOf pass; the flood tests below would not finish if it were quadratic.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { apopTimestamp, MAX_APOP_TIMESTAMP } from '../../src/auth/apop.ts';

describe('the APOP timestamp in a greeting (RFC 1939 section 7)', () => {
  it('finds the timestamp of RFC 1939, and the digest of its example is what we would send', () => {
    const timestamp = apopTimestamp('POP3 server ready <1896.697170952@dbc.mtview.ca.us>');
    assert.equal(timestamp, '<1896.697170952@dbc.mtview.ca.us>');
    // The same computation as auth/apop.ts, on RFC 1939's example.
    const digest = createHash('md5').update(`${timestamp}tanstaaf`).digest('hex');
    assert.equal(digest, 'c4c9334bac560ecc979e58001b3e22fb');
  });

  it('finds Dovecot\'s, after other text', () => {
    assert.equal(apopTimestamp('Dovecot ready. <1234.1.5f3a.abcdef@mail.example.org>'), '<1234.1.5f3a.abcdef@mail.example.org>');
  });

  it('has none in a greeting without one, or with angle brackets around something else', () => {
    assert.equal(apopTimestamp('POP3 ready'), undefined);
    assert.equal(apopTimestamp('POP3 <ready> for you'), undefined);
    assert.equal(apopTimestamp('POP3 <a b@c> spaces'), undefined);
    assert.equal(apopTimestamp('<@> <x@> <@y>'), undefined);
    assert.equal(apopTimestamp('never closed <1.2@host'), undefined);
  });

  it('takes the innermost candidate when brackets nest or repeat', () => {
    assert.equal(apopTimestamp('<<<< <1.2@host> >>>>'), '<1.2@host>');
    assert.equal(apopTimestamp('<a <b@c>'), '<b@c>');
    assert.equal(apopTimestamp('<no> then <1@h>'), '<1@h>');
  });

  it('refuses a timestamp longer than a msg-id can be', () => {
    const long = `<${'1'.repeat(MAX_APOP_TIMESTAMP)}@host>`;
    assert.equal(apopTimestamp(`ready ${long}`), undefined);
    const longest = `<${'1'.repeat(MAX_APOP_TIMESTAMP - 7)}@host>`;
    assert.equal(apopTimestamp(`ready ${longest}`), longest);
  });

  it('parses a megabyte of "<" (and of "<@", and of "<a@b" never closed) in linear time', () => {
    const floods = ['<'.repeat(1 << 20), '<@'.repeat(1 << 19), `${'<a@b'.repeat(1 << 18)}`, `${'<'.repeat(1 << 20)}>`];
    for (const flood of floods) assert.equal(apopTimestamp(flood), undefined);
    assert.equal(apopTimestamp(`${'<'.repeat(1 << 20)}1@h>`), '<1@h>');
  });
});
