import { parsePop3Url, Pop3Client, Pop3ServerError } from 'popwire';
import { DeliveryError, type Delivery } from '../../delivery/delivery.js';
import type { Destination as ExternalDestination } from '../../destinations/destination.js';
import { openMaildir } from '../../delivery/maildir.js';
import { mboxOnStream, openMbox } from '../../delivery/mbox.js';
import { wholeNumber } from '../arguments.js';
import { CommandFailure, signalExitCode, UsageError } from '../failure.js';
import { addDeliveryOptions, externalSpecs, makeHandOver, noLocalDelivery, openExternal, type DeliveryOptions } from '../fetch/destinations.js';
import { handleInterrupts, type StopSignal } from '../fetch/interrupt.js';
import { parseMessageSet, selectMessages, type MessageRange } from '../fetch/message-set.js';
import { finish, type FetchSummary } from '../fetch/outcome.js';
import { createProgress, formatBytes } from '../fetch/progress.js';
import { transfer } from '../fetch/transfer.js';
import { report, writeReport } from '../output.js';
import { prepareSession, URL_DESCRIPTION, type CommandRegistration } from '../session-command.js';
import { addSessionOptions, type SessionOptions } from '../session-options.js';

interface FetchOptions extends SessionOptions, DeliveryOptions {
  readonly maildir?: string;
  readonly mbox?: string;
  readonly stdout?: boolean;
  readonly messages?: MessageRange[];
  readonly delete?: boolean;
  readonly lockTimeout?: number;
}

type Destination =
  | { readonly kind: 'maildir'; readonly dir: string }
  | { readonly kind: 'mbox'; readonly file: string; readonly lockTimeoutMs: number }
  | { readonly kind: 'stdout' }
  /** Only external destinations (--mda, --lmtp, --smtp, --imap). */
  | { readonly kind: 'none' };

const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

const HELP_AFTER = `
Each message is fetched once; nothing remembers what was fetched, so a second run fetches the
same messages again unless --delete removed them.

Local destinations (at most one; exactly one without a destination below):
  --maildir DIR  a file per message in DIR/new, written to DIR/tmp, synced, then renamed:
                 the bytes exactly as the server sent them (CRLF line endings)
  --mbox FILE    appended in mboxrd form: LF line endings (mbox is a Unix format, so CRLF
                 becomes LF), a "From " line before each message, and ">" added to each line
                 that starts with ">*From ". Locked with FILE.lock.
  --stdout       the same mboxrd form on stdout, unlocked and not fsynced

Handing over to your mail system (any number, with or without a local destination; a message
counts as delivered when every one accepted it):
  --mda 'CMD ARGS'  run CMD once per message, the message on stdin (LF line endings), no shell;
                    %F envelope sender, %T recipient, %U UIDL, %% a percent sign; also in the
                    environment: POPWIRE_SENDER, POPWIRE_RECIPIENT, POPWIRE_UID, POPWIRE_SIZE,
                    POPWIRE_MESSAGE_NUMBER. Exit 0 delivered, 75 (EX_TEMPFAIL) try again next run,
                    anything else refused. --mda-shell SCRIPT runs /bin/sh -c SCRIPT instead.
  --lmtp HOST[:PORT] | unix:/PATH, --smtp HOST[:PORT]: recipient --to (default the POP3 user),
                    sender --from or the Return-Path header, else <>. 4xx: try again next run;
                    5xx: refused, reported, never bounced.
  --imap imaps://USER@HOST/FOLDER: APPEND, the Date header as internal date.
Each gets an X-Popwire-UID: UIDL line on top (--no-uid-header to leave it out). A refused
message stays on the server and the others go on; a destination that cannot be reached stops
the run before anything it did not accept is deleted.

Files are fsynced in batches while the download goes on: each batch covers the messages
written since the last. With --delete, a message is marked deleted (DELE) only once its batch
is fsynced, and the server deletes the marked messages when the session ends (QUIT). Ctrl-C stops after the message
being written, then ends the session, so the messages delivered are deleted; a second Ctrl-C
exits at once, without QUIT, so the server deletes nothing. Either way, no message is lost.

A progress bar is shown on stderr when it is a terminal, then one summary line on stdout
(none with --stdout). --json prints {"messages", "bytes", "deleted", "seconds"} instead (bytes:
octets as retrieved), and a failure as {"error": {"code", "message"}}.

Exit codes: 0 done, 2 usage, 3 connection, 4 login, 5 server (a message the server could not
give or delete: the rest were fetched), 6 delivery (disk full, permissions, mbox locked, a
destination that cannot be reached, or refused a message for good: 5xx, an MDA's exit), 7
deferred (the server refused for now: [IN-USE], [LOGIN-DELAY], [SYS/TEMP]; or a destination
said "later" to some messages: 4xx, exit 75), 128 + the signal's number when interrupted (130
SIGINT, 143 SIGTERM, 129 SIGHUP).`;

