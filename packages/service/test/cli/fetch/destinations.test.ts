/**
 * `popwire fetch` handing messages to a mail system (--lmtp, --smtp, --mda, --imap): the built bin
 * from a real Dovecot POP3 into a real Dovecot LMTP/IMAP, a real Postfix and real commands, and
 * into a scripted LMTP server for the 4xx fault. Build first (npx tsc -b ... and node
 * scripts/build.mjs --bundle-only).
 *
 * The promise under test: a message leaves the POP3 server only once every destination accepted it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { dropDeliveryHeaders, type DeliveryDovecot } from '../../../../../support/dovecot-delivery.ts';
import { closedPort } from '../../../../../support/daemon.ts';
import type { Dovecot } from '../../../../../support/dovecot.ts';
import { startPostfix, type Postfix } from '../../../../../support/postfix.ts';
import { startScriptedLmtp } from '../../destinations/scripted-lmtp.ts';
import { popwire, deliveryMessage as message, deliveryScratch, type DeliveryScratch, type Run } from '../popwire.ts';

const PASSWORD = 'alice-secret';

let source: Dovecot;
let scratch: string;
let caFile: string;
let target: DeliveryDovecot;
let servers: DeliveryScratch | undefined;

before(async () => {
  servers = await deliveryScratch('popwire-fetch-destinations-');
  ({ dovecot: source, scratch, caFile, target } = servers);
});
after(() => servers?.stop());

/** `popwire fetch ARGS` as alice, from the source Dovecot over pop3s. */
function fetchAsAlice(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return popwire(['fetch', ...args, `pop3s://alice@127.0.0.1:${source.tlsPort}`, '--ca', caFile], { password: PASSWORD, env });
}

/** How many messages alice still has on the POP3 server (its Maildir, read from disk). */
async function remaining(): Promise<number> {
  const dir = source.users.alice?.maildir as string;
  const [cur, fresh] = await Promise.all([readdir(join(dir, 'cur')), readdir(join(dir, 'new'))]);
  return cur.length + fresh.length;
}

/** `X-Popwire-UID: ...\n` then the message with LF endings: what LMTP stored, without its own fields. */
function withoutUidLine(file: Buffer): string {
  return dropDeliveryHeaders(file).toString('latin1').replace(/^X-Popwire-UID: \S+\n/, '');
}

