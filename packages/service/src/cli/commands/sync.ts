import { Option } from 'commander';
import { Pop3Error, type RetryAttempt } from 'popwire';
import { SyncError } from '../../sync/errors.js';
import { wholeNumber } from '../arguments.js';
import { CommandFailure, failureOf, signalExitCode } from '../failure.js';
import { handleInterrupts, type StopSignal } from '../fetch/interrupt.js';
import { writeReport } from '../output.js';
import { prepareSession, URL_DESCRIPTION, type CommandRegistration } from '../session-command.js';
import { addSessionOptions, type SessionOptions } from '../session-options.js';
import { addStoreOption, openStore, type StoreOptions } from '../store-option.js';
import { accountFields, loginUrl, policyOf, type PolicyOptions } from '../sync/account.js';
import { connector } from '../sync/connect.js';
import { claimAccount } from '../sync/policy-owner.js';
import { describeSync, syncFailure } from '../sync/outcome.js';
import { createSyncProgress } from '../sync/progress.js';
import { addDeliveryOptions, type DeliveryOptions } from '../fetch/destinations.js';
import { openSyncDestinations, syncSpecs } from '../sync/destinations.js';

interface SyncOptions extends SessionOptions, StoreOptions, PolicyOptions, DeliveryOptions {
  readonly replacePolicy?: boolean;
}

const HELP_AFTER = `
Only new messages are retrieved: the store remembers each message's UID, so a run with nothing
new retrieves nothing. Each message is stored byte for byte with its UID, in one committed
transaction, and only then may it be deleted from the server (DELE, applied at QUIT). Without
--delete or --keep-days, nothing is deleted.

The store: --store PATH, else $POPWIRE_STORE, else ./popwire-data. A folder holds an SQLite
file (created if missing); a postgres://USER[:PASSWORD]@HOST[:PORT]/DB URL names a database
(its password is never printed). The account is user@host:port, from the URL: every sync of a
mailbox adds to the same account. popwire messages, show and export read the store.

One writer owns an account's policy. In the store of popwire serve, an account whose policy
was set through the API keeps it: without policy options a sync follows it (and says so); with
options that ask for another policy the sync is refused (exit 2) unless --replace-policy makes
them the account's policy, for popwire serve too.

Handing over to your mail system: the same options as popwire fetch (--mda, --mda-shell, --lmtp,
--smtp, --imap, with --to, --from, --no-uid-header...). The store commits each message first;
then every stored message a destination has not accepted yet is handed to it, and its answer
recorded per message and destination. A message is deleted from the server only once it is
stored AND every destination accepted it. A 4xx (or an MDA's exit 75) keeps it on the server,
and the next run hands it over again (exit 7); a 5xx keeps it too and is reported (exit 6),
never bounced; an unreachable destination stops the run before the POP3 session (exit 6).
A destination receives the messages stored from its first run on, not the store's history.
After a crash, the messages handed over since the last recorded batch (at most 100) are handed
over again: X-Popwire-UID lets the destination drop such a duplicate.

--skip-existing, on the account's first sync only: every message on the server now is recorded
as seen without being retrieved, so only mail that arrives later is stored and handed over.

Ctrl-C stops after the message being received: what was received is committed, deleted per
the policy, and the session ends with QUIT; popwire exits 130. A second Ctrl-C exits at once:
the server then deletes nothing, and the next sync goes on from what was committed.

A progress bar is shown on stderr when it is a terminal. --json prints the run's report:
{"status", "account", "store", "newMessages", "headersOnly", "alreadyHad", "deleted",
"skipped": [{"uid", "size"}], "bytes", "seconds", "sessions", "notes", "error", ...}.
Exit codes: 0 done, 2 usage, 3 connection, 4 login, 5 server, 7 deferred (the mailbox is in
use, the server asks to wait between logins, or another sync of this account is running: try
later), 8 store (cannot be opened or written), 130 interrupted.`;

export const sync: CommandRegistration = (program) => {
  const command = program
    .command('sync')
    .description('Store the new messages of a mailbox in the local store, each once; optionally delete them from the server')
    .argument('<url>', URL_DESCRIPTION);
  addStoreOption(command)
    .option('--delete', 'delete each message from the server once it is stored and committed')
    .option('--keep-days <days>', 'delete a stored message from the server once it was first seen DAYS ago (0: at once)', wholeNumber(0))
    .option('--max-size <bytes>', 'do not retrieve messages larger than BYTES (as LIST gives their size)', wholeNumber(1))
    .option('--replace-policy', "make this sync's policy the account's, even where it was set through the API (popwire serve follows it too)")
    .addOption(
      new Option('--oversize <what>', 'for messages over --max-size: skip them (the default), or store their headers only (TOP n 0)').choices(['skip', 'headers']),
    )
    .addHelpText('after', HELP_AFTER);
  addDeliveryOptions(command);
  // One definition of the options (fetch's); this one means something else here.
  const skipExisting = command.options.find((o) => o.long === '--skip-existing');
  if (skipExisting !== undefined) skipExisting.description = "on the account's first sync: record every message on the server as seen without retrieving it";
  addSessionOptions(command);
  command.action(async (url: string) => runSync(url, command.opts<SyncOptions>()));
};

