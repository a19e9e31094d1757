import { once } from 'node:events';
import type { CommandRegistration } from '../session-command.js';

interface ServeOptions {
  readonly config?: string;
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
    .option('--config <file>', 'a JSON configuration file (default: $POPWIRE_CONFIG); POPWIRE_* variables override it')
    .action(async (options: ServeOptions) => {
      // Loaded here: the service's modules (Fastify, the store) cost start-up time the POP3 commands need not pay.
      const { loadConfig } = await import('../../config.js');
      const { startService } = await import('../../serve.js');
      const config = loadConfig({ file: options.config ?? (process.env.POPWIRE_CONFIG || undefined) });
      const service = await startService(config);
      process.stderr.write(`popwire serve: listening on ${service.url}\n`);
      const signal = await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
      void signal;
      const exitNow = () => process.exit(130);
      process.once('SIGTERM', exitNow);
      process.once('SIGINT', exitNow);
      await service.close();
    });
};
