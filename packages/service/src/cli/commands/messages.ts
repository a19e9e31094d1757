import { ApiError } from '../../http/errors.js';
import { decodeCursor, decodeSearchCursor, encodeCursor, encodeSearchCursor, parseTime } from '../../http/cursor.js';
import { isoTime, isoTimeOrNull } from '../../iso-time.js';
import { recipientsOf, type DeletedFilter, type MessageListOptions } from '../../store/messages.js';
import { parseSearch, SearchSyntaxError } from '../../store/search-query.js';
import type { Account, StoredMessage } from '../../store/schema.js';
import { wholeNumber } from '../arguments.js';
import { UsageError } from '../failure.js';
import { formatBytes } from '../fetch/progress.js';
import { report, writeReport, type Json } from '../output.js';
import type { CommandRegistration } from '../session-command.js';
import { printableLine } from '../show/text.js';
import { addStoreOption, openStore, type StoreOptions } from '../store-option.js';

interface MessagesOptions extends StoreOptions {
  readonly account?: string;
  readonly limit?: number;
  readonly json?: boolean;
  readonly search?: string;
  readonly since?: string;
  readonly until?: string;
  readonly from?: string;
  readonly seen?: boolean;
  readonly flagged?: boolean;
  readonly deleted?: DeletedFilter;
  readonly cursor?: string;
}

const DEFAULT_LIMIT = 50;
const FROM_WIDTH = 28;

export const messages: CommandRegistration = (program) => {
  const command = program.command('messages').description('List the stored messages, newest first: id, date, sender, size, attachments, subject');
  addStoreOption(command)
    .option('--account <key>', 'only the messages of this account (user@host:port, as popwire sync names it)')
    .option('--limit <n>', `at most N messages (default ${DEFAULT_LIMIT})`, wholeNumber(1))
    .option('--search <query>', 'full-text search, best first: words (all must match), "a phrase", -excluded, prefix*, from:/to:/subject:/body: for one field')
    .option('--since <date>', 'dated at or after: an ISO 8601 date or date-time, or ms since the epoch')
    .option('--until <date>', 'dated before')
    .option('--from <text>', "the sender's address contains this (any case)")
    .option('--seen', 'only messages marked seen')
    .option('--unseen', 'only messages not marked seen')
    .option('--flagged', 'only flagged messages')
    .option('--unflagged', 'only messages not flagged')
    .option('--deleted <which>', 'soft-deleted messages: exclude (default), include, or only')
    .option('--cursor <cursor>', 'continue from where the previous page ended (it prints the cursor)')
    .option('--json', 'print the messages as JSON, with every field of their summary');
  command.action(async () => {
    const raw = command.opts<MessagesOptions & { unseen?: boolean; unflagged?: boolean }>();
    if (raw.seen === true && raw.unseen === true) throw new UsageError('--seen and --unseen exclude each other');
    if (raw.flagged === true && raw.unflagged === true) throw new UsageError('--flagged and --unflagged exclude each other');
    if (raw.deleted !== undefined && !['exclude', 'include', 'only'].includes(raw.deleted)) throw new UsageError(`--deleted takes exclude, include or only; not ${raw.deleted}`);
    const seen = raw.seen === true ? true : raw.unseen === true ? false : undefined;
    const flagged = raw.flagged === true ? true : raw.unflagged === true ? false : undefined;
    await listMessages({ ...raw, seen, flagged });
  });
};

