import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from './dialect.js';
import { toTsquery, type SearchQuery } from './search-query.js';
import type { SearchDocument } from './search-text.js';

/**
 * The search index's writes, one per dialect (migration 0007 makes both):
 *
 * - SQLite: `message_search`, an FTS5 table without content of its own (`content=''`, so the
 *   text is not stored twice) whose rowid is the message's id. `contentless_delete=1` lets a
 *   row be deleted, which a trigger on `messages` does, so a purge, a replaced headers-only
 *   copy or a deleted account leaves nothing behind.
 * - PostgreSQL: `messages.search`, a tsvector with a GIN index, written in the message's own
 *   INSERT. Fields are weighted: subject A, sender B, recipients C, body D; a `from:` term
 *   matches only the B lexemes.
 */
export const FTS_TABLE = 'message_search';

/** Rows per INSERT into the FTS table: 5 values each, far below SQLite's bound-parameter limit. */
const ROWS_PER_STATEMENT = 200;

/** PostgreSQL: the tsvector of a document, as an expression for an INSERT or UPDATE. */
export function tsvectorOf(doc: SearchDocument): RawBuilder<unknown> {
  return sql`setweight(to_tsvector('simple', ${doc.subject}), 'A') || setweight(to_tsvector('simple', ${doc.sender}), 'B') || setweight(to_tsvector('simple', ${doc.recipients}), 'C') || setweight(to_tsvector('simple', ${doc.body}), 'D')`;
}

/** SQLite: adds the index rows of messages just stored. (PostgreSQL's is written with the row: tsvectorOf.) */
export async function indexSqlite(db: Kysely<any>, entries: ReadonlyArray<{ id: number; doc: SearchDocument }>): Promise<void> {
  for (let i = 0; i < entries.length; i += ROWS_PER_STATEMENT) {
    const rows = entries.slice(i, i + ROWS_PER_STATEMENT);
    const values = sql.join(rows.map((e) => sql`(${e.id}, ${e.doc.subject}, ${e.doc.sender}, ${e.doc.recipients}, ${e.doc.body})`));
    await sql`insert into message_search (rowid, subject, sender, recipients, body) values ${values}`.execute(db);
  }
}

/** Fills the index of messages already stored (migration 0007's backfill), either dialect. */
export async function indexStored(db: Kysely<any>, dialect: Dialect, entries: ReadonlyArray<{ id: number; doc: SearchDocument }>): Promise<void> {
  if (dialect === 'sqlite') return indexSqlite(db, entries);
  for (const e of entries) await sql`update messages set search = ${tsvectorOf(e.doc)} where id = ${e.id}`.execute(db);
}

/**
 * PostgreSQL's statistics know a lexeme, not its weight: `from:x` is estimated as if x matched in
 * any field. A field term is taken to match this much less often than the estimate.
 */
const FIELD_SELECTIVITY = 0.1;

/**
 * PostgreSQL: the ranked candidates, `(id, rank)`, of a search: its `candidates` newest matches.
 *
 * Two plans give the same rows, and each is slow where the other is fast (bench (l), 100,000
 * messages). Walking the primary key newest first stops after `candidates` matches: 4 ms for a
 * common word, but 0.1 to 0.3 s for a word few of the filtered rows hold, since it reads nearly
 * all of them. The GIN index finds every match: 20 to 80 ms where the walk took 0.1 to 0.3 s, but
 * 0.25 s for a common word (each match's row is fetched, then sorted). PostgreSQL's own choice
 * went wrong both ways: its statistics ignore field weights (`from:x`, x also a common body
 * word), and a LIMIT over a filter (a date range, a token's accounts) looks cheaper than it is.
 *
 * So the choice is made here from the planner's estimates (two EXPLAINs, nothing executed): rows
 * passing the filters, F, and of them rows matching, M. The walk reads about candidates × F / M
 * rows (at most F); the GIN plan reads M. A row costs about the same in either (3 to 9 µs walking,
 * 7 to 14 µs through GIN, measured), so the fewer rows wins. The GIN plan is forced by ordering
 * on `id + 0`, which no index gives; the order, and so the rows, are the same.
 */
export async function postgresHits(
  db: Kysely<any>,
  search: SearchQuery,
  where: RawBuilder<unknown>,
  candidates: number,
  plan?: SearchPlan,
): Promise<RawBuilder<{ id: number; rank: number }>> {
  const query = sql`to_tsquery('simple', ${toTsquery(search)})`;
  if (plan === undefined) {
    const filtered = await estimate(db, sql`select 1 from messages where ${where}`);
    const matching = await estimate(db, sql`select 1 from messages where messages.search @@ ${query} and ${where}`);
    plan = searchPlan({ filtered, matching, fielded: search.terms.some((t) => t.field !== 'any' && !t.negated) }, candidates);
  }
  if (plan === 'walk') {
    return sql`(select c.id, (-ts_rank(c.search, ${query}))::float8 as rank from
      (select messages.id, messages.search from messages where messages.search @@ ${query} and ${where}
        order by messages.id desc limit ${candidates}) as c)`;
  }
  // Ordering on `id + 0` keeps the primary key out; with the table in memory the planner may
  // still prefer reading every row (0.2 to 0.3 s), so the sequential scan is turned off for this
  // one query, inside its transaction. The candidates are small, and handed back as a list.
  const rows = await db.transaction().execute(async (trx) => {
    await sql`set local enable_seqscan = off`.execute(trx);
    const found = await sql<{ id: number; rank: number }>`select m.id, (-ts_rank(m.search, ${query}))::float8 as rank from
      (select messages.id from messages where messages.search @@ ${query} and ${where}
        order by messages.id + 0 desc limit ${candidates}) as c join messages as m on m.id = c.id`.execute(trx);
    return found.rows;
  });
  if (rows.length === 0) return sql`(select 0 as id, 0::float8 as rank where false)`;
  return sql`(select * from (values ${sql.join(rows.map((r) => sql`(${r.id}::bigint, ${r.rank}::float8)`))}) as v (id, rank))`;
}

/** PostgreSQL's two plans of a search: walk the primary key newest first, or match through the GIN index. */
export type SearchPlan = 'walk' | 'gin';

/** The planner's estimates a plan is chosen by: rows passing the filters, and of them rows matching; a field term in the query. */
export interface SearchEstimates {
  readonly filtered: number;
  readonly matching: number;
  readonly fielded: boolean;
}

/** The plan that reads fewer rows (postgresHits says why). */
export function searchPlan(e: SearchEstimates, candidates: number): SearchPlan {
  const matching = Math.max(1, e.fielded ? e.matching * FIELD_SELECTIVITY : e.matching);
  const walked = Math.min(e.filtered, (candidates * e.filtered) / matching);
  return walked <= e.matching ? 'walk' : 'gin';
}

/** The planner's estimate of how many rows a query returns (EXPLAIN: planned, not run). */
async function estimate(db: Kysely<any>, query: RawBuilder<unknown>): Promise<number> {
  const { rows } = await sql<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>`explain (format json) ${query}`.execute(db);
  return rows[0]!['QUERY PLAN'][0]!.Plan['Plan Rows'];
}
