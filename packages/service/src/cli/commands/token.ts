import { InvalidArgumentError } from 'commander';
import type { Store } from '../../store/store.js';
import type { Scope, TokenView } from '../../store/tokens.js';
import { wholeNumber } from '../arguments.js';
import { report, writeReport } from '../output.js';
import type { CommandRegistration } from '../session-command.js';
import { addStoreOption, openStore, type StoreOptions } from '../store-option.js';
import { CommandFailure, ExitCode, UsageError } from '../failure.js';

/** The same list as store/tokens.ts, here so that `popwire --help` does not load the store. */
const SCOPE_NAMES: readonly Scope[] = ['admin', 'read', 'write', 'metrics'];

interface CreateOptions extends StoreOptions {
  readonly name: string;
  readonly scope: readonly Scope[];
  readonly account?: readonly string[];
  readonly expires?: number;
  readonly json?: boolean;
}

/**
 * `popwire token create|list|revoke`: the bearer tokens of the HTTP API. A token is printed
 * once, when it is made; the store keeps only its SHA-256.
 */
export const token: CommandRegistration = (program) => {
  const group = program.command('token').description('Make, list and revoke the bearer tokens of the HTTP API');

  const create = group
    .command('create')
    .description('Make a token and print it (only now: the store keeps its hash)')
    .option('--name <name>', 'what the token is for', 'api')
    .option('--scope <scopes>', `what it may do, comma separated: ${SCOPE_NAMES.join(', ')} (admin is everything)`, parseScopes, ['admin'] as Scope[])
    .option('--account <key...>', 'restrict it to these accounts (key user@host:port, or id); others are "not found" to it')
    .option('--expires <when>', 'refuse it after this long (90d, 12h, 30m, 2w) or this date (2027-03-01)', parseExpiry)
    .option('--json', 'print {"id", "token", "name"}');
  addStoreOption(create);
  create.action(async () => {
    const options = create.opts<CreateOptions>();
    await using opened = await openStore(options, 'create');
    const accounts = options.account === undefined ? undefined : await resolveAccounts(opened.store, options.account);
    const made = await opened.store.tokens.create(options.name, { scopes: options.scope, accounts, expiresAt: options.expires });
    await writeReport(report([made.token], { id: made.id, token: made.token, name: options.name }), options.json === true);
  });

  const list = group.command('list').description('List the tokens: scope, accounts, expiry, last use (never the tokens themselves)').option('--json', 'print JSON');
  addStoreOption(list);
  list.action(async () => {
    const options = list.opts<StoreOptions & { json?: boolean }>();
    await using opened = await openStore(options, 'existing');
    const tokens = await opened.store.tokens.list();
    const json = tokens.map((t) => ({ ...t, createdAt: iso(t.createdAt), expiresAt: t.expiresAt === null ? null : iso(t.expiresAt), lastUsedAt: t.lastUsedAt === null ? null : iso(t.lastUsedAt) }));
    await writeReport(report(tokens.map((t) => describe(t, Date.now())), json), options.json === true);
  });

  const revoke = group
    .command('revoke')
    .description('Revoke a token at once')
    .argument('<id>', 'the token, by the id token list shows', wholeNumber(1))
    .option('--json', 'print {"revoked": ID}');
  addStoreOption(revoke);
  revoke.action(async (id: number) => {
    const options = revoke.opts<StoreOptions & { json?: boolean }>();
    await using opened = await openStore(options, 'existing');
    if (!(await opened.store.tokens.revoke(id))) throw new CommandFailure(`no token has id ${id}`, ExitCode.usage);
    await writeReport(report([], { revoked: id }), options.json === true);
  });
};

function describe(t: TokenView, now: number): string {
  const accounts = t.accounts === 'all' ? 'all accounts' : t.accounts.length === 0 ? 'no account' : t.accounts.map((a) => a.key).join(',');
  const expiry = t.expiresAt === null ? 'never expires' : `${t.expiresAt <= now ? 'expired' : 'expires'} ${iso(t.expiresAt)}`;
  const use = t.lastUsedAt === null ? 'never used' : `last used ${iso(t.lastUsedAt)}`;
  return [t.id, t.name, t.scopes.join(','), accounts, expiry, use, `created ${iso(t.createdAt)}`].join('\t');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function parseScopes(text: string): Scope[] {
  const scopes = text.split(',').map((s) => s.trim().toLowerCase());
  const unknown = scopes.filter((s) => !(SCOPE_NAMES as readonly string[]).includes(s));
  if (scopes.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`Expected scopes from ${SCOPE_NAMES.join(', ')}, comma separated; not ${unknown.join(', ') || 'nothing'}.`);
  return scopes as Scope[];
}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `90d`, `12h`, `30m`, `2w` from now, or a date (`2027-03-01`, `2027-03-01T12:00:00Z`) in the future. */
export function parseExpiry(text: string, _previous?: unknown, now = Date.now()): number {
  const relative = /^(\d{1,6})([mhdw])$/.exec(text.trim());
  if (relative !== null) {
    const amount = Number(relative[1]);
    if (amount === 0) throw new InvalidArgumentError('Expected a time after now, not 0.');
    return now + amount * UNITS[relative[2]!]!;
  }
  const date = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim()) ? Date.parse(text.trim()) : Number.NaN;
  if (Number.isNaN(date)) throw new InvalidArgumentError('Expected a duration (90d, 12h, 30m, 2w) or a date (2027-03-01).');
  if (date <= now) throw new InvalidArgumentError(`Expected a time after now; ${new Date(date).toISOString()} is past.`);
  return date;
}

/** Account keys (or ids) to ids; one that names no account is the caller's mistake, named. */
async function resolveAccounts(store: Store, names: readonly string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const name of names) {
    const account = /^\d{1,15}$/.test(name) ? await store.accounts.get(Number(name)).catch(() => undefined) : await store.accounts.findByKey(name);
    if (account === undefined) throw new UsageError(`--account ${name}: no such account (name one by its key, user@host:port, or its id)`);
    ids.push(account.id);
  }
  return ids;
}
