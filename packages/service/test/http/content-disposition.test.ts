/**
 * Content-Disposition for names a sender chose: never a header break, a quote that ends the
 * string, a path, or a character encodeURIComponent cannot take; the real name kept in
 * filename* (RFC 8187) whenever the ASCII form had to change it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentDisposition, safeContentType } from '../../src/http/content-disposition.ts';

describe('contentDisposition', () => {
  const cases: Array<[string | null, string]> = [
    ['report.pdf', 'attachment; filename="report.pdf"'],
    [null, 'attachment; filename="attachment-1"'],
    ['', 'attachment; filename="attachment-1"'],
    ['...', 'attachment; filename="attachment-1"'],
    ['a\r\nSet-Cookie: x=1', 'attachment; filename="aSet-Cookie: x=1"'],
    ['say "hi".txt', `attachment; filename="say _hi_.txt"; filename*=UTF-8''say%20%22hi%22.txt`],
    ['../../etc/passwd', 'attachment; filename="passwd"'],
    ['C:\\Users\\x\\evil.exe', 'attachment; filename="evil.exe"'],
    ['.bashrc', 'attachment; filename="bashrc"'],
    ['résumé.pdf', `attachment; filename="r_sum_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`],
    ['100%;x.txt', `attachment; filename="100__x.txt"; filename*=UTF-8''100%25%3Bx.txt`],
    ["it's (1)*.txt", `attachment; filename="it's (1)*.txt"`],
    ['\ud800broken.txt', `attachment; filename="_broken.txt"; filename*=UTF-8''%EF%BF%BDbroken.txt`],
  ];
  for (const [name, header] of cases) {
    it(`gives ${JSON.stringify(name)} as ${header}`, () => {
      assert.equal(contentDisposition(name, 'attachment-1'), header);
    });
  }

  it('never gives a value Node would refuse as a header', () => {
    for (let code = 0; code < 0x3000; code++) {
      const header = contentDisposition(`a${String.fromCharCode(code)}b`, 'x');
      assert.match(header, /^[\x20-\x7e]+$/, `U+${code.toString(16)}`);
    }
  });
});

describe('safeContentType', () => {
  it('keeps a MIME type and replaces anything else with application/octet-stream', () => {
    assert.equal(safeContentType('application/pdf'), 'application/pdf');
    assert.equal(safeContentType('image/svg+xml'), 'image/svg+xml');
    for (const bad of ['text/html\r\nX-Evil: 1', 'text/html; charset=utf-8', 'nonsense', '', 'a/b/c']) {
      assert.equal(safeContentType(bad), 'application/octet-stream', JSON.stringify(bad));
    }
  });
});
