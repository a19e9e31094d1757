import type { Command } from 'commander';
import { createSecureContext } from 'node:tls';
import { parsePop3Url, Pop3Client, schemePortWarning, type Pop3ClientOptions, type Pop3Url } from 'popwire';
import { wholeNumber, type NumberArgument } from './arguments.js';
import { UsageError } from './failure.js';
import { writeBytes, writeReport, writeRows, type CommandOutput } from './output.js';
import { readPassword, readToken } from './password.js';
import { addSessionOptions, connectOptions, type SessionOptions } from './session-options.js';

/** Adds one command to the program: what each module under commands/ exports. */
export type CommandRegistration = (program: Command) => void;

/**
 * A command that does one thing in one POP3 session. It declares its arguments and does its
 * work on a connected client; connecting, logging in, output and QUIT are the same for all of them.
 */
export interface SessionCommandSpec<Name extends string> {
  readonly name: string;
  readonly description: string;
  /** Whole-number arguments before the URL, in order: `top N LINES URL`. */
  readonly numbers?: readonly NumberArgument<Name>[];
  /** False only for commands that also work before login (`capa` without a user in the URL). */
  readonly needsLogin: boolean;
  /** `json`: --json was given; a command whose output is bytes then reports them in JSON instead. */
  run(client: Pop3Client, numbers: Readonly<Record<Name, number>>, context: { readonly json: boolean }): Promise<CommandOutput>;
}

export const URL_DESCRIPTION = 'pop3://[USER@]HOST[:PORT] (port 110, STLS) or pop3s://[USER@]HOST[:PORT] (TLS, port 995)';

export function sessionCommand<Name extends string = never>(spec: SessionCommandSpec<Name>): CommandRegistration {
  const numbers = spec.numbers ?? [];
  return (program) => {
    const command = program.command(spec.name).description(spec.description);
    for (const { name, description, min } of numbers) command.argument(`<${name}>`, description, wholeNumber(min));
    command.argument('<url>', URL_DESCRIPTION);
    addSessionOptions(command);
    command.action(async () => {
      // Commander has checked the count and parsed each number: the numbers in order, then the URL.
      const values: readonly unknown[] = command.processedArgs;
      const named = Object.fromEntries(numbers.map(({ name }, index) => [name, values[index]])) as Record<Name, number>;
      await runSession(spec, String(values[numbers.length]), named, command.opts<SessionOptions>());
    });
  };
}

async function runSession<Name extends string>(
  spec: SessionCommandSpec<Name>,
  url: string,
  numbers: Record<Name, number>,
  options: SessionOptions,
): Promise<void> {
  const rest = await prepareSession(spec, url, options);
  const connecting = Pop3Client.connect(url, rest);
  setImmediate(warmTls);
  // On any failure, disposal still sends QUIT (or closes, if the connection is gone).
  await using client = await connecting;
  const output = await spec.run(client, numbers, { json: options.json === true });
  if (output.kind === 'bytes') await writeBytes(output.body);
  // QUIT explicitly rather than by disposal, which swallows errors: a -ERR here means that
  // deletions were not applied (RFC 1939 section 6), and the user must hear about it.
  await client.quit();
  // A report waits for QUIT's +OK: for `dele`, that is the proof the message is gone.
  if (output.kind === 'report') await writeReport(output, options.json === true);
  else if (output.kind === 'rows') await writeRows(output, options.json === true);
}

/**
 * What Pop3Client.connect(url, ...) needs besides the URL, password included. Everything that can
 * be wrong with the command line is found here, before connecting; the password is asked for
 * here too, so that no connection idles towards a timeout while the user types.
 */
export async function prepareSession(
  command: { readonly name: string; readonly needsLogin: boolean },
  url: string,
  options: SessionOptions,
): Promise<Partial<Pop3ClientOptions>> {
  const target = parsePop3Url(url);
  const connect = await connectOptions(options);
  // At once, before any prompt or timeout: the mistake is in the URL, where the user is looking.
  const warning = schemePortWarning(target);
  if (warning !== undefined) process.stderr.write(`popwire: warning: ${warning}\n`);
  if (target.user === undefined) {
    if (command.needsLogin) {
      throw new UsageError(`${command.name} needs a login: put the user in the URL, as in pop3://USER@HOST`);
    }
    return connect;
  }
  // A bearer token (XOAUTH2 / OAUTHBEARER) replaces the password; the URL's ;AUTH= is the library's.
  if (options.oauthTokenFile !== undefined) return { ...connect, accessToken: await readToken(options.oauthTokenFile) };
  return { ...connect, password: await readPassword(target.user, target.host, options.passwordFile) };
}

let tlsWarmed = false;

/**
 * The first TLS context a process makes costs about 25 ms of CPU: Node initialises OpenSSL and
 * parses its 140 root certificates (where NODE_EXTRA_CA_CERTS is set, Node did both as it
 * started, and this costs 2 to 3 ms). Made here, once, just after the connection is started, that
 * work runs while the TCP handshake and the server's greeting are on their way, instead of after
 * STLS's +OK; the library's own context for the session then finds both done. A session that
 * ends up in clear text (`--allow-plaintext` to a server without STLS) has spent it for nothing.
 */
export function warmTls(): void {
  if (tlsWarmed) return;
  tlsWarmed = true;
  createSecureContext();
}
