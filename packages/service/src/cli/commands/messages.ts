import { isoTime, isoTimeOrNull } from '../../iso-time.js';
import { recipientsOf } from '../../store/messages.js';
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
}

const DEFAULT_LIMIT = 50;
const FROM_WIDTH = 28;

export const messages: CommandRegistration = (program) => {
  const command = program.command('messages').description('List the stored messages, newest first: id, date, sender, size, attachments, subject');
  addStoreOption(command)
    .option('--account <key>', 'only the messages of this account (user@host:port, as popwire sync names it)')
    .option('--limit <n>', `at most N messages (default ${DEFAULT_LIMIT})`, wholeNumber(1))
    .option('--json', 'print the messages as JSON, with every field of their summary');
  command.action(async () => listMessages(command.opts<MessagesOptions>()));
};

async function listMessages(options: MessagesOptions): Promise<void> {
  await using opened = await openStore(options, 'existing');
  const { store, where } = opened;
  const accounts = await store.accounts.list();
  const accountId = options.account === undefined ? undefined : accountNamed(accounts, options.account, where).id;
  const page = await store.messages.list({ accountId, limit: options.limit ?? DEFAULT_LIMIT });
  const keys = new Map(accounts.map((account) => [account.id, account.key]));
  const rows = page.messages;
  const lines = rows.length === 0 ? [] : [header(rows), ...rows.map((row) => line(row, rows))];
  await writeReport(report(lines, rows.map((row) => summaryJson(row, keys.get(row.account_id) ?? null))), options.json === true);
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
  const subject = printableLine(row.subject ?? '(no subject)') + (row.headers_only === 1 ? ' [headers only]' : '');
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
    sha256: row.sha256,
    storedAt: isoTime(row.stored_at),
  };
}