export const fetch: CommandRegistration = (program) => {
  const command = program
    .command('fetch')
    .description('Download every message (or those --messages names) to a Maildir, an mbox, stdout, an MDA, LMTP, SMTP or IMAP')
    .argument('<url>', URL_DESCRIPTION)
    .option('--maildir <dir>', 'deliver into the Maildir DIR (created if missing), bytes as sent')
    .option('--mbox <file>', 'append to the mbox FILE (mboxrd; CRLF becomes LF), locked with FILE.lock')
    .option('--stdout', 'write an mbox (mboxrd; CRLF becomes LF) to stdout')
    .option('--messages <list>', 'only these message numbers and ranges, as in 1,5-9', parseMessageSet)
    .option('--delete', 'delete each message from the server once it is stored and fsynced (not with --stdout)')
    .option('--lock-timeout <ms>', `milliseconds to wait for another program's lock on the mbox (default ${DEFAULT_LOCK_TIMEOUT_MS})`, wholeNumber(0))
    .addHelpText('after', HELP_AFTER);
  addDeliveryOptions(command);
  addSessionOptions(command);
  command.action(async (url: string) => runFetch(url, command.opts<FetchOptions>()));
};

async function runFetch(url: string, options: FetchOptions): Promise<void> {
  const specs = await externalSpecs(options);
  const destination = destinationOf(options, specs.length > 0);
  const connectOptions = await prepareSession({ name: 'fetch', needsLogin: true }, url, options);
  // After the password prompt: the summary's seconds are popwire's, not the typist's.
  const started = performance.now();
  // --trace writes lines to stderr as they come; a bar redrawn over them would garble both.
  const progress = createProgress(process.stderr, { enabled: options.trace !== true });
  // Aborts what comes before the transfer (waiting for the mbox lock, connecting) at the first signal.
  const starting = new AbortController();
  let delivery: Delivery | undefined;
  let external: ExternalDestination[] = [];
  let client: Pop3Client | undefined;
  const interrupts = handleInterrupts({
    first(signal) {
      progress.stop();
      if (client === undefined) {
        starting.abort();
        note(`${signal}: stopping`);
      } else {
        note(firstSignalNote(signal, options.delete === true));
      }
    },
    now() {
      progress.stop();
      // No QUIT: the server forgets this session's deletions. Then no partial message stays behind.
      client?.close();
      delivery?.abandon();
    },
    exitCode: signalExitCode,
  });
  const interrupted = (): StopSignal | undefined => interrupts.signal;
  let failed = true;
  try {
    try {
      // Before connecting: a destination that cannot be written (or an mbox locked by another
      // program) is found without holding the server's maildrop lock meanwhile.
      delivery = await untilAborted(openDestination(destination, starting.signal), starting.signal);
      // The external destinations too: one that refuses connections stops the run before any RETR.
      if (specs.length > 0) {
        external = await untilAborted(
          openExternal(specs, options, {
            pop3User: pop3User(url),
            ca: connectOptions.ca === undefined ? undefined : Buffer.from(connectOptions.ca as string | Buffer),
            insecure: options.insecure === true,
            timeoutMs: options.timeout,
            signal: starting.signal,
            onNote: note,
          }),
          starting.signal,
        );
      }
      client = await Pop3Client.connect(url, { ...connectOptions, signal: starting.signal });
    } catch (error) {
      const signal = interrupted();
      if (signal !== undefined) throw new CommandFailure(`Interrupted by ${signal}; nothing was fetched`, signalExitCode(signal));
      throw error;
    }
    const selected = selectMessages(await client.list(), options.messages);
    const handOver = external.length === 0 ? undefined : await makeHandOver(external, options, { pop3User: pop3User(url), uids: await uidsFor(client, options) });
    progress.start(selected.length, selected.reduce((sum, { size }) => sum + size, 0));
    const session = client;
    let quitting: Promise<void> | undefined;
    const result = await transfer(
      client,
      selected.map(({ n }) => n),
      delivery,
      {
        delete: options.delete === true,
        shouldStop: () => interrupted() !== undefined,
        onBytes: (count) => progress.addBytes(count),
        onDelivered: () => progress.addMessage(),
        handOver,
        onAllSent: () => {
          if (session.state !== 'transaction') return;
          quitting = session.quit();
          // Awaited by finish(); until then a failure must not count as unhandled.
          quitting.catch(() => undefined);
        },
      },
    );
    progress.stop();
    const summary = await finish(
      client,
      result,
      { requested: selected.length, deleting: options.delete === true, interrupted: interrupted(), started },
      quitting,
    );
    // Without --json, one line for people; none with --stdout, whose stdout is the mbox.
    const line = destination.kind === 'stdout' ? [] : [summaryLine(summary, destination, external, options.delete === true)];
    await writeReport(report(line, { ...summary }), options.json === true);
    failed = false;
  } finally {
    progress.stop();
    client?.close();
    if (external.length > 0) await (await import('../../destinations/fanout.js')).closeAll(external);
    try {
      // Every message written is committed (fsynced) by now, or was not delivered: a failure to
      // close tells the user nothing more about their mail than the failure already on its way out.
      await delivery?.close().catch((error: unknown) => {
        if (!failed) throw error;
      });
    } finally {
      interrupts.dispose();
    }
  }
}

