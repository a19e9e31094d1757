/**
 * fetch's options for handing messages to the user's mail system (--mda, --lmtp, --smtp, --imap),
 * and what they become: the external destinations, opened before the POP3 session, and the
 * handOver transfer() calls for each message. See destinations/ for the destinations themselves.
 */
import type { Command } from 'commander';
import type { Readable } from 'node:stream';
import type { Delivery } from '../../delivery/delivery.js';
import { DestinationSpecError, type Destination, type MessageMeta } from '../../destinations/destination.js';
import type { DestinationSpec } from '../../destinations/spec.js';
import { wholeNumber } from '../arguments.js';
import { UsageError } from '../failure.js';
import { readOptionFile } from '../option-file.js';
import { readToken } from '../password.js';

export interface DeliveryOptions {
  readonly mda?: string;
  readonly mdaShell?: string;
  readonly mdaTimeout?: number;
  readonly lmtp?: string;
  readonly smtp?: string;
  readonly imap?: string;
  readonly imapPasswordFile?: string;
  readonly imapOauthTokenFile?: string;
  readonly imapSeen?: boolean;
  readonly to?: string;
  readonly from?: string;
  /** Commander's reading of --no-uid-header: false when given. */
  readonly uidHeader?: boolean;
  readonly allowPlaintextDelivery?: boolean;
  readonly skipExisting?: boolean;
}

export function addDeliveryOptions(command: Command): void {
  command
    .option('--mda <command>', 'run COMMAND ARGS for each message, the message on stdin, without a shell; %F sender, %T recipient, %U UID, %% a percent sign')
    .option('--mda-shell <script>', 'run SCRIPT with /bin/sh -c for each message (no placeholders: use "$POPWIRE_SENDER", "$POPWIRE_RECIPIENT")')
    .option('--mda-timeout <ms>', 'milliseconds an MDA may run before it is killed (default 300000)', wholeNumber(1))
    .option('--lmtp <address>', 'deliver over LMTP to HOST[:PORT] (default port 24) or unix:/PATH')
    .option('--smtp <address>', 'hand over to the SMTP server HOST[:PORT] (default port 25; smtps:HOST[:PORT] for TLS from the start)')
    .option('--imap <url>', 'APPEND to an IMAP folder: imaps://USER@HOST/FOLDER (imap:// for STARTTLS)')
    .option('--imap-password-file <file>', 'the IMAP password in FILE (else POPWIRE_IMAP_PASSWORD)')
    .option('--imap-oauth-token-file <file>', 'log in to IMAP with the OAuth 2.0 access token in FILE (XOAUTH2, for Gmail)')
    .option('--imap-seen', 'store the messages appended over IMAP as read (\\Seen)')
    .option('--to <address>', 'the envelope recipient for --lmtp, --smtp and --mda (%T; default: the POP3 user)')
    .option('--from <address>', 'the envelope sender, instead of the Return-Path header (empty: <>)')
    .option('--no-uid-header', 'do not prepend X-Popwire-UID: UIDL to messages handed to --mda, --lmtp, --smtp, --imap')
    .option('--allow-plaintext-delivery', 'hand messages to a non-loopback LMTP, SMTP or IMAP server without TLS')
    .option('--skip-existing', 'for popwire sync only: fetch remembers nothing between runs');
}

/** The external destinations the options ask for, parsed (before anything connects). */
export async function externalSpecs(options: DeliveryOptions): Promise<DestinationSpec[]> {
  const { parseDestination: parseSpec } = await import('../../destinations/spec.js');
  if (options.skipExisting === true) {
    throw new UsageError(
      '--skip-existing needs memory of what was seen, and fetch keeps none between runs: use popwire sync --skip-existing, whose store remembers every UID',
    );
  }
  const texts: Array<[string, string | undefined]> = [
    ['--mda', options.mda === undefined ? undefined : `mda:${options.mda}`],
    ['--mda-shell', options.mdaShell === undefined ? undefined : `mda-shell:${options.mdaShell}`],
    ['--lmtp', options.lmtp === undefined ? undefined : `lmtp:${options.lmtp}`],
    ['--smtp', options.smtp === undefined ? undefined : /^smtps?:/i.test(options.smtp) ? options.smtp : `smtp:${options.smtp}`],
    ['--imap', options.imap],
  ];
  if (options.mda !== undefined && options.mdaShell !== undefined) throw new UsageError('Give --mda or --mda-shell, not both');
  const specs: DestinationSpec[] = [];
  for (const [option, text] of texts) {
    if (text === undefined) continue;
    try {
      specs.push(parseSpec(text));
    } catch (error) {
      if (error instanceof DestinationSpecError) throw new UsageError(`${option}: ${error.message}`);
      throw error;
    }
  }
  if (options.imap === undefined && (options.imapPasswordFile !== undefined || options.imapOauthTokenFile !== undefined || options.imapSeen === true)) {
    throw new UsageError('--imap-password-file, --imap-oauth-token-file and --imap-seen are for --imap');
  }
  if (options.mdaTimeout !== undefined && options.mda === undefined && options.mdaShell === undefined) throw new UsageError('--mda-timeout is for --mda and --mda-shell');
  if (specs.length === 0 && (options.to !== undefined || options.from !== undefined || options.uidHeader === false || options.allowPlaintextDelivery === true)) {
    throw new UsageError('--to, --from, --no-uid-header and --allow-plaintext-delivery are for --mda, --lmtp, --smtp and --imap');
  }
  for (const [option, value] of [['--to', options.to], ['--from', options.from]] as const) {
    if (value !== undefined && !/^[\x21-\x7e]*$/.test(value)) throw new UsageError(`${option} must be one address, printable ASCII without spaces`);
  }
  if (options.to === '') throw new UsageError('--to cannot be empty');
  return specs;
}

