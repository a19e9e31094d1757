import { addressParser } from 'postal-mime';
import { parseDate, receivedDate } from './date.js';
import type { ReadField } from './headers.js';

/** A person: display name (decoded; empty when none) and address. */
export interface Mailbox {
  readonly name: string;
  readonly address: string;
}

/** An RFC 5322 group: `Team: a@example.com, b@example.com;` (or an empty one: `undisclosed-recipients:;`). */
export interface AddressGroup {
  readonly name: string;
  readonly group: readonly Mailbox[];
}

export type Address = Mailbox | AddressGroup;

/** Where `date` came from: the Date field, or (without a usable one) the newest Received field. */
export interface DateSource {
  readonly header: 'date' | 'received';
  /** The text the date was read from. */
  readonly raw: string;
}

/** The fields read from the header block, the same whichever way the body is parsed. */
export interface Envelope {
  /** The first author; RFC 5322 allows several, which hardly ever happens (see `headers`). */
  readonly from: Mailbox | null;
  readonly sender: Mailbox | null;
  readonly replyTo: readonly Address[];
  readonly to: readonly Address[];
  readonly cc: readonly Address[];
  readonly bcc: readonly Address[];
  readonly subject: string | null;
  /** With its angle brackets, as References and In-Reply-To cite it. */
  readonly messageId: string | null;
  readonly inReplyTo: string | null;
  /** Oldest first, as in the field. */
  readonly references: readonly string[];
  /** When the message was written; null when no date can be read without guessing. */
  readonly date: Date | null;
  readonly dateSource: DateSource | null;
}

export function readEnvelope(fields: readonly ReadField[]): Envelope {
  const first = (key: string) => fields.find((f) => f.field.key === key);
  const all = (key: string) => fields.filter((f) => f.field.key === key);
  const subject = first('subject');
  const references = all('references').flatMap((f) => messageIds(f.text));
  const { date, dateSource } = messageDate(fields);
  return {
    from: firstMailbox(first('from')?.text),
    sender: firstMailbox(first('sender')?.text),
    replyTo: addresses(all('reply-to')),
    to: addresses(all('to')),
    cc: addresses(all('cc')),
    bcc: addresses(all('bcc')),
    subject: subject === undefined ? null : subject.field.value,
    messageId: messageIds(first('message-id')?.text ?? '')[0] ?? null,
    inReplyTo: messageIds(first('in-reply-to')?.text ?? '')[0] ?? null,
    references,
    date,
    dateSource,
  };
}

function messageDate(fields: readonly ReadField[]): Pick<Envelope, 'date' | 'dateSource'> {
  const header = fields.find((f) => f.field.key === 'date');
  const date = header === undefined ? null : parseDate(header.text);
  if (header !== undefined && date !== null) return { date, dateSource: { header: 'date', raw: header.text } };
  // No Date field (seen from scripts and some gateways), or one that cannot be read: the
  // newest Received field says when the message reached the first server that stamped it.
  const received = fields.find((f) => f.field.key === 'received');
  const stamped = received === undefined ? null : receivedDate(received.text);
  if (received !== undefined && stamped !== null) return { date: stamped, dateSource: { header: 'received', raw: received.text } };
  return { date: null, dateSource: null };
}

/**
 * RFC 5322 msg-ids (`<id@host>`) in a field. A field with none in brackets (a mailer that left
 * them out) gives its words, so the thread is not lost.
 */
function messageIds(text: string): string[] {
  const bracketed = text.match(/<[^<>\s]+>/g);
  if (bracketed !== null) return bracketed;
  return text.split(/\s+/).filter((word) => word.length > 0);
}

function addresses(fields: readonly ReadField[]): Address[] {
  return fields.flatMap((f) => parseAddresses(f.text));
}

function firstMailbox(text: string | undefined): Mailbox | null {
  if (text === undefined) return null;
  for (const address of parseAddresses(text)) {
    if ('address' in address) return address;
    if (address.group[0] !== undefined) return address.group[0];
  }
  return null;
}

/**
 * The two shapes nearly every From and To of bulk and personal mail has: `Name <local@domain>`
 * with a plain name (letters, digits, spaces, `.'_-`), and a bare `local@domain`. Nothing in
 * them is quoted, commented, encoded or grouped, so postal-mime's tokenizer would return the
 * name and address as written; the sync read two such fields per message, at about 2.5 us each.
 * Anything else goes to postal-mime; a property test holds the two to the same answers.
 */
const PLAIN_NAMED = /^(?:([A-Za-z0-9][A-Za-z0-9 .'_-]*?) *)?<([A-Za-z0-9._+-]+@[A-Za-z0-9.-]+)>$/;
const PLAIN_BARE = /^[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+$/;

/** postal-mime's parser (it decodes encoded-words in display names), in our readonly shapes. */
export function parseAddresses(text: string): Address[] {
  if (PLAIN_BARE.test(text)) return [{ name: '', address: text }];
  const named = PLAIN_NAMED.exec(text);
  if (named !== null) return [{ name: named[1] ?? '', address: named[2]! }];
  let parsed: ReturnType<typeof addressParser>;
  try {
    parsed = addressParser(text);
  } catch {
    return [];
  }
  return parsed.map((a) =>
    a.group === undefined
      ? { name: a.name, address: a.address }
      : { name: a.name, group: a.group.map((m) => ({ name: m.name, address: m.address })) },
  );
}
