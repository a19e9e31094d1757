/**
 * PostgreSQL's two plans of a search (store/search.ts, postgresHits): walking the primary key
 * newest first and matching through the GIN index give the same candidates, ranks included,
 * with the cap, a field term, a negation and a filter; and the choice between them follows the
 * estimates (a common word walks, a rare one or a field term goes through the index).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { accountFields, testStores } from '../../../../support/stores.ts';
import type { MessageToCommit } from '../../src/store/messages.ts';
import { postgresHits, searchPlan, type SearchPlan } from '../../src/store/search.ts';
import { parseSearch } from '../../src/store/search-query.ts';
import { summarize } from '../../src/sync/summary.ts';

const stores = testStores();

async function mail(n: number): Promise<MessageToCommit> {
  const sender = n % 3 === 0 ? 'Report Desk <desk@example.test>' : `Person ${n} <p${n}@example.test>`;
  const subject = n % 2 === 0 ? `report number ${n}` : `note ${n}`;
  const body = `${n % 5 === 0 ? 'quarterly report attached' : 'nothing to see'} common words ${'report '.repeat(n % 4)}`;
  const bytes = Buffer.from(`From: ${sender}\r\nTo: bob@example.test\r\nSubject: ${subject}\r\nDate: ${new Date(Date.UTC(2025, 0, 1 + n)).toUTCString()}\r\n\r\n${body}\r\n`);
  return { uid: `u${n}`, listedSize: bytes.length, firstSeenAt: 1, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), headersOnly: false, summary: await summarize(bytes) };
}

describe('search plans on postgres', () => {
  it('gives the same candidates and ranks walking the primary key as through the GIN index', async () => {
    await using store = await stores.open('postgres');
    const account = await store.accounts.upsert(accountFields('plans@example.test:110'), 1);
    await store.messages.commit(account.id, await Promise.all(Array.from({ length: 60 }, (_, n) => mail(n))), 1);
    const since = Date.UTC(2025, 0, 20);
    const cases: Array<[string, ReturnType<typeof sql>]> = [
      ['report', sql`messages.pending = 0`],
      ['common', sql`messages.pending = 0`],
      ['from:report', sql`messages.pending = 0`],
      ['"quarterly report"', sql`messages.pending = 0`],
      ['report -quarterly', sql`messages.pending = 0`],
      ['report', sql`messages.pending = 0 and messages.date >= ${since}`],
    ];
    for (const [q, where] of cases) {
      for (const candidates of [5, 1000]) {
        const run = async (plan: SearchPlan) => {
          const hits = await postgresHits(store.db, parseSearch(q), where, candidates, plan);
          const { rows } = await sql<{ id: number; rank: number }>`select id, rank from ${hits} as hits order by id desc`.execute(store.db);
          return rows;
        };
        const walk = await run('walk');
        assert.ok(walk.length > 0, `${q} finds something`);
        assert.deepEqual(await run('gin'), walk, `${q}, ${candidates} candidates`);
      }
    }
  });

  it('walks the primary key for a common word and goes through the GIN index for a rare word or a field term', () => {
    assert.equal(searchPlan({ filtered: 100_000, matching: 100_000, fielded: false }, 1000), 'walk');
    assert.equal(searchPlan({ filtered: 100_000, matching: 30_000, fielded: false }, 1000), 'walk');
    assert.equal(searchPlan({ filtered: 100_000, matching: 5_000, fielded: false }, 1000), 'gin');
    assert.equal(searchPlan({ filtered: 100_000, matching: 10_000, fielded: true }, 1000), 'gin');
    assert.equal(searchPlan({ filtered: 100_000, matching: 10_000, fielded: false }, 1000), 'walk');
    assert.equal(searchPlan({ filtered: 27_000, matching: 3_300, fielded: false }, 1000), 'gin');
    assert.equal(searchPlan({ filtered: 50, matching: 50, fielded: false }, 1000), 'walk');
  });
});
