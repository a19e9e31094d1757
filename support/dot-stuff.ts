/**
 * The sending side of RFC 1939 section 3, for tests and the benchmark's raw baseline: byte-stuff a
 * body and terminate it. A body that does not end in a line ending gets CRLF before the `.` line,
 * as a server adds it.
 */
export function dotStuff(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let from = 0;
  let atLineStart = true;
  for (let i = 0; i < body.length; i++) {
    if (atLineStart && body[i] === 0x2e) {
      out.push(body.subarray(from, i), DOT);
      from = i;
    }
    atLineStart = body[i] === 0x0a;
  }
  out.push(body.subarray(from));
  if (body.length > 0 && body[body.length - 1] !== 0x0a) out.push(CRLF);
  out.push(TERMINATOR);
  return Buffer.concat(out);
}

const DOT = Buffer.from('.');
const CRLF = Buffer.from('\r\n');
const TERMINATOR = Buffer.from('.\r\n');
