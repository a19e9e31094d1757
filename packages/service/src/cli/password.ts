import { CommandFailure, signalExitCode, UsageError } from './failure.js';
import { readOptionFile } from './option-file.js';

/**
 * The password for `user`, from the first source that has one: --password-file (named on this
 * command line, so it wins), $POPWIRE_PASSWORD, or a prompt when stdin is a terminal. Never from
 * an argument: arguments are visible to every user of the machine in the process list.
 */
export async function readPassword(user: string, host: string, passwordFile: string | undefined): Promise<string> {
  if (passwordFile !== undefined) {
    const password = (await readOptionFile('--password-file', passwordFile)).toString('utf8').replace(/\r?\n$/, '');
    if (password === '') throw new UsageError(`The file given to --password-file is empty: ${passwordFile}`);
    return password;
  }
  // An empty variable counts as unset: `POPWIRE_PASSWORD= popwire ...` is how one unsets it for a command.
  const fromEnvironment = process.env.POPWIRE_PASSWORD;
  if (fromEnvironment) return fromEnvironment;
  if (!process.stdin.isTTY) {
    throw new UsageError(
      `No password for ${user}: set POPWIRE_PASSWORD, pass --password-file FILE, or run popwire on a terminal to be asked`,
    );
  }
  // node:readline loads only for a prompt: about 1 ms of every other command's start.
  const { promptHidden } = await import('./prompt.js');
  const typed = await promptHidden(`Password for ${user}@${host}: `);
  // Ctrl-C is the user stopping popwire, as it would be anywhere else: 130, as the shell reports SIGINT.
  if (typed.kind === 'interrupted') throw new CommandFailure('Interrupted at the password prompt', signalExitCode('SIGINT'));
  if (typed.kind === 'closed' || typed.text === '') throw new UsageError(`No password entered for ${user}`);
  return typed.text;
}

/** An OAuth 2.0 access token from --oauth-token-file; a file, like the password, never argv. */
export async function readToken(file: string): Promise<string> {
  const token = (await readOptionFile('--oauth-token-file', file)).toString('utf8').trim();
  if (token === '') throw new UsageError(`The file given to --oauth-token-file is empty: ${file}`);
  return token;
}