async function listMessages(options: MessagesOptions): Promise<void> {
  await using opened = await openStore(options, 'existing');
  const { store, where } = opened;
  const accounts = await store.accounts.list();
  const accountId = options.account === undefined ? undefined : accountNamed(accounts, options.account, where).id;
  const filters: MessageListOptions = {
    accountId,
    limit: options.limit ?? DEFAULT_LIMIT,
    since: usage(() => parseTime(options.since, '--since')),
    until: usage(() => parseTime(options.until, '--until')),
    from: options.from,
    seen: options.seen,
    flagged: options.flagged,
    deleted: options.deleted,
  };
  let rows;
  let next: string | null;
  if (options.search === undefined) {
    const page = await store.messages.list({ ...filters, after: options.cursor === undefined ? null : usage(() => decodeCursor(options.cursor!, '--cursor')) });
    rows = page.messages;
    next = page.next === null ? null : encodeCursor(page.next);
  } else {
    const query = usage(() => parseSearch(options.search!));
    const page = await store.messages.search(query, { ...filters, after: options.cursor === undefined ? null : usage(() => decodeSearchCursor(options.cursor!, '--cursor')) });
    rows = page.messages;
    next = page.next === null ? null : encodeSearchCursor(page.next);
  }
  const keys = new Map(accounts.map((account) => [account.id, account.key]));
  const lines = rows.length === 0 ? [] : [header(rows), ...rows.map((row) => line(row, rows))];
  if (next !== null) lines.push(`More: add --cursor ${next} (with the same options) for the next page.`);
  const messages = rows.map((row) => summaryJson(row, keys.get(row.account_id) ?? null));
  // A plain list stays a JSON array (scripts read it as one); a search or a page after the first
  // is an object that also gives the next page's cursor.
  const paged = options.search !== undefined || options.cursor !== undefined;
  await writeReport(report(lines, paged ? { messages, next } : messages), options.json === true);
}

/** Bad input read by the API's parsers (a date, a cursor, the search syntax): a usage error here, exit 2. */
function usage<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ApiError || error instanceof SearchSyntaxError) throw new UsageError(error.message);
    throw error;
  }
}

function accountNamed(accounts: readonly Account[], key: string, where: string): Account {
  const account = accounts.find((candidate) => candidate.key === key);
  if (account !== undefined) return account;
  const known = accounts.length === 0 ? 'it has none yet' : `it has ${accounts.map((candidate) => candidate.key).join(', ')}`;
  throw new UsageError(`No account ${key} in ${where}: ${known}`);
}

/** The width of the id column: the widest id on the page. */
const idWidth = (rows: readonly StoredMessage[]) => Math.max(2, ...rows.map((row) => String(row.id).length));

function header(rows: readonly StoredMessage[]): string {
  return `${'ID'.padStart(idWidth(rows))}  ${'DATE'.padEnd(16)}  ${'FROM'.padEnd(FROM_WIDTH)}  ${'SIZE'.padStart(9)}  ATT  SUBJECT`;
}

function line(row: StoredMessage, rows: readonly StoredMessage[]): string {
  const from = printableLine(row.from_name ?? row.from_address ?? '-');
  const subject = printableLine(row.subject ?? '(no subject)') + (row.headers_only === 1 ? ' [headers only]' : '') + (row.flagged === 1 ? ' [flagged]' : '') + (row.deleted_at !== null ? ' [deleted]' : '');
  return [
    String(row.id).padStart(idWidth(rows)),
    localDate(row.date).padEnd(16),
    (from.length > FROM_WIDTH ? `${from.slice(0, FROM_WIDTH - 1)}…` : from).padEnd(FROM_WIDTH),
    formatBytes(row.size).padStart(9),
    (row.has_attachments === 1 ? 'yes' : '').padEnd(3),
    subject,
  ].join('  ');
}

/** `YYYY-MM-DD HH:MM` in local time; `-` for a message whose date could not be read. */
function localDate(ms: number | null): string {
  if (ms === null) return '-';
  const date = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

/** What `messages --json` prints for each message: a contract with scripts, so named field by field. */
export function summaryJson(row: StoredMessage, account: string | null): Json {
  return {
    id: row.id,
    account,
    uid: row.uid,
    date: isoTimeOrNull(row.date),
    // The API's and the webhooks' shape: {name, address}, name '' when the header gives none.
    from: row.from_address === null ? null : { name: row.from_name ?? '', address: row.from_address },
    to: recipientsOf(row).map(({ name, address }) => ({ name, address })),
    subject: row.subject,
    messageId: row.message_id_header,
    size: row.size,
    hasAttachments: row.has_attachments === 1,
    headersOnly: row.headers_only === 1,
    seen: row.seen === 1,
    flagged: row.flagged === 1,
    deletedAt: isoTimeOrNull(row.deleted_at),
    sha256: row.sha256,
    storedAt: isoTime(row.stored_at),
  };
}
