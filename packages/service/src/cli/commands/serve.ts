import { once } from 'node:events';
import type { CommandRegistration } from '../session-command.js';

interface ServeOptions {
  readonly config?: string;
  readonly store?: string;
  readonly host?: string;
  readonly port?: string;
  readonly init?: boolean;
}

/**
 * `popwire serve`: the HTTP API and the background syncs in this process, on the embedded
 * SQLite store unless the configuration names PostgreSQL. Runs until SIGTERM or SIGINT, then
 * shuts down cleanly (running syncs get sync.shutdownGrace to finish); a second signal exits
 * at once, which the sync promise also survives.
 */
export const serve: CommandRegistration = (program) => {
  program
    .command('serve')
    .description('Run the HTTP API and the background syncs of every account (see the README: popwire serve)')
    .option('--config <file>', 'a JSON configuration file (default: $POPWIRE_CONFIG); POPWIRE_* variables override it, and these options override both')
    .option('--store <path>', 'the store: a folder (SQLite) or a postgres:// URL (default: $POPWIRE_STORE, else the file\'s "store", else ./popwire-data)')
    .option('--host <address>', 'the address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'the port to listen on (default 8080; 0: any free port)')
    .option('--init', 'make a new store (and, with SQLite and no key given, a secret key) if none is there; without it a missing store is refused')
    .action(async (options: ServeOptions) => {
      // Loaded here: the service's modules (Fastify, the store) cost start-up time the POP3 commands need not pay.
      const { loadConfig } = await import('../../config.js');
      const { startService } = await import('../../serve.js');
      const config = loadConfig({
        file: options.config ?? (process.env.POPWIRE_CONFIG || undefined),
        flags: { store: options.store, host: options.host, port: options.port },
      });
      const service = await startService(config, { init: options.init === true, notify: (line) => process.stderr.write(`popwire serve: ${line}\n`) });
      const { describeLocation } = await import('../../store/database.js');
      // The store named: a wrong POPWIRE_STORE shows here, not as a 401 for every token.
      process.stderr.write(`popwire serve: listening on ${service.url} (store ${describeLocation(service.store.location)}); the console is at ${service.url}/, sign in with an API token\n`);
      const signal = await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
      void signal;
      const exitNow = () => process.exit(130);
      process.once('SIGTERM', exitNow);
      process.once('SIGINT', exitNow);
      await service.close();
    });
};
