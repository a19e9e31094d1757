import { searchTokens } from './search-text.js';

/**
 * popwire's search syntax, one for SQLite and PostgreSQL. Parsed here into terms, then written
 * out in each dialect's own query language (FTS5's MATCH string, PostgreSQL's tsquery) from the
 * tokens alone: the user's text never reaches either query language, let alone SQL, and both
 * strings are bound as parameters.
 *
 *   invoice march          both words (AND), in any field
 *   "quarterly report"     the words next to each other, in that order
 *   -newsletter            not this word (nor -"a phrase")
 *   repo*                  a word starting with `repo`
 *   from:alice             in the sender (name or address); also to:, subject:, body:
 *   from:"Alice Smith"     a phrase in one field
 *
 * Words are runs of letters and digits, matched in any case and without accents (`Café` finds
 * `cafe`); everything else separates them, so `alice@example.test` is the phrase
 * `alice example test`. At least one term must not be negated.
 */
export type SearchField = 'any' | 'from' | 'to' | 'subject' | 'body';

export interface SearchTerm {
  readonly field: SearchField;
  /** One token: a word; more: a phrase. */
  readonly tokens: readonly string[];
  /** The last token is a prefix (`repo*`). */
  readonly prefix: boolean;
  readonly negated: boolean;
}

export interface SearchQuery {
  readonly terms: readonly SearchTerm[];
}

/** Bad syntax, in words the caller can act on (the API answers 400 with it). */
export class SearchSyntaxError extends Error {
  readonly code = 'SEARCH_INVALID_QUERY';
  constructor(message: string) {
    super(message);
    this.name = 'SearchSyntaxError';
  }
}

/** A query longer than this is refused: each term costs a join in the index. */
export const MAX_QUERY_LENGTH = 500;
export const MAX_TERMS = 16;

const FIELDS: Record<string, SearchField> = { from: 'from', to: 'to', subject: 'subject', body: 'body' };

export function parseSearch(text: string): SearchQuery {
  if (text.length > MAX_QUERY_LENGTH) throw new SearchSyntaxError(`the search is longer than ${MAX_QUERY_LENGTH} characters`);
  const terms: SearchTerm[] = [];
  let i = 0;
  while (i < text.length) {
    if (/\s/.test(text[i]!)) {
      i++;
      continue;
    }
    const start = i;
    let negated = false;
    if (text[i] === '-') {
      negated = true;
      i++;
    }
    let field: SearchField = 'any';
    const named = /^([a-z]+):/i.exec(text.slice(i));
    if (named !== null && FIELDS[named[1]!.toLowerCase()] !== undefined) {
      field = FIELDS[named[1]!.toLowerCase()]!;
      i += named[0].length;
    }
    let raw: string;
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new SearchSyntaxError(`the quote opened at character ${i + 1} is not closed`);
      raw = text.slice(i + 1, end);
      i = end + 1;
    } else {
      const end = text.slice(i).search(/[\s"]/);
      raw = end < 0 ? text.slice(i) : text.slice(i, i + end);
      i = end < 0 ? text.length : i + end;
    }
    const prefix = raw.endsWith('*') || text[i] === '*';
    if (text[i] === '*') i++;
    if (i < text.length && !/\s/.test(text[i]!)) throw new SearchSyntaxError(`put a space after the term that starts at character ${start + 1}`);
    const tokens = searchTokens(raw).split(' ').filter((t) => t !== '');
    if (tokens.length === 0) {
      if (field !== 'any') throw new SearchSyntaxError(`${text.slice(start, i)} names a field but no word to find in it`);
      continue; // punctuation only: nothing a word could match
    }
    terms.push({ field, tokens, prefix, negated });
  }
  if (terms.length === 0) throw new SearchSyntaxError('the search has no word to find (words are letters and digits)');
  if (terms.length > MAX_TERMS) throw new SearchSyntaxError(`the search has more than ${MAX_TERMS} terms`);
  if (terms.every((t) => t.negated)) throw new SearchSyntaxError('the search has only excluded terms (-word): add a word to find');
  return { terms };
}

/** FTS5 column names of the index (migration 0007): subject, sender, recipients, body. */
const FTS_COLUMN: Record<Exclude<SearchField, 'any'>, string> = { from: 'sender', to: 'recipients', subject: 'subject', body: 'body' };

/**
 * The FTS5 MATCH string. Each token is quoted; tokens are letters and digits only, so a quote
 * cannot occur in one. Negations follow as `NOT`, which FTS5 reads as a binary operator.
 */
export function toFts5(query: SearchQuery): string {
  const term = (t: SearchTerm) => {
    const phrase = `"${t.tokens.join(' ')}"${t.prefix ? ' *' : ''}`;
    return t.field === 'any' ? phrase : `{${FTS_COLUMN[t.field]}} : ${phrase}`;
  };
  let out = `(${query.terms.filter((t) => !t.negated).map(term).join(' AND ')})`;
  for (const t of query.terms.filter((t) => t.negated)) out = `(${out} NOT ${term(t)})`;
  return out;
}

/** tsvector weights of the fields (store/search-text.ts writes the vector with the same ones). */
const TS_WEIGHT: Record<Exclude<SearchField, 'any'>, string> = { subject: 'A', from: 'B', to: 'C', body: 'D' };

/** PostgreSQL's to_tsquery('simple', …) text: `&` between terms, `<->` inside a phrase, `!` for negation, `:*` for a prefix, `:B` for a field. */
export function toTsquery(query: SearchQuery): string {
  return query.terms
    .map((t) => {
      const weight = t.field === 'any' ? '' : TS_WEIGHT[t.field];
      const lexemes = t.tokens.map((token, n) => {
        const prefix = t.prefix && n === t.tokens.length - 1 ? '*' : '';
        return prefix + weight === '' ? `'${token}'` : `'${token}':${prefix}${weight}`;
      });
      const joined = lexemes.length === 1 ? lexemes[0]! : `(${lexemes.join(' <-> ')})`;
      return t.negated ? `!${joined}` : joined;
    })
    .join(' & ');
}
