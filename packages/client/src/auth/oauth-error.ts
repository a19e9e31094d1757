/**
 * What an OAuth mechanism's error challenge says, for the error message: RFC 7628 section 3.2.2's
 * JSON (`{"status":"invalid_token","scope":"..."}`), which Google's and Microsoft's XOAUTH2 also
 * send (Google's status is an HTTP code, "400"). The document comes from the server, so only its
 * known string fields are kept, and anything else is shown as a short printable excerpt.
 */
export function describeOAuthError(challenge: Buffer): string {
  const text = challenge.toString('utf8');
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return `server says ${printable(text)}`;
  }
  if (typeof document !== 'object' || document === null) return `server says ${printable(text)}`;
  const fields = Object.entries(document)
    .filter(([key, value]) => ['status', 'scope', 'schemes'].includes(key) && typeof value === 'string')
    .map(([key, value]) => `${key} ${printable(value as string)}`);
  return fields.length > 0 ? `server says ${fields.join(', ')}` : `server says ${printable(text)}`;
}

function printable(text: string, max = 200): string {
  const shown = text.slice(0, max).replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(text.length > max ? `${shown}...` : shown);
}
