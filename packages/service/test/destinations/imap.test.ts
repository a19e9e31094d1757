/**
 * IMAP APPEND into a real Dovecot IMAP, read back over IMAP byte for byte with its internal date.
 */
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { startDeliveryDovecot, type DeliveryDovecot } from '../../../../support/dovecot-delivery.ts';
import { DestinationRefused, DestinationUnavailable, type MessageMeta } from '../../src/destinations/destination.js';
import { imapDestination } from '../../src/destinations/imap.js';
import { messageDate } from '../../src/destinations/message.js';

const MESSAGES = [
  Buffer.from('Date: Tue, 03 Mar 2026 10:20:30 +0100\r\nFrom: alice@example.org\r\nSubject: one\r\n\r\nbody\r\n.dot\r\n'),
  // 8-bit, but no NUL: Dovecot stores a NUL in an APPEND as 0x80 (IMAP forbids NUL outside BINARY).
  Buffer.from('Date: Sun, 1 Feb 2015 23:59:59 -0800\r\nSubject: 8-bit\r\n\r\n\xe9t\xe9 \xff\r\n', 'latin1'),
];

function meta(message: Buffer, n: number): MessageMeta {
  return { n, size: message.length, envelope: { sender: '', recipient: 'bob' }, date: messageDate(message) };
}

async function readBack(dovecot: DeliveryDovecot, user: string, folder: string): Promise<Array<{ source: Buffer; internalDate: Date; flags: Set<string> }>> {
  const client = new ImapFlow({ host: '127.0.0.1', port: dovecot.imapsPort, secure: true, tls: { ca: dovecot.ca }, auth: { user, pass: dovecot.users[user] as string }, logger: false });
  await client.connect();
  try {
    await client.mailboxOpen(folder);
    const found = [];
    for await (const message of client.fetch('1:*', { source: true, internalDate: true, flags: true })) {
      found.push({ source: message.source as Buffer, internalDate: new Date(message.internalDate as Date), flags: message.flags as Set<string> });
    }
    return found;
  } finally {
    await client.logout();
  }
}

describe('IMAP APPEND into a real Dovecot', () => {
  let dovecot: DeliveryDovecot;
  before(async () => {
    dovecot = await startDeliveryDovecot();
  });
  after(() => dovecot?.stop());

  it('appends each message over imaps://, read back byte for byte, with the Date header as internal date and no \\Seen', async () => {
    const destination = imapDestination({ host: '127.0.0.1', port: dovecot.imapsPort, implicitTls: true, user: 'bob', folder: 'INBOX' }, { auth: { password: dovecot.users.bob }, tls: { ca: dovecot.ca } });
    await destination.open();
    for (const [index, message] of MESSAGES.entries()) await destination.deliver(message, meta(message, index + 1));
    await destination.close();
    const stored = await readBack(dovecot, 'bob', 'INBOX');
    assert.deepEqual(stored.map(({ source }) => source), MESSAGES);
    assert.deepEqual(stored.map(({ internalDate }) => internalDate.toISOString()), ['2026-03-03T09:20:30.000Z', '2015-02-02T07:59:59.000Z']);
    assert.ok(stored.every(({ flags }) => !flags.has('\\Seen')));
  });

  it('marks the messages \\Seen when asked, over imap:// on loopback', async () => {
    const destination = imapDestination({ host: '127.0.0.1', port: dovecot.imapPort, implicitTls: false, user: 'carol', folder: 'INBOX' }, { auth: { password: dovecot.users.carol }, seen: true });
    await destination.open();
    await destination.deliver(MESSAGES[0] as Buffer, meta(MESSAGES[0] as Buffer, 1));
    await destination.close();
    const [stored] = await readBack(dovecot, 'carol', 'INBOX');
    assert.ok(stored?.flags.has('\\Seen'));
  });

  it('stops at open for a wrong password, a missing folder or an untrusted certificate', async () => {
    const target = { host: '127.0.0.1', port: dovecot.imapsPort, implicitTls: true, user: 'bob', folder: 'INBOX' };
    await assert.rejects(imapDestination(target, { auth: { password: 'wrong' }, tls: { ca: dovecot.ca } }).open(), (error: unknown) => error instanceof DestinationUnavailable && /login refused/.test(error.message));
    await assert.rejects(imapDestination({ ...target, folder: 'No such' }, { auth: { password: dovecot.users.bob }, tls: { ca: dovecot.ca } }).open(), (error: unknown) => error instanceof DestinationUnavailable && /folder "No such" cannot be used/.test(error.message));
    await assert.rejects(imapDestination(target, { auth: { password: dovecot.users.bob } }).open(), DestinationUnavailable);
  });

  it('reads a NO to APPEND (over quota) as a temporary refusal that keeps the connection', async () => {
    const quota = await startDeliveryDovecot({
      extraConfig: `
mail_plugins = $mail_plugins quota
plugin {
  quota = count:User quota
  quota_rule = *:storage=1k
  quota_vsizes = yes
}`,
    });
    try {
      const destination = imapDestination({ host: '127.0.0.1', port: quota.imapPort, implicitTls: false, user: 'bob', folder: 'INBOX' }, { auth: { password: quota.users.bob } });
      await destination.open();
      const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(4096, 'x')]);
      await assert.rejects(destination.deliver(big, meta(big, 1)), (error: unknown) => error instanceof DestinationRefused && error.temporary && /^NO /.test(error.reply));
      await destination.deliver(MESSAGES[0] as Buffer, meta(MESSAGES[0] as Buffer, 2));
      await destination.close();
    } finally {
      await quota.stop();
    }
  });
});

/** An address of this machine that is not loopback, if it has one. */
const outside = Object.values(networkInterfaces()).flat().find((address) => address?.family === 'IPv4' && !address.internal)?.address;

describe('IMAP TLS policy', () => {
  it('uses STARTTLS with a verified certificate to a non-loopback imap:// server', { skip: outside === undefined && 'no non-loopback address here' }, async () => {
    const dovecot = await startDeliveryDovecot({ extraConfig: `listen = 127.0.0.1, ${outside}` });
    try {
      const target = { host: outside as string, port: dovecot.imapPort, implicitTls: false, user: 'bob', folder: 'INBOX' };
      // The certificate names 127.0.0.1 and localhost, not this address: verification must refuse it.
      await assert.rejects(imapDestination(target, { auth: { password: dovecot.users.bob }, tls: { ca: dovecot.ca } }).open(), (error: unknown) => error instanceof DestinationUnavailable && /certificate|altnames|IP/i.test(error.message));
      const insecure = imapDestination(target, { auth: { password: dovecot.users.bob }, tls: { insecure: true } });
      await insecure.open();
      await insecure.deliver(MESSAGES[0] as Buffer, meta(MESSAGES[0] as Buffer, 1));
      await insecure.close();
      assert.equal((await readBack(dovecot, 'bob', 'INBOX')).length, 1);
    } finally {
      await dovecot.stop();
    }
  });
});
