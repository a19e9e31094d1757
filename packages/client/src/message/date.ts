/**
 * RFC 5322 section 3.3 dates, with the obsolete forms of section 4.3 that old mailers still
 * send, read strictly enough that a date we cannot place in time is null, not a guess.
 *
 * Accepted: an optional day name (its comma optional too: "Tue 5 Nov"), day, month name in full
 * or abbreviated, a 2-, 3- or 4-digit year, hh:mm with optional seconds, and a zone: +hhmm (also
 * +hh:mm and GMT+hhmm, seen from webmail scripts), UT, GMT, UTC, Z, the US zones of RFC 822, a
 * few unambiguous regional names, and military letters, which RFC 5322 says to read as -0000
 * because RFC 822 defined their signs backwards. Comments ("(CET)") are ignored. ISO 8601 with
 * a zone is accepted too (some bulk mailers send it).
 *
 * Refused (null): no zone (the time could be off by a day), ambiguous zone names (IST, BST),
 * out-of-range fields (31 Feb, 25:00), years before 1900.
 */

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const FULL_MONTHS: ReadonlySet<string> = new Set([
  'JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'JUNE', 'JULY', 'AUGUST', 'SEPT', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER',
]);

/** Offsets in minutes. RFC 822's names, and regional ones that mean one thing only. */
const ZONES: Readonly<Record<string, number>> = {
  UT: 0, UTC: 0, GMT: 0, Z: 0,
  EDT: -240, EST: -300, CDT: -300, CST: -360, MDT: -360, MST: -420, PDT: -420, PST: -480,
  WET: 0, WEST: 60, CET: 60, CEST: 120, MET: 60, MEST: 120, EET: 120, EEST: 180, MSK: 180,
  JST: 540, KST: 540, HKT: 480, AEST: 600, AEDT: 660, NZST: 720, NZDT: 780, HST: -600, AKST: -540, AKDT: -480,
};

const RFC5322 =
  /^(?:[A-Z]+\s*,?\s*)?(\d{1,2})\s*[-\s]\s*([A-Z]{3,9})\.?\s*[-\s]\s*(\d{2,4})\s+(\d{1,2})\s*:\s*(\d{1,2})(?:\s*:\s*(\d{1,2}))?\s*(.*)$/;
const ISO8601 = /^(\d{4})-(\d{2})-(\d{2})[T\s](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})$/;

/**
 * The form nearly every mailer writes (`Tue, 25 Nov 2025 10:00:00 +0000`), read by one regular
 * expression without the cleaning, upper-casing and zone lookup the general reader does: the sync
 * reads a date per message, and the general reader took about 2 us of it. Anything else, and
 * any other spelling of this (case, spacing, comments, zone names), goes to readDate; a property
 * test holds the two to the same answers.
 */
const CANONICAL = /^(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;
const CANONICAL_MONTHS: Readonly<Record<string, number>> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};

export function parseDate(text: string): Date | null {
  const m = CANONICAL.exec(text);
  if (m === null) return readDate(text);
  const month = CANONICAL_MONTHS[m[2]!];
  if (month === undefined) return readDate(text);
  const minutes = +m[9]!;
  const offset = minutes > 59 ? undefined : (m[7] === '-' ? -1 : 1) * (+m[8]! * 60 + minutes);
  return build(+m[3]!, month, +m[1]!, +m[4]!, +m[5]!, +m[6]!, offset);
}

/** Every accepted form (see above); what parseDate falls back to. */
export function readDate(text: string): Date | null {
  const clean = stripComments(text).replace(/\s+/g, ' ').trim().toUpperCase();
  const iso = ISO8601.exec(clean);
  if (iso !== null) {
    const [, year = '', month = '', day = '', hour = '', minute = '', second = '0', zone = ''] = iso;
    return build(+year, +month - 1, +day, +hour, +minute, +second, zoneOffset(zone));
  }
  const match = RFC5322.exec(clean);
  if (match === null) return null;
  const [, day = '', monthName = '', year = '', hour = '', minute = '', second = '0', zone = ''] = match;
  const month = MONTHS.indexOf(monthName.slice(0, 3));
  if (month === -1 || (monthName.length > 3 && !FULL_MONTHS.has(monthName))) return null;
  return build(fullYear(year), month, +day, +hour, +minute, +second, zoneOffset(zone));
}

/**
 * The date a Received field was stamped with: what follows its last ";" (RFC 5321 section
 * 4.4). The first Received field in a message is the newest: each hop adds its own on top.
 */
export function receivedDate(value: string): Date | null {
  const semicolon = value.lastIndexOf(';');
  return semicolon === -1 ? null : parseDate(value.slice(semicolon + 1));
}

function build(year: number, month: number, day: number, hour: number, minute: number, second: number, offset: number | undefined): Date | null {
  if (offset === undefined || year < 1900 || year > 9999) return null;
  if (day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 60) return null;
  // A leap second (23:59:60) is real; a Date cannot hold it, so it becomes :59.
  const ms = Date.UTC(year, month, day, hour, minute, Math.min(second, 59)) - offset * 60_000;
  return new Date(ms);
}

/** RFC 5322 section 4.3: 00-49 are 2000-2049, 50-99 and three digits are counted from 1900. */
function fullYear(text: string): number {
  const year = Number(text);
  if (text.length === 2) return year < 50 ? 2000 + year : 1900 + year;
  if (text.length === 3) return 1900 + year;
  return year;
}

function zoneOffset(text: string): number | undefined {
  const zone = text.trim().split(' ')[0] ?? '';
  const numeric = /^(?:GMT|UTC|UT)?([+-])(\d{2}):?(\d{2})$/.exec(zone);
  if (numeric !== null) {
    const [, sign, hours, minutes] = numeric as unknown as [string, string, string, string];
    if (+minutes > 59) return undefined;
    return (sign === '-' ? -1 : 1) * (+hours * 60 + +minutes);
  }
  if (/^[A-IK-Z]$/.test(zone)) return 0; // military: -0000, see above
  return ZONES[zone];
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Gregorian, as Date counts: a Date per parse only to ask this showed in the sync's profile. */
export function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 1 && leap ? 29 : DAYS_IN_MONTH[month]!;
}

/** RFC 5322 comments nest ("(a (b) c)") and may hold quoted pairs; an unclosed one runs to the end. */
function stripComments(text: string): string {
  if (!text.includes('(')) return text;
  let depth = 0;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (depth === 0) {
      if (c === '(') depth = 1;
      else out += c;
    } else if (c === '\\') {
      i += 1;
    } else if (c === '(' || c === ')') {
      depth += c === '(' ? 1 : -1;
      if (depth === 0) out += ' ';
    }
  }
  return out;
}
