import { parseMessage, type ParsedAttachment, type ParsedMessage } from 'popwire';
import { wholeNumber } from '../arguments.js';
import { formatBytes } from '../fetch/progress.js';
import { report, writeReport, type Json } from '../output.js';
import type { CommandRegistration } from '../session-command.js';
import { htmlToText, printableLine, printableText } from '../show/text.js';
import { addStoreOption, openStore, storedMessage, type StoreOptions } from '../store-option.js';
import { summaryJson } from './messages.js';

interface ShowOptions extends StoreOptions {
  readonly json?: boolean;
}

/** The header fields shown, in this order, under the names a mail reader gives them. */
const SHOWN_FIELDS = [
  ['From', 'from'],
  ['To', 'to'],
  ['Cc', 'cc'],
  ['Date', 'date'],
  ['Subject', 'subject'],
  ['Message-ID', 'message-id'],
] as const;

type Body = { readonly kind: 'text' | 'html'; readonly text: string } | { readonly kind: 'none' };

export const show: CommandRegistration = (program) => {
  const command = program
    .command('show')
    .description("Print a stored message: its headers, its text, and the list of its attachments")
    .argument('<id>', 'the message, by the id popwire messages lists', wholeNumber(1));
  addStoreOption(command).option('--json', 'print the headers, the text and the attachments as JSON');
  command.action(async (id: number) => showMessage(id, command.opts<ShowOptions>()));
};

async function showMessage(id: number, options: ShowOptions): Promise<void> {
  await using opened = await openStore(options, 'existing');
  const row = await storedMessage(opened, id);
  const account = await opened.store.accounts.get(row.account_id);
  // Streamed from the store: a message above the parser's in-memory cap is spooled, not held.
  await using parsed = await parseMessage(opened.store.messages.raw(id));
  const body = bodyOf(parsed);
  const headersOnly = row.headers_only === 1;
  const fields = SHOWN_FIELDS.map(([label, name]) => [label, parsed.header(name)] as const);

  const lines = fields.filter(([, value]) => value !== null).map(([label, value]) => `${label}: ${printableLine(value ?? '')}`);
  lines.push('');
  if (headersOnly) lines.push('(only the headers were stored: the message was over the size limit of its sync)');
  else if (body.kind === 'none') lines.push('(no text body)');
  else {
    if (body.kind === 'html') lines.push('(no text part: the HTML part, as plain text)', '');
    lines.push(printableText(body.text).replace(/\n+$/, ''));
  }
  lines.push('', parsed.attachments.length === 0 ? 'No attachments.' : 'Attachments:', ...attachmentTable(parsed.attachments));

  await writeReport(
    report(lines, {
      ...(summaryJson(row, account.key) as Record<string, Json>),
      headers: Object.fromEntries(fields.map(([label, value]) => [label, value])),
      text: body.kind === 'none' ? null : body.text,
      textFrom: body.kind === 'none' ? null : body.kind,
      attachments: parsed.attachments.map((attachment, index) => attachmentJson(attachment, index + 1)),
      warnings: [...parsed.warnings],
    }),
    options.json === true,
  );
}

/** The text part; else the HTML part, crudely as text; else none. */
function bodyOf(parsed: ParsedMessage): Body {
  if (parsed.text !== null && parsed.text.trim() !== '') return { kind: 'text', text: parsed.text };
  if (parsed.html !== null && parsed.html.trim() !== '') return { kind: 'html', text: htmlToText(parsed.html) };
  return { kind: 'none' };
}

/** One line per attachment, in columns: number, file name, content type, size, and whether the HTML shows it. */
function attachmentTable(attachments: readonly ParsedAttachment[]): string[] {
  const rows = attachments.map((attachment, index) => [
    String(index + 1),
    attachment.filename === null ? '(no name)' : printableLine(attachment.filename),
    printableLine(attachment.contentType),
    formatBytes(attachment.size),
    attachment.related ? 'inline, shown by the HTML' : '',
  ]);
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    `  ${row[0]!.padStart(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]!.padEnd(widths[2]!)}  ${row[3]!.padStart(widths[3]!)}  ${row[4]}`.trimEnd(),
  );
}

function attachmentJson(attachment: ParsedAttachment, n: number): Json {
  return {
    n,
    filename: attachment.filename,
    contentType: attachment.contentType,
    size: attachment.size,
    disposition: attachment.disposition,
    related: attachment.related,
  };
}