async function runSync(url: string, options: SyncOptions): Promise<void> {
  const policy = policyOf(options);
  const specs = await syncSpecs(options);
  const connectOptions = await prepareSession({ name: 'sync', needsLogin: true }, url, options);
  await using opened = await openStore(options, 'create');
  const { store, where } = opened;
  // Loaded here for the same reason as the store (see store-option.ts).
  const { syncAccount } = await import('../../sync/run.js');
  const fields = accountFields(loginUrl(url), options, policy);
  const firstSync = (await store.accounts.findByKey(fields.key)) === undefined;
  const claimed = await claimAccount(store, fields, policy, options, Date.now());
  const account = claimed.account;
  if (claimed.note !== undefined) note(claimed.note);

  // --trace writes lines to stderr as they come; a bar redrawn over them would garble both.
  const progress = createSyncProgress(process.stderr, { enabled: options.trace !== true });
  const stop = new AbortController();
  const interrupts = handleInterrupts({
    first(signal) {
      progress.stop();
      note(firstSignalNote(signal));
      stop.abort();
    },
    now() {
      // No QUIT: the server forgets this session's deletions. Every commit is atomic, and the
      // account's lock names this process, which the next sync sees is gone.
      progress.stop();
    },
    exitCode: signalExitCode,
  });
  let destinations: Awaited<ReturnType<typeof openSyncDestinations>>;
  try {
    // Before the POP3 session: a destination that refuses connections stops the run with nothing retrieved.
    destinations = await openSyncDestinations(store, account.id, specs, options, {
      pop3User: fields.username,
      ca: connectOptions.ca === undefined ? undefined : Buffer.from(connectOptions.ca as string | Buffer),
      insecure: options.insecure === true,
      timeoutMs: options.timeout,
      signal: stop.signal,
      onNote: note,
    });
    const result = await syncAccount({
      store,
      accountId: account.id,
      connect: connector(url, connectOptions, { stop: stop.signal, onAttempt: (attempt) => retryNote(attempt, progress.stop) }),
      policy: claimed.policy,
      stop: stop.signal,
      onProgress: (event) => progress.update(event),
      destinations,
      // Not given: the account's own setting (an API account's skipExisting).
      skipExisting: options.skipExisting === true ? true : undefined,
    });
    // A first sync that never reached the server (refused, unreachable, TLS, timeout, Ctrl-C while
    // connecting) leaves no account behind: a typo in the host must not become an account to clean
    // up. One the server answered (a wrong password, [IN-USE]) keeps its account and failed run.
    if (firstSync && result.sessions === 0 && neverConnected(result.status, result.error)) await store.accounts.remove(account.id);
    progress.stop();
    const context = { account: fields.key, store: where, interrupted: interrupts.signal };
    const failure = syncFailure(result, context);
    // The report says how the run ended: scripts get it whatever the status; people get the summary
    // of a run that did its work, and the failure line of one that did not.
    if (options.json === true || failure === undefined) await writeReport(describeSync(result, context), options.json === true);
    if (failure !== undefined) throw failure;
  } catch (error) {
    // Another sync holds the account: nothing was done, and nothing is wrong.
    if (error instanceof SyncError && error.code === 'SYNC_LOCKED') {
      throw new CommandFailure(`${error.message}; try again when it has finished`, failureOf(error).exitCode, { cause: error });
    }
    throw error;
  } finally {
    progress.stop();
    interrupts.dispose();
    // The run closed them, unless it never started (another sync held the account).
    await Promise.all((destinations?.targets ?? []).map((t) => t.destination.close().catch(() => undefined)));
  }
}

function neverConnected(status: string, error: unknown): boolean {
  if (status === 'stopped') return true;
  return error instanceof Pop3Error && (error.kind === 'connection' || error.kind === 'timeout' || error.kind === 'aborted');
}

function firstSignalNote(signal: StopSignal): string {
  const key = signal === 'SIGINT' ? 'Ctrl-C' : signal;
  return `${signal}: stopping after the message being received, then committing, deleting per the policy and ending the session (${key} again: quit at once; what is committed stays)`;
}

/** Only on a terminal: a retry that succeeds is no news for a log or cron's mail. */
function retryNote(attempt: RetryAttempt, pauseProgress: () => void): void {
  if (attempt.delay === undefined || process.stderr.isTTY !== true) return;
  pauseProgress();
  note(`${attempt.error.message}; trying again in ${(attempt.delay / 1000).toFixed(1)} s`);
}

function note(line: string): void {
  process.stderr.write(`popwire: ${line}\n`);
}
