import { createRequire } from 'node:module';
import { Command } from 'commander';
import { capa } from './commands/capa.js';
import { dele } from './commands/dele.js';
import { exportMessage } from './commands/export.js';
import { fetch } from './commands/fetch.js';
import { keys } from './commands/keys.js';
import { list } from './commands/list.js';
import { messages } from './commands/messages.js';
import { retr } from './commands/retr.js';
import { serve } from './commands/serve.js';
import { show } from './commands/show.js';
import { stat } from './commands/stat.js';
import { sync } from './commands/sync.js';
import { test } from './commands/test.js';
import { token } from './commands/token.js';
import { top } from './commands/top.js';
import { uidl } from './commands/uidl.js';
import type { CommandRegistration } from './session-command.js';

/** In the order `popwire --help` lists them: one session each, then the mailbox whole, then the store, then the service. */
const COMMANDS: readonly CommandRegistration[] = [capa, stat, list, uidl, retr, top, dele, test, fetch, sync, messages, show, exportMessage, serve, token, keys];

/** A fresh program per run: commander keeps parsed values on the command objects. */
export function buildProgram(): Command {
  const program = new Command('popwire')
    .description('Talk to a POP3 server (one command, one session, ended with QUIT), sync a mailbox into a local store and read it, or run the sync service (serve).')
    // Set before the commands are added: program.command() copies these settings to each.
    .exitOverride()
    // main() prints every failure, commander's own included, as one "popwire: ..." line.
    .configureOutput({ outputError: () => undefined })
    .version(versions(), '-V, --version', 'print the versions of popwire-service, the popwire library and Node.js');
  for (const register of COMMANDS) register(program);
  return program;
}

/**
 * Both packages' versions: a bug report needs the library's too, and npm may have installed a
 * library release other than the one the service was built against. Read from the package.json
 * files that were installed, so that they cannot disagree with what is running.
 */
function versions(): string {
  const require = createRequire(import.meta.url);
  const service = require('../../package.json') as { version: string };
  const library = require('popwire/package.json') as { version: string };
  return [`popwire-service ${service.version}`, `popwire ${library.version}`, `Node.js ${process.version}`].join('\n');
}
