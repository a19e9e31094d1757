/**
 * Reading the store: `popwire messages`, `show` and `export`, end to end with the built bin, on
 * an SQLite store that `popwire sync` filled from a real Dovecot (sync.test.ts runs the same
 * commands on PostgreSQL). Build first:
 *   npx tsc -b packages/client packages/service
 *   node --import tsx --test packages/service/test/cli/commands/messages.test.ts
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { expectedRetrBytes, type Dovecot } from '../../../../../support/dovecot.ts';
import { bulkMessages, largeFixture, smallFixtures } from '../../../../../support/fixtures.ts';
import { failedWith, finished, parseJson, popwire, spawnPopwire, succeeded, type Run, dovecotScratch, type DovecotScratch } from '../popwire.ts';

let dovecot: Dovecot;
let scratch: string;
let caFile: string;

let servers: DovecotScratch | undefined;
before(async () => {
  ({ dovecot, scratch, caFile } = servers = await dovecotScratch('popwire-messages-test-'));
});

after(() => servers?.stop());

let paths = 0;
const freshPath = (name: string) => join(scratch, `${name}-${++paths}`);

const mime = (name: string) => readFile(new URL(`../../../../client/test/fixtures/mime/${name}`, import.meta.url));
const fixture = (name: string) => smallFixtures().find((candidate) => candidate.name === name)!.bytes;
const urlOf = (user: string) => `pop3s://${user}@127.0.0.1:${dovecot.tlsPort}`;

/** Fills a fresh store with `messages`, as `user`'s mailbox; returns the store's folder. */
async function storeOf(messages: Buffer[], options: { user?: string; store?: string; args?: readonly string[] } = {}): Promise<string> {
  const user = options.user ?? 'alice';
  const store = options.store ?? freshPath('store');
  await dovecot.setMailbox(user, messages);
  succeeded(await popwire(['sync', urlOf(user), '--store', store, '--ca', caFile, ...(options.args ?? [])], { password: `${user}-secret` }));
  return store;
}

/** Runs a reading command on `store`, dates in UTC so that the lines are the same everywhere. */
const read = (args: readonly string[], store: string): Promise<Run> => popwire([...args, '--store', store], { env: { TZ: 'UTC' } });
const text = (run: Run) => succeeded(run).stdout.toString('utf8');

interface MessageJson {
  readonly id: number;
  readonly account: string;
  readonly subject: string | null;
  readonly headersOnly: boolean;
}

