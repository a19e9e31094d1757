/**
 * The MDA destination against real MDAs (procmail, maildrop) and small commands that exit, hang or
 * try to be tricked into running code.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DestinationRefused, DestinationUnavailable, type MessageMeta } from '../../src/destinations/destination.js';
import { mdaDestination } from '../../src/destinations/mda.js';
import { parseMdaCommand } from '../../src/destinations/spec.js';

const MESSAGE = Buffer.from('Return-Path: <alice@example.org>\r\nSubject: to the MDA\r\n\r\nline one\r\n.line two\r\n\xe9t\xe9\r\n', 'latin1');

function meta(overrides: Partial<MessageMeta['envelope']> = {}): MessageMeta {
  return { uid: 'uid-1', n: 1, size: MESSAGE.length, envelope: { sender: 'alice@example.org', recipient: 'bob@example.org', ...overrides } };
}

async function maildirFiles(dir: string): Promise<Buffer[]> {
  const names = (await readdir(join(dir, 'new'))).sort();
  return Promise.all(names.map((name) => readFile(join(dir, 'new', name))));
}

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'popwire-destinations-mda-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

describe('mdaDestination with real MDAs', () => {
  it('hands the message to procmail, which stores it byte for byte with LF line endings', async () => {
    const maildir = join(scratch, 'procmail');
    for (const sub of ['new', 'cur', 'tmp']) await mkdir(join(maildir, sub), { recursive: true });
    const rc = join(scratch, 'procmailrc');
    await writeFile(rc, `DEFAULT=${maildir}/\n`);
    const destination = mdaDestination({ shell: false, argv: parseMdaCommand(`procmail -m ${rc}`) });
    await destination.deliver(MESSAGE, meta());
    const [stored] = await maildirFiles(maildir);
    assert.deepEqual(stored, Buffer.from(MESSAGE.toString('latin1').replaceAll('\r\n', '\n'), 'latin1'));
  });

  it('hands the message to maildrop, which stores it byte for byte with LF line endings', async () => {
    const maildir = join(scratch, 'maildrop');
    for (const sub of ['new', 'cur', 'tmp']) await mkdir(join(maildir, sub), { recursive: true });
    const filter = join(scratch, 'mailfilter');
    await writeFile(filter, `to "${maildir}"\n`);
    await chmod(filter, 0o600);
    const destination = mdaDestination({ shell: false, argv: ['maildrop', filter] });
    await destination.deliver(MESSAGE, meta());
    const [stored] = await maildirFiles(maildir);
    assert.deepEqual(stored, Buffer.from(MESSAGE.toString('latin1').replaceAll('\r\n', '\n'), 'latin1'));
  });
});

describe('mdaDestination exits and limits', () => {
  const node = process.execPath;

  it('gives the envelope as placeholders and as environment variables', async () => {
    const out = join(scratch, 'envelope.json');
    const script = `require('fs').writeFileSync(process.argv[1], JSON.stringify({ argv: process.argv.slice(2), sender: process.env.POPWIRE_SENDER, recipient: process.env.POPWIRE_RECIPIENT, uid: process.env.POPWIRE_UID, size: process.env.POPWIRE_SIZE, n: process.env.POPWIRE_MESSAGE_NUMBER }))`;
    const destination = mdaDestination({ shell: false, argv: [node, '-e', script, out, '-f', '%F', '--to=%T', '%U', '100%%'] });
    await destination.deliver(MESSAGE, meta());
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), {
      argv: ['-f', 'alice@example.org', '--to=bob@example.org', 'uid-1', '100%'],
      sender: 'alice@example.org',
      recipient: 'bob@example.org',
      uid: 'uid-1',
      size: String(MESSAGE.length),
      n: '1',
    });
  });

  it('runs no code from a hostile sender in a placeholder, without a shell or with one', async () => {
    const pwned = join(scratch, 'pwned');
    const hostile = `$(touch${'${IFS}'}${pwned})\`touch${'${IFS}'}${pwned}\`;touch${'${IFS}'}${pwned}@x`;
    const out = join(scratch, 'hostile-argv');
    const viaArgv = mdaDestination({ shell: false, argv: [node, '-e', 'require("fs").writeFileSync(process.argv[1], process.argv[2])', out, '%F'] });
    await viaArgv.deliver(MESSAGE, meta({ sender: hostile }));
    assert.equal(await readFile(out, 'utf8'), hostile);
    const outShell = join(scratch, 'hostile-shell');
    const viaShell = mdaDestination({ shell: true, script: `printf '%s' "$POPWIRE_SENDER" > ${outShell}` });
    await viaShell.deliver(MESSAGE, meta({ sender: hostile }));
    assert.equal(await readFile(outShell, 'utf8'), hostile);
    assert.equal(existsSync(pwned), false);
  });

  it('reads exit 75 as a temporary refusal and any other exit as a permanent one, with the stderr it wrote', async () => {
    const exiting = (code: number) => mdaDestination({ shell: false, argv: [node, '-e', `process.stderr.write('quota\\n'); process.exit(${code})`] });
    await assert.rejects(exiting(75).deliver(MESSAGE, meta()), (error: unknown) => error instanceof DestinationRefused && error.temporary && /exit 75 .*: quota$/.test(error.message));
    await assert.rejects(exiting(1).deliver(MESSAGE, meta()), (error: unknown) => error instanceof DestinationRefused && !error.temporary && /exit 1: quota$/.test(error.message));
    await exiting(0).deliver(MESSAGE, meta());
  });

  it('keeps only the first bytes of a flood on stderr', async () => {
    const destination = mdaDestination({ shell: false, argv: [node, '-e', `process.stderr.write('x'.repeat(100000)); process.exit(1)`] }, { stderrLimit: 100 });
    await assert.rejects(destination.deliver(MESSAGE, meta()), (error: unknown) => error instanceof DestinationRefused && error.message.includes(`${'x'.repeat(100)} [99900 more bytes of stderr not shown]`));
  });

  // The timeout: without the process group, the sleep keeps stderr open and this hangs instead of failing.
  it('kills an MDA that hangs, and what it started, once the time limit passes: a temporary refusal', { timeout: 60_000 }, async () => {
    const pidFile = join(scratch, 'grandchild.pid');
    const destination = mdaDestination({ shell: true, script: `sleep 600 & echo $! > ${pidFile}; wait` }, { timeoutMs: 500 });
    await assert.rejects(destination.deliver(MESSAGE, meta()), (error: unknown) => error instanceof DestinationRefused && error.temporary && /time limit of 500 ms/.test(error.message));
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    for (let i = 0; i < 200 && isRunning(grandchild); i++) await delay(25);
    assert.equal(isRunning(grandchild), false, 'the sleep the MDA started is gone too');
  });

  it('reads a command that cannot run as the destination being unavailable', async () => {
    const destination = mdaDestination({ shell: false, argv: [join(scratch, 'no-such-mda')] });
    await assert.rejects(destination.deliver(MESSAGE, meta()), (error: unknown) => error instanceof DestinationUnavailable && /cannot run .*no-such-mda: .*ENOENT/.test(error.message));
  });
});

/** Alive and not a zombie waiting for its reaper. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