describe('popwire fetch --lmtp', () => {
  it('delivers every message into Dovecot LMTP byte for byte, with X-Popwire-UID on top, then deletes them', async () => {
    const messages = [message('one'), message('two'), message('three')];
    await source.setMailbox('alice', messages);
    const run = await fetchAsAlice(['--lmtp', `127.0.0.1:${target.lmtpPort}`, '--to', 'bob', '--delete']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout.toString(), /^fetched 3 messages \(.*\) into LMTP 127\.0\.0\.1:\d+ in .* s, 3 deleted from the server\n$/);
    const stored = await target.readMaildir('bob');
    assert.deepEqual(stored.map(withoutUidLine), messages.map((each) => each.toString('latin1').replaceAll('\r\n', '\n')));
    assert.ok(stored.every((file) => /^X-Popwire-UID: [\x21-\x7e]+$/m.test(file.toString('latin1'))));
    assert.ok(stored.every((file) => file.toString('latin1').startsWith('Return-Path: <sender@example.org>\n')), 'the envelope sender comes from Return-Path');
    assert.equal(await remaining(), 0);
  });

  it('leaves the header out with --no-uid-header, and fills a Maildir too when both are given', async () => {
    await source.setMailbox('alice', [message('both')]);
    const maildir = join(scratch, 'both-maildir');
    const run = await fetchAsAlice(['--lmtp', `127.0.0.1:${target.lmtpPort}`, '--to', 'carol@example.org', '--no-uid-header', '--maildir', maildir]);
    assert.equal(run.code, 0, run.stderr);
    const [stored] = await target.readMaildir('carol');
    assert.equal(dropDeliveryHeaders(stored as Buffer).toString('latin1'), message('both').toString('latin1').replaceAll('\r\n', '\n'));
    assert.deepEqual(await readFile(join(maildir, 'new', (await readdir(join(maildir, 'new')))[0] as string)), message('both'));
    assert.equal(await remaining(), 1, 'no --delete: the message stays');
  });

  it('deletes nothing when the LMTP server refuses connections, and the exit code and message name it', async () => {
    await source.setMailbox('alice', [message('a'), message('b')]);
    const port = await closedPort();
    const run = await fetchAsAlice(['--lmtp', `127.0.0.1:${port}`, '--delete']);
    assert.equal(run.code, 6, run.stderr);
    assert.equal(run.stderr, `popwire: Cannot deliver to LMTP 127.0.0.1:${port}: cannot connect: connection refused\n`);
    assert.equal(await remaining(), 2);
  });

  it('keeps the messages answered 4xx on the server and delivers and deletes the rest, exit 7', async () => {
    await source.setMailbox('alice', [message('keep me'), message('deliver me'), message('keep me too')]);
    const lmtp = await startScriptedLmtp((received) => (/Subject: keep/.test(received.toString('latin1')) ? '452 4.2.2 Mailbox full' : '250 2.0.0 ok'));
    try {
      const run = await fetchAsAlice(['--lmtp', `127.0.0.1:${lmtp.port}`, '--delete']);
      assert.equal(run.code, 7, run.stderr);
      assert.match(run.stderr, /^popwire: messages 1, 3 were not accepted \(LMTP 127\.0\.0\.1:\d+ deferred the message: 452 4\.2\.2 Mailbox full\); they stay on the server \(1 of 3 messages delivered, 1 deleted from the server\)\n$/);
      assert.equal(lmtp.messages.length, 3);
      assert.ok(lmtp.envelope.includes('RCPT TO:<alice>'), 'the recipient defaults to the POP3 user');
    } finally {
      await lmtp.close();
    }
    const left = await readdir(join(source.users.alice?.maildir as string, 'cur'));
    assert.equal(left.length, 2);
  });
});

describe('popwire fetch --smtp', () => {
  let postfix: Postfix;
  before(async () => {
    postfix = await startPostfix();
  });
  after(() => postfix?.stop());

  it('hands every message to Postfix, which delivers it locally, then deletes them', async () => {
    const messages = [message('via postfix 1'), message('via postfix 2')];
    await source.setMailbox('alice', messages);
    const run = await fetchAsAlice(['--smtp', `127.0.0.1:${postfix.port}`, '--to', 'bob@example.org', '--delete']);
    assert.equal(run.code, 0, run.stderr);
    const stored = await postfix.waitForMessages('bob', 2);
    // Postfix drops a Return-Path the message brings (message_drop_headers) and writes its own from MAIL FROM.
    const expected = messages.map((each) => each.toString('latin1').replaceAll('\r\n', '\n').replace('Return-Path: <sender@example.org>\n', ''));
    assert.deepEqual(stored.map(withoutUidLine).sort(), expected.sort());
    assert.ok(stored.every((file) => file.toString('latin1').startsWith('Return-Path: <sender@example.org>\n')), 'the envelope sender comes from Return-Path');
    assert.equal(await remaining(), 0);
  });
});