describe('messages', () => {
  it('lists the newest first, one line each: id, date, sender, size, attachment flag, subject', async () => {
    const undated = Buffer.from('From: Nobody <nobody@example.test>\r\nSubject: undated\r\n\r\nNo Date, no Received.\r\n');
    const store = await storeOf([await mime('alternative.eml'), await mime('attachments.eml'), undated, ...bulkMessages(1, 600)]);
    assert.deepEqual(text(await read(['messages'], store)).split('\n'), [
      'ID  DATE              FROM                               SIZE  ATT  SUBJECT',
      ' 2  2025-11-26 13:30  sender@example.test             2.4 KiB  yes  Report and data',
      ' 4  2025-11-25 10:00  Alice Example                     608 B       Bulk message 1 of 1',
      ' 1  2025-11-25 09:00  Alice Example                     893 B       Lunch on Friday?',
      ' 3  -                 Nobody                             79 B       undated',
      '',
    ]);
  });

  it('--json gives people as {name, address} and times as ISO 8601 UTC with milliseconds, as the API and webhooks do', async () => {
    const store = await storeOf([await mime('alternative.eml')]);
    const [message] = parseJson<Array<Record<string, unknown>>>(succeeded(await read(['messages', '--json'], store)));
    assert.deepEqual(message?.from, { name: 'Alice Example', address: 'alice@example.test' });
    assert.deepEqual(message?.to, [
      { name: 'Bob Example', address: 'bob@example.test' },
      { name: 'Carol, C.', address: 'carol@example.test' },
    ]);
    assert.equal(message?.date, '2025-11-25T09:00:00.000Z');
    assert.match(String(message?.storedAt), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const shown = parseJson<Record<string, unknown>>(succeeded(await read(['show', String(message?.id), '--json'], store)));
    assert.deepEqual([shown.from, shown.to, shown.date], [message?.from, message?.to, message?.date]);
  });

  it('--json gives every summary field; --limit keeps the newest; --account keeps one mailbox', async () => {
    const store = await storeOf(bulkMessages(3, 500));
    await storeOf([await mime('attachments.eml')], { user: 'bob', store });
    const all = parseJson<Array<Record<string, unknown>>>(succeeded(await read(['messages', '--json'], store)));
    assert.deepEqual(all[0], {
      id: 4,
      account: `bob@127.0.0.1:${dovecot.tlsPort}`,
      uid: all[0]?.uid,
      date: '2025-11-26T13:30:00.000Z',
      from: { name: '', address: 'sender@example.test' },
      to: [{ name: '', address: 'bob@example.test' }],
      subject: 'Report and data',
      messageId: '<att-1@example.test>',
      size: 2501,
      hasAttachments: true,
      headersOnly: false,
      seen: false,
      flagged: false,
      deletedAt: null,
      sha256: all[0]?.sha256,
      storedAt: all[0]?.storedAt,
    });
    assert.match(String(all[0]?.sha256), /^[0-9a-f]{64}$/);
    assert.deepEqual(all.map((message) => message.id), [4, 3, 2, 1], 'bulk messages share a date: the later id first');

    const newest = parseJson<MessageJson[]>(succeeded(await read(['messages', '--json', '--limit', '2'], store)));
    assert.deepEqual(newest.map((message) => message.id), [4, 3]);
    const alices = parseJson<MessageJson[]>(succeeded(await read(['messages', '--json', '--account', `alice@127.0.0.1:${dovecot.tlsPort}`], store)));
    assert.deepEqual(alices.map((message) => message.id), [3, 2, 1]);
    failedWith(await read(['messages', '--account', 'carol@nowhere:995'], store), 2, /No account carol@nowhere:995 in .*popwire\.sqlite: it has alice@127\.0\.0\.1:\d+, bob@127\.0\.0\.1:\d+/);
  });

  it('an empty store prints nothing, and --json an empty list', async () => {
    const store = await storeOf([]);
    assert.equal(text(await read(['messages'], store)), '');
    assert.deepEqual(parseJson(succeeded(await read(['messages', '--json'], store))), []);
  });
});

describe('show', () => {
  it('prints the headers, the HTML part as text when there is no text part, and the attachments in columns', async () => {
    const store = await storeOf([await mime('attachments.eml')]);
    assert.equal(
      text(await read(['show', '1'], store)),
      [
        'From: sender@example.test',
        'To: bob@example.test',
        'Date: Wed, 26 Nov 2025 08:30:00 -0500',
        'Subject: Report and data',
        'Message-ID: <att-1@example.test>',
        '',
        '(no text part: the HTML part, as plain text)',
        '',
        'See the logo:',
        '',
        'Attachments:',
        '  1  logo.png     image/png           70 B  inline, shown by the HTML',
        '  2  report.pdf   application/pdf  1.0 KiB',
        '  3  données.csv  text/csv            51 B',
        '',
      ].join('\n'),
    );
  });

  it('prints the text part of a multipart/alternative message; --json has the headers, the text and the attachments', async () => {
    const store = await storeOf([await mime('alternative.eml')]);
    const shown = text(await read(['show', '1'], store));
    assert.match(shown, /^From: "Alice Example" <alice@example\.test>\nTo: Bob Example <bob@example\.test>, "Carol, C\." <carol@example\.test>\nCc: Team: /);
    assert.match(shown, /\n\nCafé at noon\? It's a long line that the sender folded with a soft line break\.\n\nNo attachments\.\n$/);
    const json = parseJson<Record<string, unknown>>(succeeded(await read(['show', '1', '--json'], store)));
    assert.deepEqual(
      { headers: json.headers, textFrom: json.textFrom, attachments: json.attachments, subject: json.subject, id: json.id },
      {
        headers: {
          From: '"Alice Example" <alice@example.test>',
          To: 'Bob Example <bob@example.test>, "Carol, C." <carol@example.test>',
          Cc: 'Team: dave@example.test, erin@example.test;, undisclosed-recipients:;',
          Date: 'Tue, 25 Nov 2025 10:00:00 +0100',
          Subject: 'Lunch on Friday?',
          'Message-ID': '<alt-1@example.test>',
        },
        textFrom: 'text',
        attachments: [],
        subject: 'Lunch on Friday?',
        id: 1,
      },
    );
    assert.match(String(json.text), /^Café at noon\?/);
  });

  it('says so when a message has no text, and when only its headers were stored', async () => {
    const store = await storeOf([...bulkMessages(1, 5000), fixture('empty-body.eml')], { args: ['--max-size', '3000', '--oversize', 'headers'] });
    const list = parseJson<MessageJson[]>(succeeded(await read(['messages', '--json'], store)));
    const headersOnly = list.find((message) => message.headersOnly)!;
    const empty = list.find((message) => !message.headersOnly)!;
    assert.match(text(await read(['show', String(headersOnly.id)], store)), /\n\n\(only the headers were stored: the message was over the size limit of its sync\)\n\nNo attachments\.\n$/);
    assert.match(text(await read(['show', String(empty.id)], store)), /\n\n\(no text body\)\n\nNo attachments\.\n$/);
    assert.match(text(await read(['messages'], store)), /Bulk message 1 of 1 \[headers only\]\n/);
  });

  it('never lets the message write control characters to the terminal: an escape sequence becomes U+FFFD', async () => {
    const hostile = Buffer.from(
      'From: "Mallory\x1b]0;owned\x07" <m@example.test>\r\nSubject: clear \x1b[2J screen\r\nDate: Tue, 25 Nov 2025 10:00:00 +0000\r\n\r\nline one\x1b[1A\x9b\r\nline two\r\n',
      'latin1',
    );
    const store = await storeOf([hostile]);
    for (const args of [['show', '1'], ['messages']]) {
      const shown = text(await read(args, store));
      assert.doesNotMatch(shown, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, args.join(' '));
      assert.match(shown, /clear \uFFFD\[2J screen/);
    }
    assert.match(text(await read(['show', '1'], store)), /\nline one\uFFFD\[1A\uFFFD\nline two\n/);
  });
});

describe('export', () => {
  it('writes the message byte for byte as the server sent it, a large one (several chunks) too', async () => {
    const large = largeFixture(3 * 1024 * 1024).bytes;
    const small = fixture('eight-bit.eml');
    const store = await storeOf([small, large]);
    assert.deepEqual(succeeded(await read(['export', '1'], store)).stdout, expectedRetrBytes(small));
    assert.deepEqual(succeeded(await read(['export', '2'], store)).stdout, expectedRetrBytes(large));

    // The reader of stdout going away (as with | head) ends it quietly.
    const child = spawnPopwire(['export', '2', '--store', store]);
    child.stdout.destroy();
    const run = await finished(child);
    assert.deepEqual({ code: run.code, stderr: run.stderr }, { code: 0, stderr: '' });
  });
});

describe('reading a store: failures', () => {
  it('an unknown id is exit 2 for show and export, with nothing on stdout', async () => {
    const store = await storeOf(bulkMessages(1, 500));
    for (const command of ['show', 'export']) {
      failedWith(await read([command, '99'], store), 2, /^popwire: No stored message has id 99 in .*popwire\.sqlite: popwire messages lists them\n$/);
      failedWith(await read([command, 'x1'], store), 2, /value 'x1' is invalid for argument 'id'/);
    }
  });

  it('a folder without a store is exit 8 for messages, show and export, and no store is made there', async () => {
    const empty = freshPath('empty');
    await mkdir(empty);
    for (const args of [['messages'], ['show', '1'], ['export', '1']]) {
      failedWith(await read(args, empty), 8, /^popwire: No store at .*popwire\.sqlite: popwire sync makes one/);
    }
    assert.deepEqual(await readdir(empty), []);
  });
});
