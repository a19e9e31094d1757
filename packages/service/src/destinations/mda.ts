/**
 * MDA delivery: runs a command once per message with the message on stdin, as fetchmail's --mda
 * and getmail's MDA_external do.
 *
 * - The command runs WITHOUT a shell: `procmail -d %T` is the argv ['procmail', '-d', VALUE], so a
 *   sender like `$(rm -rf ~)@x` or `a;b@x` is one argument, never code. A shell only with
 *   `mda-shell:` (--mda-shell), where placeholders are not substituted at all: the script reads
 *   "$POPWIRE_SENDER", which the shell quotes.
 * - Placeholders in arguments: %F the envelope sender ('' for the null sender), %T the recipient,
 *   %U the POP3 UID, %% a percent sign (fetchmail's %F and %T).
 * - Environment: POPWIRE_SENDER, POPWIRE_RECIPIENT, POPWIRE_UID, POPWIRE_SIZE, POPWIRE_MESSAGE_NUMBER.
 * - The message with LF line endings (what procmail, maildrop and dovecot-lda expect, and what
 *   fetchmail gives an MDA).
 * - Exit 0: delivered. Exit 75 (EX_TEMPFAIL, sysexits.h): refused for now, try again next run. Any
 *   other exit or a signal: refused. Killed by the time limit: refused for now. Each keeps the
 *   message on the server.
 * - The command runs in its own process group, so the time limit kills what it started too (a
 *   procmail recipe's filters), first with SIGTERM, then SIGKILL 2 s later.
 * - stderr is kept up to a limit (a misbehaving MDA cannot fill memory) and goes into the refusal's
 *   words, or to onNote on success.
 */
import { spawn } from 'node:child_process';
import { DestinationRefused, DestinationUnavailable, type Destination, type DestinationOptions, type MessageMeta } from './destination.js';
import { toLf } from './message.js';

export const EX_TEMPFAIL = 75;
const DEFAULT_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_STDERR_LIMIT = 4096;
const KILL_GRACE_MS = 2_000;

export type MdaCommand = { readonly shell: false; readonly argv: readonly string[] } | { readonly shell: true; readonly script: string };

export function mdaDestination(command: MdaCommand, options: DestinationOptions = {}): Destination {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const stderrLimit = options.stderrLimit ?? DEFAULT_STDERR_LIMIT;
  const name = command.shell ? `/bin/sh -c ${JSON.stringify(command.script)}` : (command.argv[0] as string);
  const describe = () => `the MDA ${name}`;
  return {
    kind: 'mda',
    describe,
    async open() {},
    async close() {},
    async deliver(message: Buffer, meta: MessageMeta): Promise<void> {
      const argv = command.shell ? ['/bin/sh', '-c', command.script] : command.argv.map((argument) => substitute(argument, meta));
      const outcome = await run(argv, toLf(message), environment(meta), timeoutMs, stderrLimit);
      if (outcome.kind === 'spawn-failed') {
        // Not this message's fault: no message can be delivered by a command that does not run.
        throw new DestinationUnavailable(describe(), `cannot run ${argv[0]}: ${outcome.error.message}`, { cause: outcome.error });
      }
      const said = outcome.stderr === '' ? '' : `: ${outcome.stderr}`;
      if (outcome.kind === 'timed-out') throw new DestinationRefused(describe(), `killed after the time limit of ${timeoutMs} ms${said}`, true);
      if (outcome.signal !== null) throw new DestinationRefused(describe(), `killed by ${outcome.signal}${said}`, false);
      if (outcome.code === EX_TEMPFAIL) throw new DestinationRefused(describe(), `exit 75 (EX_TEMPFAIL, try later)${said}`, true);
      if (outcome.code !== 0) throw new DestinationRefused(describe(), `exit ${outcome.code}${said}`, false);
      if (outcome.stderr !== '') options.onNote?.(`${describe()} said: ${outcome.stderr}`);
    },
  };
}

/** %F, %T, %U and %% in one argument (spec.ts has already refused any other %). */
export function substitute(argument: string, meta: MessageMeta): string {
  return argument.replace(/%([FTU%])/g, (_all, letter: string) => {
    switch (letter) {
      case 'F':
        return meta.envelope.sender;
      case 'T':
        return meta.envelope.recipient;
      case 'U':
        return meta.uid ?? '';
      default:
        return '%';
    }
  });
}

function environment(meta: MessageMeta): NodeJS.ProcessEnv {
  return {
    ...process.env,
    POPWIRE_SENDER: meta.envelope.sender,
    POPWIRE_RECIPIENT: meta.envelope.recipient,
    POPWIRE_UID: meta.uid ?? '',
    POPWIRE_SIZE: String(meta.size),
    POPWIRE_MESSAGE_NUMBER: String(meta.n),
  };
}

type RunOutcome =
  | { readonly kind: 'spawn-failed'; readonly error: Error }
  | { readonly kind: 'timed-out'; readonly stderr: string }
  | { readonly kind: 'exited'; readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly stderr: string };

function run(argv: readonly string[], input: Buffer, env: NodeJS.ProcessEnv, timeoutMs: number, stderrLimit: number): Promise<RunOutcome> {
  return new Promise((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      stdio: ['pipe', 'ignore', 'pipe'],
      env,
      // Its own process group: the time limit kills the whole group.
      detached: true,
    });
    const stderr = boundedText(stderrLimit);
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => {
        killGroup(child.pid, 'SIGKILL');
        // A process that left the group (setsid) may still hold stderr open: stop waiting for it.
        child.stderr.destroy();
      }, KILL_GRACE_MS);
      killTimer.unref();
    }, timeoutMs);
    timer.unref();
    child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
    // An MDA that exits without reading all of stdin (it refused the message early) makes the
    // write fail with EPIPE: the exit code says what happened.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ kind: 'spawn-failed', error });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // The group may still hold a child that outlived its parent after a SIGTERM.
      if (timedOut) killGroup(child.pid, 'SIGKILL');
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (child.pid === undefined) return;
      resolve(timedOut ? { kind: 'timed-out', stderr: stderr.text() } : { kind: 'exited', code, signal, stderr: stderr.text() });
    });
  });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}

/** Keeps the first `limit` bytes, as one trimmed line, and says how much was cut. */
function boundedText(limit: number): { add(chunk: Buffer): void; text(): string } {
  const kept: Buffer[] = [];
  let size = 0;
  let dropped = 0;
  return {
    add(chunk) {
      const room = limit - size;
      if (room > 0) kept.push(chunk.subarray(0, room));
      size += Math.min(room, chunk.length);
      dropped += Math.max(0, chunk.length - Math.max(room, 0));
    },
    text() {
      const text = Buffer.concat(kept).toString('utf8').trim().replace(/\s*\n\s*/g, ' | ');
      return dropped > 0 ? `${text} [${dropped} more bytes of stderr not shown]` : text;
    },
  };
}
