/**
 * A Content-Disposition header for a file whose name came from a message: RFC 6266 with an
 * ASCII `filename` for old clients and `filename*` (RFC 8187, UTF-8) for the real name.
 *
 * The name is the sender's: `report.pdf"\r\nSet-Cookie: x=1` decodes from RFC 2231 parameters
 * just as easily as `report.pdf`. CR and LF would end the header early (Node refuses them and
 * the request would fail), a quote or backslash would end the quoted string, and a path
 * separator would let a careless client write outside its download folder: every control
 * character, quote, backslash, slash and non-ASCII character is replaced in the ASCII form, and
 * `filename*` percent-encodes everything outside RFC 8187's attr-char set.
 */
export function contentDisposition(filename: string | null, fallback: string): string {
  const name = cleanName(filename) ?? fallback;
  const ascii = name.replace(/[^\x20-\x7e]|["\\/%;]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*!]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return ascii === name ? `attachment; filename="${ascii}"` : `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** Without control characters, path separators and leading dots; null when nothing usable is left. */
function cleanName(filename: string | null): string | null {
  if (filename === null) return null;
  const base = filename
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '')
    // A lone surrogate (a name decoded from broken bytes) would make encodeURIComponent throw.
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .split(/[/\\]/)
    .pop()!
    .replace(/^[.\s]+/, '')
    .trim()
    .slice(0, 200);
  return base === '' ? null : base;
}

/** A MIME type as the parser gave it, if it is one (`type/subtype`, token characters); else octet-stream. */
export function safeContentType(contentType: string): string {
  return /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/.test(contentType) ? contentType : 'application/octet-stream';
}
