/**
 * Message state and search in the store (issue 15), on SQLite and PostgreSQL: the index is
 * written by the commit that stores a message (so the writer's own summary, body text
 * included, is what is found), ranked and paged by cursor, combinable with the list's filters
 * and the token's account restriction; a soft delete hides, a purge removes the message but
 * keeps its UID known; and the syntax gives the same answers on both databases.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { accountFields, STORE_KINDS, testStores } from '../../../../support/stores.ts';
import type { MessageToCommit } from '../../src/store/messages.ts';
import { parseSearch, SearchSyntaxError, toFts5, toTsquery } from '../../src/store/search-query.ts';
import type { Store } from '../../src/store/store.ts';
import { summarize } from '../../src/sync/summary.ts';
import { Pruner } from '../../src/jobs/prune.ts';
import { planSession } from '../../src/sync/plan.ts';

const stores = testStores();

async function mail(uid: string, headers: Record<string, string>, body: string): Promise<MessageToCommit> {
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  const bytes = Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}\r\n`, 'utf8');
  return { uid, listedSize: bytes.length, firstSeenAt: 1, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), headersOnly: false, summary: await summarize(bytes) };
}

const MAILS: Array<[string, Record<string, string>, string]> = [
  ['u1', { From: 'Alice Smith <alice@example.test>', To: 'bob@example.test', Subject: 'Quarterly report', Date: 'Sat, 01 Nov 2025 09:00:00 +0000' }, 'The numbers for the quarter are attached.'],
  ['u2', { From: 'carol@other.test', To: 'Bob <bob@example.test>', Subject: 'Lunch', Date: 'Sun, 02 Nov 2025 09:00:00 +0000' }, 'Shall we talk about the report over lunch? Café at noon.'],
  ['u3', { From: 'dave@example.test', To: 'alice@example.test', Subject: 'report report report', Date: 'Mon, 03 Nov 2025 09:00:00 +0000' }, 'A report on reports.'],
  [
    'u4',
    { From: 'news@letters.test', To: 'bob@example.test', Subject: 'Newsletter', Date: 'Tue, 04 Nov 2025 09:00:00 +0000', 'Content-Type': 'text/html; charset=utf-8', 'Content-Transfer-Encoding': 'quoted-printable' },
    '<p>Our <b>quarterly</b> news: r=C3=A9sum=C3=A9 <script>hiddenword()</script></p>',
  ],
  [
    'u5',
    { From: 'eve@example.test', To: 'bob@example.test', Subject: 'Multipart', Date: 'Wed, 05 Nov 2025 09:00:00 +0000', 'MIME-Version': '1.0', 'Content-Type': 'multipart/mixed; boundary="b"' },
    '--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n' + Buffer.from('the zebra crossing').toString('base64') + '\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\nxx\r\n--b--',
  ],
];

async function seeded(store: Store): Promise<{ accountId: number; ids: Map<string, number> }> {
  const account = await store.accounts.upsert(accountFields('a'), 1);
  const batch = await Promise.all(MAILS.map(([uid, headers, body]) => mail(uid, headers, body)));
  const ids = await store.messages.commit(account.id, batch, 5);
  return { accountId: account.id, ids: new Map(batch.map((m, i) => [m.uid, ids[i]!])) };
}

async function uidsFor(store: Store, q: string, options = {}): Promise<string[]> {
  return (await store.messages.search(parseSearch(q), options)).messages.map((m) => m.uid);
}

describe('the search syntax', () => {
  it('makes words, phrases, negations, prefixes and fields into both dialects from tokens alone', () => {
    const query = parseSearch('Invoice "quarterly report" -spam repo* from:alice@example.test');
    assert.equal(toFts5(query), '(("invoice" AND "quarterly report" AND "repo" * AND {sender} : "alice example test") NOT "spam")');
    assert.equal(toTsquery(query), "'invoice' & ('quarterly' <-> 'report') & !'spam' & 'repo':* & ('alice':B <-> 'example':B <-> 'test':B)");
  });

  it('keeps quotes, parentheses and operators of the user out of both query languages', () => {
    const query = parseSearch(`a'b "c) OR (d" NEAR(e) f:g`);
    assert.doesNotMatch(toTsquery(query).replace(/'[a-z0-9]+'/g, ''), /[a-z]/);
    assert.doesNotMatch(toFts5(query).replace(/"[a-z0-9 ]+"/g, ''), /[a-z]/);
  });

  it('refuses an unclosed quote, a search of only exclusions, a field with no word, and nothing to find', () => {
    for (const bad of ['"open', '-spam -ham', 'from:', '   ', '--- !!!', 'a"b"']) {
      assert.throws(() => parseSearch(bad), SearchSyntaxError, bad);
    }
  });
});

for (const kind of STORE_KINDS) {
  describe(`search on ${kind}`, () => {
    it('finds words in the subject, the sender, the recipients and the text body, in any case and without accents', async () => {
      await using store = await stores.open(kind);
      await seeded(store);
      assert.deepEqual((await uidsFor(store, 'NUMBERS')).sort(), ['u1'], 'the text body');
      assert.deepEqual((await uidsFor(store, 'smith')).sort(), ['u1'], "the sender's name");
      assert.deepEqual((await uidsFor(store, 'to:alice')).sort(), ['u3'], 'a recipient, and only the recipients');
      assert.deepEqual((await uidsFor(store, 'from:alice')).sort(), ['u1']);
      assert.deepEqual((await uidsFor(store, 'cafe')).sort(), ['u2'], 'Café without its accent');
      assert.deepEqual((await uidsFor(store, 'résumé')).sort(), ['u4'], 'quoted-printable HTML, decoded');
      assert.deepEqual(await uidsFor(store, 'hiddenword'), [], "an HTML body's script is not text");
      assert.deepEqual(await uidsFor(store, 'zebra'), ['u5'], 'the base64 text part of a multipart message');
    });

    it('writes the index in the transaction that stores the message: a rolled-back commit leaves nothing to find', async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const failing = () => {
        throw new Error('the outbox write failed');
      };
      await assert.rejects(store.messages.commit(account.id, [await mail('r1', { Subject: 'rollback' }, 'ephemeral words')], 5, failing), /outbox write failed/);
      assert.deepEqual(await uidsFor(store, 'ephemeral'), []);
      await store.messages.commit(account.id, [await mail('r1', { Subject: 'rollback' }, 'ephemeral words')], 6);
      assert.deepEqual(await uidsFor(store, 'ephemeral'), ['r1'], 'committed again, it is found once');
    });

    it('ranks, ANDs words, matches phrases and prefixes, and excludes', async () => {
      await using store = await stores.open(kind);
      await seeded(store);
      const ranked = await uidsFor(store, 'report');
      assert.deepEqual(ranked.sort(), ['u1', 'u2', 'u3']);
      assert.equal((await uidsFor(store, 'report'))[0], 'u3', 'the word three times in the subject and twice in the body ranks first');
      assert.deepEqual(await uidsFor(store, 'report lunch'), ['u2']);
      assert.deepEqual(await uidsFor(store, '"quarterly report"'), ['u1']);
      assert.deepEqual(await uidsFor(store, '"report quarterly"'), []);
      assert.deepEqual((await uidsFor(store, 'quarter*')).sort(), ['u1', 'u4']);
      assert.deepEqual((await uidsFor(store, 'report -lunch')).sort(), ['u1', 'u3']);
    });

    it('pages results by cursor without repeating or losing one, with the filters', async () => {
      await using store = await stores.open(kind);
      const { accountId } = await seeded(store);
      const seen: string[] = [];
      let page = await store.messages.search(parseSearch('example'), { limit: 1 });
      for (let n = 0; ; n++) {
        assert.ok(n < 10, 'the pages end');
        seen.push(...page.messages.map((m) => m.uid));
        if (page.next === null) break;
        page = await store.messages.search(parseSearch('example'), { limit: 1, after: page.next });
      }
      assert.deepEqual(seen.sort(), ['u1', 'u2', 'u3', 'u4', 'u5'], 'bob@example.test or a sender at example.test: all five');
      assert.deepEqual((await uidsFor(store, 'example', { since: Date.UTC(2025, 10, 3), until: Date.UTC(2025, 10, 5) })).sort(), ['u3', 'u4']);
      assert.deepEqual((await uidsFor(store, 'example', { from: 'EXAMPLE.test' })).sort(), ['u1', 'u3', 'u5']);
      assert.deepEqual(await uidsFor(store, 'example', { accountId: accountId + 1 }), []);
    });

    it('finds only the messages of the accounts a token may reach', async () => {
      await using store = await stores.open(kind);
      await seeded(store);
      const other = await store.accounts.upsert(accountFields('b'), 1);
      await store.messages.commit(other.id, [await mail('x1', { From: 'zed@z.test', Subject: 'report from b' }, 'b')], 5);
      const { id: tokenId } = await store.tokens.create('restricted', { scopes: ['read'], accounts: [other.id] });
      const restricted = store.restrictedTo({ kind: 'token', tokenId });
      assert.deepEqual((await restricted.messages.search(parseSearch('report'))).messages.map((m) => m.uid), ['x1']);
      assert.equal((await store.messages.search(parseSearch('report'))).messages.length, 4);
    });

    it('ranks only the newest matches up to the cap, counted after the account restriction and the filters', async () => {
      await using store = await stores.open(kind);
      const a = await store.accounts.upsert(accountFields('a'), 1);
      const b = await store.accounts.upsert(accountFields('b'), 1);
      const batch = async (prefix: string, n: number) => Promise.all(Array.from({ length: n }, (_, i) => mail(`${prefix}${i}`, { Subject: `common ${prefix}` }, 'common words')));
      await store.messages.commit(a.id, await batch('a', 3), 5);
      await store.messages.commit(b.id, await batch('b', 5), 6);
      const capped = await store.messages.search(parseSearch('common'), { candidates: 2 });
      assert.deepEqual(capped.messages.map((m) => m.uid).sort(), ['b3', 'b4'], 'the two newest matches');
      const { id: tokenId } = await store.tokens.create('a only', { scopes: ['read'], accounts: [a.id] });
      const restricted = await store.restrictedTo({ kind: 'token', tokenId }).messages.search(parseSearch('common'), { candidates: 2 });
      assert.deepEqual(restricted.messages.map((m) => m.uid).sort(), ['a1', 'a2'], "b's newer messages do not crowd a's out");
      const filtered = await store.messages.search(parseSearch('common'), { candidates: 2, accountId: a.id });
      assert.deepEqual(filtered.messages.map((m) => m.uid).sort(), ['a1', 'a2']);
    });

    it('sets seen and flagged, filters on them, and writes the outbox row only for a change', async () => {
      await using store = await stores.open(kind);
      const { ids } = await seeded(store);
      const rows = (account: { id: number }, before: { seen: number }, after: { seen: number; flagged: number }) => [
        { accountId: account.id, url: 'https://receiver.test/hook', type: 'message.updated', body: JSON.stringify({ seen: after.seen, flagged: after.flagged, was: before.seen }) },
      ];
      const updated = await store.messages.updateState(ids.get('u1')!, { seen: true, flagged: true }, rows, 10);
      assert.deepEqual([updated.seen, updated.flagged], [1, 1]);
      await store.messages.updateState(ids.get('u1')!, { seen: true }, rows, 11);
      const events = await store.db.selectFrom('webhook_events').selectAll().execute();
      assert.deepEqual(events.map((e) => JSON.parse(e.body)), [{ seen: 1, flagged: 1, was: 0 }], 'setting what is set writes no event');
      assert.deepEqual((await store.messages.list({ seen: true })).messages.map((m) => m.uid), ['u1']);
      assert.deepEqual((await store.messages.list({ flagged: false })).messages.map((m) => m.uid).sort(), ['u2', 'u3', 'u4', 'u5']);
      assert.deepEqual(await uidsFor(store, 'report', { flagged: true }), ['u1']);
    });

    it('rolls a state change back when its outbox row cannot be written', async () => {
      await using store = await stores.open(kind);
      const { ids } = await seeded(store);
      const failing = () => {
        throw new Error('the outbox write failed');
      };
      await assert.rejects(store.messages.updateState(ids.get('u1')!, { seen: true }, failing), /outbox write failed/);
      assert.equal((await store.messages.get(ids.get('u1')!)).seen, 0);
    });

    it('hides a soft-deleted message from lists, searches and counts unless asked, and purges it after the days', async () => {
      await using store = await stores.open(kind);
      const { accountId, ids } = await seeded(store);
      await store.messages.softDelete(ids.get('u1')!, 1000);
      assert.deepEqual(await uidsFor(store, 'quarterly'), ['u4']);
      assert.deepEqual(await uidsFor(store, 'quarterly', { deleted: 'only' }), ['u1']);
      assert.deepEqual((await uidsFor(store, 'quarterly', { deleted: 'include' })).sort(), ['u1', 'u4']);
      assert.equal((await store.messages.list({ accountId })).messages.length, 4);
      assert.equal(await store.messages.count(accountId), 4);
      assert.equal((await store.messages.get(ids.get('u1')!)).deleted_at, 1000, 'still readable until purged');
      assert.equal(await store.messages.purgeDeleted(1000), 0, 'deleted at 1000 is not older than 1000');
      assert.equal(await store.messages.purgeDeleted(1001), 1);
      await assert.rejects(store.messages.get(ids.get('u1')!), /no stored message/);
      assert.deepEqual(await uidsFor(store, 'quarterly', { deleted: 'include' }), ['u4']);
    });

    it("purges, in the service's hourly prune, the messages soft-deleted more than messages.purgeAfterDays ago", async () => {
      await using store = await stores.open(kind);
      const { accountId, ids } = await seeded(store);
      const DAY = 86_400_000;
      const now = 100 * DAY;
      await store.messages.softDelete(ids.get('u1')!, now - 8 * DAY);
      await store.messages.softDelete(ids.get('u2')!, now - 6 * DAY);
      const pruner = new Pruner(store, { keepDays: 30, purgeAfterDays: 7, now: () => now });
      pruner.start();
      await pruner.stop();
      await assert.rejects(store.messages.get(ids.get('u1')!), /no stored message/);
      assert.equal((await store.messages.get(ids.get('u2')!)).deleted_at, now - 6 * DAY, 'deleted six days ago: kept, hidden');
      assert.equal((await store.messages.list({ accountId, deleted: 'include' })).messages.length, 4);
    });

    it('purges now without forgetting the UID, so the next sync neither fetches it again nor loses its place', async () => {
      await using store = await stores.open(kind);
      const { accountId, ids } = await seeded(store);
      await store.messages.purge(ids.get('u2')!);
      await assert.rejects(store.messages.rawBuffer(ids.get('u2')!), /no stored message/);
      const chunks = await store.db.selectFrom('message_chunks').select('message_id').where('message_id', '=', ids.get('u2')!).execute();
      assert.equal(chunks.length, 0, 'its bytes are gone');
      assert.deepEqual(await uidsFor(store, 'lunch'), [], 'and its index entry');
      const seen = await store.seen.forAccount(accountId);
      const row = seen.get('u2');
      assert.equal(row?.state, 'stored');
      assert.equal(row?.message_id, null);
      const plan = planSession([{ n: 2, uid: 'u2', size: row!.listed_size }], seen, { retention: 'leave', oversize: 'skip' });
      assert.deepEqual(plan.retrieve, [], 'not fetched again');
      assert.deepEqual(plan.known.map((m) => m.uid), ['u2']);
    });
  });
}
