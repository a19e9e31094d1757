import { Pop3UsageError } from '../errors.js';

/** RFC 3454 table B.1, "commonly mapped to nothing" (soft hyphen, zero-width joiners, variation selectors). */
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/gu;
/** RFC 3454 table C.1.2, non-ASCII spaces: RFC 4013 section 2.1 maps them to SPACE. */
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/gu;
/**
 * RFC 4013 section 2.3, prohibited output: controls (C.2.1, C.2.2), private use (C.3),
 * non-characters (C.4), surrogates (C.5), characters unfit for plain text (C.6) or canonical
 * representation (C.7), that change display or are deprecated (C.8), tagging characters (C.9).
 */
const PROHIBITED =
  /[\u0000-\u001f\u007f-\u009f\u0340\u0341\u06dd\u070f\u180e\u200c-\u200f\u2028-\u202e\u2060-\u2063\u206a-\u206f\u2ff0-\u2ffb\ufeff\ufff9-\ufffd\u{1d173}-\u{1d17a}\u{e0001}\u{e0020}-\u{e007f}\p{Co}\p{Cs}\p{Noncharacter_Code_Point}]/u;

/**
 * RFC 4013 SASLprep of a query string (unassigned code points allowed), as SCRAM asks of user names
 * and passwords (RFC 5802 section 2.2). Printable ASCII is its own SASLprep and is returned as is.
 *
 * Left out: the bidirectional rule (RFC 3454 section 6), because JavaScript exposes no Bidi_Class,
 * so a string mixing right-to-left and left-to-right letters is sent unchecked and the server
 * decides; and Unicode 3.2 as the fixed version: NFKC here is the runtime's, which differs only for
 * characters assigned after 3.2.
 */
export function saslPrep(text: string, what: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const prepared = text.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
  if (PROHIBITED.test(prepared)) {
    throw new Pop3UsageError(`The ${what} contains a character SASLprep prohibits (RFC 4013 section 2.3)`, {
      code: 'POP3_INVALID_ARGUMENT',
    });
  }
  return prepared;
}
