import { wholeNumber } from '../arguments.js';
import { report, writeReport } from '../output.js';
import type { CommandRegistration } from '../session-command.js';
import { addStoreOption, openStore, type StoreOptions } from '../store-option.js';
import { CommandFailure, ExitCode } from '../failure.js';

/**
 * `popwire token create|list|revoke`: the bearer tokens of the HTTP API. A token is printed
 * once, when it is made; the store keeps only its SHA-256.
 */
export const token: CommandRegistration = (program) => {
  const group = program.command('token').description('Make, list and revoke the bearer tokens of the HTTP API');

  const create = group
    .command('create')
    .description('Make a token and print it (only now: the store keeps its hash)')
    .option('--name <name>', 'what the token is for', 'api');
  addStoreOption(create);
  create.action(async () => {
    const options = create.opts<StoreOptions & { name: string }>();
    await using opened = await openStore(options, 'create');
    const made = await opened.store.tokens.create(options.name);
    process.stdout.write(`${made.token}\n`);
  });

  const list = group.command('list').description('List the tokens (never the tokens themselves)').option('--json', 'print JSON');
  addStoreOption(list);
  list.action(async () => {
    const options = list.opts<StoreOptions & { json?: boolean }>();
    await using opened = await openStore(options, 'existing');
    const tokens = await opened.store.tokens.list();
    const lines = tokens.map((t) => `${t.id}\t${t.name}\tcreated ${new Date(t.createdAt).toISOString()}\t${t.lastUsedAt === null ? 'never used' : `last used ${new Date(t.lastUsedAt).toISOString()}`}`);
    await writeReport(report(lines, tokens.map((t) => ({ ...t }))), options.json === true);
  });

  const revoke = group.command('revoke').description('Revoke a token at once').argument('<id>', 'the token, by the id token list shows', wholeNumber(1));
  addStoreOption(revoke);
  revoke.action(async (id: number) => {
    await using opened = await openStore(revoke.opts<StoreOptions>(), 'existing');
    if (!(await opened.store.tokens.revoke(id))) throw new CommandFailure(`no token has id ${id}`, ExitCode.usage);
  });
};
