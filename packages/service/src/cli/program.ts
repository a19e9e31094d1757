import { createRequire } from 'node:module';
import { Command } from 'commander';
import type { CommandRegistration } from './session-command.js';

/**
 * Every command, in the order `popwire --help` lists them (one session each, then the mailbox
 * whole, then the store, then the service), each with the module that adds it to the program.
 * A module is loaded only for the command that runs: `popwire capa` never reads the store's code,
 * nor `popwire sync` the HTTP service's. In the bundle (scripts/build.mjs) each is a chunk.
 */
const COMMANDS: ReadonlyArray<readonly [name: string, load: () => Promise<CommandRegistration>]> = [
  ['capa', async () => (await import('./commands/capa.js')).capa],
  ['stat', async () => (await import('./commands/stat.js')).stat],
  ['list', async () => (await import('./commands/list.js')).list],
  ['uidl', async () => (await import('./commands/uidl.js')).uidl],
  ['retr', async () => (await import('./commands/retr.js')).retr],
  ['top', async () => (await import('./commands/top.js')).top],
  ['dele', async () => (await import('./commands/dele.js')).dele],
  ['test', async () => (await import('./commands/test.js')).test],
  ['fetch', async () => (await import('./commands/fetch.js')).fetch],
  ['sync', async () => (await import('./commands/sync.js')).sync],
  ['messages', async () => (await import('./commands/messages.js')).messages],
  ['show', async () => (await import('./commands/show.js')).show],
  ['export', async () => (await import('./commands/export.js')).exportMessage],
  ['serve', async () => (await import('./commands/serve.js')).serve],
  ['token', async () => (await import('./commands/token.js')).token],
  ['keys', async () => (await import('./commands/keys.js')).keys],
];

/**
 * A fresh program per run (commander keeps parsed values on the command objects), holding the
 * commands that `args` (process.argv without node and the script) can reach: the one it names,
 * or every one when it names none or one that does not exist, so that `popwire --help` lists
 * them all and a misspelt command gets commander's own "did you mean" answer.
 */
export async function buildProgram(args: readonly string[]): Promise<Command> {
  const program = new Command('popwire')
    .description('Talk to a POP3 server (one command, one session, ended with QUIT), sync a mailbox into a local store and read it, or run the sync service (serve).')
    // Set before the commands are added: program.command() copies these settings to each.
    .exitOverride()
    // main() prints every failure, commander's own included, as one "popwire: ..." line.
    .configureOutput({ outputError: () => undefined })
    .version(versions(), '-V, --version', 'print the versions of popwire-service, the popwire library and Node.js');
  for (const [name, load] of commandsFor(args)) {
    const register = await load();
    register(program);
    // The table's name must be the name the module gives its command, or `popwire NAME` would load one module and run another.
    if (program.commands.at(-1)?.name() !== name) throw new Error(`popwire: the module loaded for "${name}" added "${program.commands.at(-1)?.name()}"`);
  }
  return program;
}

/**
 * The commands `args` can reach, read the way commander will read them: the program's own
 * options (-V, -h: none takes a value) come before the first operand, which names the command;
 * `help NAME` asks for that command's help. `popwire --version` alone needs none.
 */
function commandsFor(args: readonly string[]): typeof COMMANDS {
  const operands = args.filter((arg, i) => !arg.startsWith('-') || args.slice(0, i).includes('--'));
  if (operands.length === 0 && args.some((arg) => arg === '-V' || arg === '--version') && !args.some((arg) => arg === '-h' || arg === '--help')) return [];
  const named = operands[0] === 'help' ? operands[1] : operands[0];
  const command = COMMANDS.find(([name]) => name === named);
  return command === undefined ? COMMANDS : [command];
}

/**
 * Set by scripts/build.mjs in the bundle: the versions it was built from. The bundle carries its
 * own copy of the library, which is the one that runs whatever release npm installed beside it.
 */
declare const POPWIRE_BUNDLED_VERSIONS: { readonly service: string; readonly library: string } | undefined;

/**
 * Both packages' versions: a bug report needs the library's too. Outside the bundle (tsc's
 * output, the tests' tsx), read from the installed package.json files, which are then what runs.
 */
function versions(): string {
  let running: { readonly service: string; readonly library: string };
  if (typeof POPWIRE_BUNDLED_VERSIONS === 'object') running = POPWIRE_BUNDLED_VERSIONS;
  else {
    const require = createRequire(import.meta.url);
    running = {
      service: (require('../../package.json') as { version: string }).version,
      library: (require('popwire/package.json') as { version: string }).version,
    };
  }
  return [`popwire-service ${running.service}`, `popwire ${running.library}`, `Node.js ${process.version}`].join('\n');
}
