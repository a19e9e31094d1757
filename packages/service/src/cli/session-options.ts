import type { Command } from 'commander';
import type { Pop3ClientOptions, TraceEvent } from 'popwire';
import { wholeNumber } from './arguments.js';
import { readOptionFile } from './option-file.js';

/** The options every session command takes, as commander hands them over. */
export interface SessionOptions {
  readonly passwordFile?: string;
  readonly oauthTokenFile?: string;
  readonly allowPlaintext?: boolean;
  readonly insecure?: boolean;
  readonly ca?: string;
  readonly timeout?: number;
  readonly deadline?: number;
  readonly json?: boolean;
  readonly trace?: boolean;
}

export function addSessionOptions(command: Command): void {
  command
    .option('--password-file <file>', 'read the password from FILE (one trailing newline is ignored)')
    .option('--oauth-token-file <file>', 'log in with the OAuth 2.0 access token in FILE (OAUTHBEARER or XOAUTH2)')
    .option(
      '--allow-plaintext',
      'log in without TLS if the server does not offer STLS (the password crosses the network readable)',
    )
    .option('--insecure', 'accept any TLS certificate (anyone on the path can then read the session)')
    .option('--ca <file>', 'also trust the CA certificate(s) in this PEM file')
    .option('--timeout <ms>', 'milliseconds to wait for the server at each step (default 30000)', wholeNumber(1))
    .option(
      '--deadline <ms>',
      'milliseconds the whole session may take, connect to QUIT (default: no limit); a server that drips a byte at a time fails with POP3_TIMEOUT',
      wholeNumber(1),
    )
    .option('--json', 'print the result as JSON; a failure as {"error": {"code", "message"}}')
    .option('--trace', 'print the protocol exchange to stderr, the password and every SASL line shown as ***');
}

/** What the options mean to Pop3Client.connect, apart from the password. */
export async function connectOptions(options: SessionOptions): Promise<Partial<Pop3ClientOptions>> {
  return {
    allowPlaintextAuth: options.allowPlaintext === true,
    insecure: options.insecure === true,
    ca: options.ca === undefined ? undefined : await readOptionFile('--ca', options.ca),
    timeout: options.timeout,
    deadline: options.deadline,
    trace: options.trace === true ? printTrace : undefined,
  };
}

/** The library has already replaced secrets with `***`. */
function printTrace(event: TraceEvent): void {
  process.stderr.write(`${event.direction === 'client' ? 'C' : 'S'}: ${event.line}\n`);
}