describe('popwire fetch --mda', () => {
  it('delivers through procmail, with the recipient as a placeholder', async () => {
    await source.setMailbox('alice', [message('procmail')]);
    const maildir = join(scratch, 'procmail-maildir');
    const rc = join(scratch, 'procmailrc');
    await writeFile(rc, `DEFAULT=${maildir}/\n`);
    const run = await fetchAsAlice(['--mda', `procmail -m ${rc} RECIPIENT=%T`, '--delete']);
    assert.equal(run.code, 0, run.stderr);
    const names = await readdir(join(maildir, 'new'));
    assert.equal(names.length, 1);
    assert.equal(withoutUidLine(await readFile(join(maildir, 'new', names[0] as string))), message('procmail').toString('latin1').replaceAll('\r\n', '\n'));
    assert.equal(await remaining(), 0);
  });

  it('keeps the messages when the MDA exits 75, and delivers them on the next run when it exits 0', async () => {
    await source.setMailbox('alice', [message('later 1'), message('later 2')]);
    const ready = join(scratch, 'mda-ready');
    const out = join(scratch, 'mda-out');
    const script = `test -f ${ready} || exit 75; cat > ${out}-$POPWIRE_MESSAGE_NUMBER`;
    const first = await fetchAsAlice(['--mda-shell', script, '--delete']);
    assert.equal(first.code, 7, first.stderr);
    assert.match(first.stderr, /exit 75 \(EX_TEMPFAIL, try later\)/);
    assert.equal(await remaining(), 2);
    await writeFile(ready, '');
    const second = await fetchAsAlice(['--mda-shell', script, '--delete']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(await remaining(), 0);
    assert.ok(existsSync(`${out}-1`) && existsSync(`${out}-2`));
  });

  it('kills an MDA that hangs at the time limit and keeps its message', async () => {
    await source.setMailbox('alice', [message('hang')]);
    const run = await fetchAsAlice(['--mda', 'sleep 600', '--mda-timeout', '300', '--delete']);
    assert.equal(run.code, 7, run.stderr);
    assert.match(run.stderr, /killed after the time limit of 300 ms/);
    assert.equal(await remaining(), 1);
  });

  it('passes a hostile Return-Path to the MDA as data, never as code', async () => {
    const pwned = join(scratch, 'pwned');
    const hostile = Buffer.from(`Return-Path: <$(touch\${IFS}${pwned})@x>\r\nSubject: hostile\r\n\r\nx\r\n`);
    await source.setMailbox('alice', [hostile]);
    const out = join(scratch, 'hostile-sender');
    const run = await fetchAsAlice(['--mda', `${process.execPath} -e 'require("fs").writeFileSync(process.argv[1], process.argv[2])' ${out} %F`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readFile(out, 'utf8'), `$(touch\${IFS}${pwned})@x`);
    assert.equal(existsSync(pwned), false);
  });
});

describe('popwire fetch --imap', () => {
  it('appends every message to the IMAP folder, read back byte for byte with the Date as internal date', async () => {
    const messages = [message('imap 1'), message('imap 2')];
    await source.setMailbox('alice', messages);
    const run = await fetchAsAlice(['--imap', `imap://bob@127.0.0.1:${target.imapPort}/INBOX`, '--no-uid-header', '--delete'], { POPWIRE_IMAP_PASSWORD: target.users.bob as string });
    assert.equal(run.code, 0, run.stderr);
    const client = new ImapFlow({ host: '127.0.0.1', port: target.imapPort, secure: false, doSTARTTLS: false, auth: { user: 'bob', pass: target.users.bob as string }, logger: false });
    await client.connect();
    const found: Array<{ source: Buffer; date: string }> = [];
    try {
      await client.mailboxOpen('INBOX');
      for await (const each of client.fetch('1:*', { source: true, internalDate: true })) found.push({ source: each.source as Buffer, date: new Date(each.internalDate as Date).toISOString() });
    } finally {
      await client.logout();
    }
    const appended = found.filter(({ source: bytes }) => /Subject: imap/.test(bytes.toString('latin1')));
    assert.deepEqual(appended.map(({ source: bytes }) => bytes), messages);
    assert.deepEqual(appended.map(({ date }) => date), ['2026-03-03T10:20:30.000Z', '2026-03-03T10:20:30.000Z']);
    assert.equal(await remaining(), 0);
  });

  it('refuses --skip-existing with the reason: fetch keeps no memory between runs', async () => {
    const run = await fetchAsAlice(['--lmtp', '127.0.0.1:24', '--skip-existing']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /use popwire sync --skip-existing/);
  });
});
