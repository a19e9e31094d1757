/**
 * `popwire messages --search` and the list's filters and paging (issue 15), with the built bin,
 * on an SQLite store that `popwire sync` filled from a real Dovecot. Build first:
 *   npx tsc -b packages/client packages/service
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Dovecot } from '../../../../../support/dovecot.ts';
import { dovecotScratch, failedWith, parseJson, popwire, succeeded, type DovecotScratch } from '../popwire.ts';

let dovecot: Dovecot;
let scratch: string;
let caFile: string;
let servers: DovecotScratch | undefined;
let store: string;

function mail(n: number, from: string, subject: string, body: string, day: number): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: bob@example.test\r\nSubject: ${subject}\r\nDate: ${day} Nov 2025 09:00:00 +0000\r\nMessage-ID: <s${n}@popwire.test>\r\n\r\n${body}\r\n`);
}

before(async () => {
  ({ dovecot, scratch, caFile } = servers = await dovecotScratch('popwire-messages-search-test-'));
  store = join(scratch, 'store');
  await dovecot.setMailbox('alice', [
    mail(1, 'Alice <alice@example.test>', 'Invoice for March', 'Please pay the invoice.', 1),
    mail(2, 'carol@other.test', 'Lunch', 'No invoice talk at lunch.', 2),
    mail(3, 'dave@example.test', 'Invoice invoice', 'Another invoice, the quarterly one.', 3),
    mail(4, 'erin@example.test', 'Holiday', 'Away next week.', 4),
  ]);
  succeeded(await popwire(['sync', `pop3s://alice@127.0.0.1:${dovecot.tlsPort}`, '--store', store, '--ca', caFile], { password: 'alice-secret' }));
});
after(() => servers?.stop());

interface Page {
  readonly messages: Array<{ subject: string; seen: boolean; flagged: boolean; deletedAt: string | null }>;
  readonly next: string | null;
}

const search = async (args: readonly string[]) => parseJson<Page>(succeeded(await popwire(['messages', '--store', store, '--json', ...args], { env: { TZ: 'UTC' } })));

describe('messages --search', () => {
  it('finds words in the subject, sender and body, best first, and takes --from, --since and --unseen', async () => {
    const found = await search(['--search', 'invoice']);
    assert.equal(found.messages[0]!.subject, 'Invoice invoice');
    assert.deepEqual(found.messages.map((m) => m.subject).sort(), ['Invoice for March', 'Invoice invoice', 'Lunch']);
    assert.deepEqual(found.messages[0]!.seen, false);
    assert.deepEqual((await search(['--search', 'invoice -lunch', '--from', 'alice'])).messages.map((m) => m.subject), ['Invoice for March']);
    assert.deepEqual((await search(['--search', 'invoice', '--since', '2025-11-02', '--unseen'])).messages.map((m) => m.subject).sort(), ['Invoice invoice', 'Lunch']);
    assert.deepEqual((await search(['--search', '"quarterly one"'])).messages.map((m) => m.subject), ['Invoice invoice']);
  });

  it('pages by the cursor it prints, in JSON and for people', async () => {
    const subjects: string[] = [];
    let page = await search(['--search', 'invoice', '--limit', '1']);
    for (let n = 0; ; n++) {
      assert.ok(n < 10, 'the pages end');
      subjects.push(...page.messages.map((m) => m.subject));
      if (page.next === null) break;
      page = await search(['--search', 'invoice', '--limit', '1', '--cursor', page.next]);
    }
    assert.equal(new Set(subjects).size, 3);
    const text = succeeded(await popwire(['messages', '--store', store, '--limit', '2'], { env: { TZ: 'UTC' } })).stdout.toString('utf8');
    const more = /More: add --cursor (\S+)/.exec(text);
    assert.ok(more, text);
    const rest = succeeded(await popwire(['messages', '--store', store, '--limit', '2', '--cursor', more[1]!], { env: { TZ: 'UTC' } })).stdout.toString('utf8');
    assert.match(rest, /Lunch/);
    assert.match(rest, /Invoice for March/);
    assert.doesNotMatch(rest, /More:/);
  });

  it('refuses bad syntax, a bad date and a foreign cursor with a usage error (exit 2)', async () => {
    failedWith(await popwire(['messages', '--store', store, '--search', '"unclosed']), 2, /quote .* not closed/);
    failedWith(await popwire(['messages', '--store', store, '--search', '-only -not']), 2, /only excluded terms/);
    failedWith(await popwire(['messages', '--store', store, '--since', 'yesterday']), 2, /--since/);
    failedWith(await popwire(['messages', '--store', store, '--search', 'x', '--cursor', 'bm90IGEgY3Vyc29y']), 2, /cursor/);
    failedWith(await popwire(['messages', '--store', store, '--seen', '--unseen']), 2, /exclude each other/);
  });
});