export interface ExternalContext {
  readonly pop3User: string;
  readonly ca: Buffer | undefined;
  readonly insecure: boolean;
  readonly timeoutMs: number | undefined;
  readonly signal: AbortSignal;
  readonly onNote: (line: string) => void;
}

/** Makes and opens the destinations, in the order given; if one cannot be opened, none stays open. */
export async function openExternal(specs: readonly DestinationSpec[], options: DeliveryOptions, context: ExternalContext): Promise<Destination[]> {
  const { createDestination } = await import('../../destinations/index.js');
  const { openAll } = await import('../../destinations/fanout.js');
  const destinations: Destination[] = [];
  for (const spec of specs) {
    const auth = spec.kind === 'imap' ? await imapCredentials(spec.user, options) : undefined;
    destinations.push(
      await createDestination(spec, {
        tls: { ca: context.ca, insecure: context.insecure, allowPlaintext: options.allowPlaintextDelivery === true },
        auth,
        timeoutMs: spec.kind === 'mda' ? options.mdaTimeout : context.timeoutMs,
        seen: options.imapSeen === true,
        onNote: context.onNote,
      }),
    );
  }
  await openAll(destinations, context.signal);
  return destinations;
}

async function imapCredentials(user: string, options: DeliveryOptions): Promise<{ user: string; password?: string; accessToken?: string }> {
  if (options.imapOauthTokenFile !== undefined) return { user, accessToken: await readToken(options.imapOauthTokenFile) };
  if (options.imapPasswordFile !== undefined) {
    const password = (await readOptionFile('--imap-password-file', options.imapPasswordFile)).toString('utf8').replace(/\r?\n$/, '');
    if (password === '') throw new UsageError(`The file given to --imap-password-file is empty: ${options.imapPasswordFile}`);
    return { user, password };
  }
  const fromEnvironment = process.env.POPWIRE_IMAP_PASSWORD;
  if (fromEnvironment) return { user, password: fromEnvironment };
  throw new UsageError(`No IMAP password for ${user}: pass --imap-password-file FILE, --imap-oauth-token-file FILE, or set POPWIRE_IMAP_PASSWORD`);
}

/**
 * What transfer() calls with each whole message: the X-Popwire-UID line (unless --no-uid-header),
 * the envelope (sender from --from or Return-Path, recipient from --to or the POP3 user), then
 * every destination in order; delivered when all accepted.
 */
export async function makeHandOver(
  destinations: readonly Destination[],
  options: DeliveryOptions,
  context: { readonly pop3User: string; readonly uids: ReadonlyMap<number, string> },
): Promise<(n: number, message: Buffer) => Promise<void>> {
  const { envelopeSender, messageDate, withUidHeader } = await import('../../destinations/message.js');
  const { deliverToAll } = await import('../../destinations/fanout.js');
  const recipient = options.to ?? context.pop3User;
  return async (n, original) => {
    const uid = context.uids.get(n);
    const message = options.uidHeader === false ? original : withUidHeader(original, uid);
    const meta: MessageMeta = {
      uid,
      n,
      size: message.length,
      envelope: { sender: options.from ?? envelopeSender(original), recipient },
      date: messageDate(original),
    };
    await deliverToAll(destinations, message, meta);
  };
}

/**
 * The local delivery when there is none: every message is already with the external
 * destinations, which accepted it durably (LMTP/SMTP 250, IMAP OK, MDA exit 0).
 */
export function noLocalDelivery(): Delivery {
  return {
    durable: true,
    async deliver(_n: number, body: Readable) {
      body.resume();
    },
    async commit() {},
    async close() {},
    abandon() {},
  };
}