/**
 * At most one local destination (exactly one without an external one), and the options that only
 * make sense with some of them.
 */
function destinationOf(options: FetchOptions, hasExternal: boolean): Destination {
  const chosen = [options.maildir !== undefined, options.mbox !== undefined, options.stdout === true].filter(Boolean).length;
  if (chosen > 1 || (chosen === 0 && !hasExternal)) {
    throw new UsageError('fetch needs exactly one destination among --maildir DIR, --mbox FILE and --stdout, or at least one of --mda, --lmtp, --smtp and --imap');
  }
  if (options.lockTimeout !== undefined && options.mbox === undefined) {
    throw new UsageError('--lock-timeout is for --mbox only: a Maildir needs no lock, and stdout gets none');
  }
  if (options.maildir !== undefined) return { kind: 'maildir', dir: options.maildir };
  if (options.mbox !== undefined) {
    return { kind: 'mbox', file: options.mbox, lockTimeoutMs: options.lockTimeout ?? DEFAULT_LOCK_TIMEOUT_MS };
  }
  if (chosen === 0) return { kind: 'none' };
  if (options.delete === true) {
    // Deleting needs proof that the message is stored; a pipe's reader gives none.
    throw new UsageError(
      '--delete cannot be used with --stdout: popwire cannot know that whoever reads stdout stored the messages. Use --mbox FILE or --maildir DIR',
    );
  }
  if (options.json === true) {
    throw new UsageError('--json cannot be used with --stdout: stdout carries the mbox. Use --mbox FILE or --maildir DIR for a summary');
  }
  return { kind: 'stdout' };
}

async function openDestination(destination: Destination, signal: AbortSignal): Promise<Delivery> {
  try {
    switch (destination.kind) {
      case 'maildir':
        return await openMaildir(destination.dir);
      case 'mbox':
        return await openMbox(destination.file, { lockTimeoutMs: destination.lockTimeoutMs, signal, onLockWait: note });
      case 'stdout':
        return mboxOnStream(process.stdout);
      case 'none':
        return noLocalDelivery();
    }
  } catch (error) {
    if (error instanceof DeliveryError || signal.aborted) throw error;
    const what = destination.kind === 'maildir' ? `the Maildir ${destination.dir}` : `the mbox ${destination.kind === 'mbox' ? destination.file : ''}`;
    throw new DeliveryError(`Cannot deliver to ${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** "fetched 3 messages (12.3 KiB) into the Maildir ~/Mail in 0.42 s, 3 deleted from the server" */
function summaryLine(summary: FetchSummary, destination: Destination, external: readonly ExternalDestination[], deleting: boolean): string {
  const count = `${summary.messages} ${summary.messages === 1 ? 'message' : 'messages'}`;
  const local = destination.kind === 'maildir' ? `the Maildir ${destination.dir}` : destination.kind === 'mbox' ? `the mbox ${destination.file}` : destination.kind === 'stdout' ? 'stdout' : undefined;
  const where = [...external.map((each) => each.describe()), ...(local === undefined ? [] : [local])].join(' and ');
  const deleted = deleting ? `, ${summary.deleted} deleted from the server` : '';
  return `fetched ${count} (${formatBytes(summary.bytes)}) into ${where} in ${summary.seconds.toFixed(2)} s${deleted}`;
}

/**
 * The destination's opening, given up at the first signal: a file system call can hang (an NFS
 * mount gone away), and Ctrl-C must still end the command. The call itself is left behind.
 */
function untilAborted<T>(opening: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    opening.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function pop3User(url: string): string {
  return parsePop3Url(url).user ?? '';
}

/** n -> UIDL, for X-Popwire-UID; none when it is not wanted or the server has no UIDL. */
async function uidsFor(client: Pop3Client, options: FetchOptions): Promise<Map<number, string>> {
  if (options.uidHeader === false) return new Map();
  try {
    return new Map((await client.uidl()).map(({ n, uid }) => [n, uid]));
  } catch (error) {
    // A server without UIDL (RFC 1939 makes it optional): no header, and the message says so once.
    if (error instanceof Pop3ServerError && client.state === 'transaction') {
      note('the server has no UIDL: messages are handed over without X-Popwire-UID');
      return new Map();
    }
    throw error;
  }
}

function firstSignalNote(signal: StopSignal, deleting: boolean): string {
  const key = signal === 'SIGINT' ? 'Ctrl-C' : signal;
  return deleting
    ? `${signal}: stopping after the message being written, then ending the session so that the messages delivered are deleted (${key} again: quit at once, and the server deletes nothing)`
    : `${signal}: stopping after the message being written (${key} again: quit at once)`;
}

function note(line: string): void {
  process.stderr.write(`popwire: ${line}\n`);
}
