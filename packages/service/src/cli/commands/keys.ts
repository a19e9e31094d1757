import { report, writeReport } from '../output.js';
import type { CommandRegistration } from '../session-command.js';

interface KeysOptions {
  readonly config?: string;
  readonly json?: boolean;
}

/**
 * `popwire keys generate|rotate|forget`: the key ring that seals stored credentials. To rotate: put a
 * new key first and keep the old one after it (POPWIRE_SECRET_KEY="NEW,OLD", or two lines in the
 * key file), run `popwire keys rotate`, then drop the old key.
 */
export const keys: CommandRegistration = (program) => {
  const group = program.command('keys').description('Make a secret key, or re-seal stored credentials with the current one');

  group
    .command('generate')
    .description('Print a new random 256-bit key (base64), for POPWIRE_SECRET_KEY or a key file')
    .option('--json', 'print {"key"}')
    .action(async (options: KeysOptions) => {
      const { generateKey } = await import('../../accounts/secrets.js');
      const key = generateKey();
      await writeReport(report([key], { key }), options.json === true);
    });

  group
    .command('rotate')
    .description('Re-seal every stored secret with the first key of the ring (the others only open)')
    .option('--config <file>', 'the configuration file popwire serve uses (default: $POPWIRE_CONFIG)')
    .option('--json', 'print {"resealed", "keyId"} on stdout')
    .action(async (options: KeysOptions) => {
      const { AccountService } = await import('../../accounts/service.js');
      await using opened = await openWithKeyRing(options);
      const { store, box } = opened;
      const count = await new AccountService(store, box).rotateKeys();
      if (options.json === true) await writeReport(report([], { resealed: count, keyId: box.currentKeyId }), true);
      else process.stderr.write(`popwire keys rotate: ${count} secret(s) re-sealed with key ${box.currentKeyId}\n`);
    });
  group
    .command('forget')
    .description('Drop the secrets sealed with a key that is lost for good; those accounts wait for new credentials')
    .argument('<key-id...>', 'the key ids popwire serve named as missing')
    .option('--config <file>', 'the configuration file popwire serve uses (default: $POPWIRE_CONFIG)')
    .option('--json', 'print {"forgotten": [{"accountId", "credentials", "webhook"}]} on stdout')
    .action(async (keyIds: string[], options: KeysOptions) => {
      const { forgetLostKeys } = await import('../../accounts/key-check.js');
      await using opened = await openWithKeyRing(options);
      const { store, box } = opened;
      const forgotten = await forgetLostKeys(store, box, keyIds);
      const lines = forgotten.map(
        ({ accountId, credentials, webhook }) =>
          `account ${accountId}: ${[credentials ? 'credentials dropped, needs new ones' : undefined, webhook ? 'webhook dropped' : undefined].filter(Boolean).join(', ')}`,
      );
      if (options.json === true) await writeReport(report([], { forgotten: forgotten.map((entry) => ({ ...entry })) }), true);
      else process.stderr.write(`popwire keys forget: ${forgotten.length} account(s) changed\n${lines.map((line) => `  ${line}\n`).join('')}`);
    });
};

/**
 * The store and key ring `popwire serve` would use with this configuration. The store must
 * exist already: a mistyped location is not a reason to make a new, empty one.
 */
async function openWithKeyRing(options: KeysOptions) {
  const { loadConfig } = await import('../../config.js');
  const { SecretBox } = await import('../../accounts/secrets.js');
  const { resolveKeyRing } = await import('../../serve.js');
  const { parseStoreLocation } = await import('../../store/database.js');
  const { Store } = await import('../../store/store.js');
  const config = loadConfig({ file: options.config ?? (process.env.POPWIRE_CONFIG || undefined) });
  const location = parseStoreLocation(config.store);
  const store = await Store.open(location, { create: false });
  return { store, box: new SecretBox(resolveKeyRing(config, location, process.env)), [Symbol.asyncDispose]: () => store.close() };
}
