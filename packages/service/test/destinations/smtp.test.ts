/**
 * LMTP and SMTP destinations: into a real Dovecot LMTP and a real Postfix, read back byte for byte;
 * faults from a scripted server.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { dropDeliveryHeaders, startDeliveryDovecot, type DeliveryDovecot } from '../../../../support/dovecot-delivery.ts';
import { startPostfix, type Postfix } from '../../../../support/postfix.ts';
import { DestinationRefused, DestinationUnavailable, type MessageMeta } from '../../src/destinations/destination.js';
import { toLf } from '../../src/destinations/message.js';
import { smtpDestination } from '../../src/destinations/smtp.js';
import { startScriptedLmtp } from './scripted-lmtp.ts';

const MESSAGES = [
  Buffer.from('From: alice@example.org\r\nSubject: one\r\n\r\nplain body\r\n'),
  Buffer.from('From: alice@example.org\r\nSubject: two\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n'),
  Buffer.from('From: alice@example.org\r\nSubject: =?utf-8?q?drei?=\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xe9t\xe9 \xff\x80 8-bit\r\n', 'latin1'),
];

function meta(message: Buffer, n: number, sender: string, recipient: string): MessageMeta {
  return { n, uid: `u${n}`, size: message.length, envelope: { sender, recipient } };
}

describe('LMTP into a real Dovecot', () => {
  let dovecot: DeliveryDovecot;
  before(async () => {
    dovecot = await startDeliveryDovecot();
  });
  after(() => dovecot?.stop());

  it('delivers each message, read back from the Maildir byte for byte, with its envelope sender (the null sender too)', async () => {
    const destination = smtpDestination({ protocol: 'lmtp', address: { host: '127.0.0.1', port: dovecot.lmtpPort } });
    await destination.open();
    const senders = ['alice@example.org', '', 'carol@example.org'];
    for (const [index, message] of MESSAGES.entries()) await destination.deliver(message, meta(message, index + 1, senders[index] as string, 'bob@example.org'));
    await destination.close();
    const stored = await dovecot.readMaildir('bob');
    assert.equal(stored.length, MESSAGES.length);
    for (const [index, file] of stored.entries()) {
      assert.deepEqual(dropDeliveryHeaders(file), toLf(MESSAGES[index] as Buffer), `message ${index + 1}`);
      assert.ok(file.toString('latin1').startsWith(`Return-Path: <${senders[index]}>\n`), file.toString('latin1'));
    }
  });

  it('delivers over a Unix socket (lmtp:unix:/PATH) as over TCP', async () => {
    const destination = smtpDestination({ protocol: 'lmtp', address: { path: dovecot.lmtpSocket } });
    assert.equal(destination.describe(), `LMTP unix:${dovecot.lmtpSocket}`);
    await destination.open();
    const message = MESSAGES[1] as Buffer;
    await destination.deliver(message, meta(message, 1, 'alice@example.org', 'alice@example.org'));
    await destination.close();
    const [stored] = await dovecot.readMaildir('alice');
    assert.deepEqual(dropDeliveryHeaders(stored as Buffer), toLf(message));
  });

  it('reads a recipient Dovecot does not know as a permanent refusal, and goes on with the next message', async () => {
    const destination = smtpDestination({ protocol: 'lmtp', address: { host: '127.0.0.1', port: dovecot.lmtpPort } });
    await destination.open();
    const message = MESSAGES[0] as Buffer;
    await assert.rejects(destination.deliver(message, meta(message, 1, '', 'nobody@example.org')), (error: unknown) => error instanceof DestinationRefused && !error.temporary && /550/.test(error.reply));
    await destination.deliver(message, meta(message, 2, '', 'carol@example.org'));
    await destination.close();
    assert.equal((await dovecot.readMaildir('carol')).length, 1);
  });
});

describe('SMTP into a real Postfix', () => {
  let postfix: Postfix;
  before(async () => {
    postfix = await startPostfix({ messageSizeLimit: 200_000 });
  });
  after(() => postfix?.stop());

  it('hands each message to Postfix, which delivers it locally byte for byte', async () => {
    const destination = smtpDestination({ protocol: 'smtp', address: { host: '127.0.0.1', port: postfix.port } });
    await destination.open();
    for (const [index, message] of MESSAGES.entries()) await destination.deliver(message, meta(message, index + 1, 'alice@example.org', 'bob@example.org'));
    await destination.close();
    const stored = await postfix.waitForMessages('bob', MESSAGES.length);
    const bodies = stored.map((file) => dropDeliveryHeaders(file).toString('latin1')).sort();
    assert.deepEqual(bodies, MESSAGES.map((message) => toLf(message).toString('latin1')).sort());
  });

  it("reads a message over the server's SIZE as a permanent refusal and an unknown recipient as one too (550)", async () => {
    const destination = smtpDestination({ protocol: 'smtp', address: { host: '127.0.0.1', port: postfix.port } });
    await destination.open();
    const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(300_000, 'x\r\n')]);
    await assert.rejects(destination.deliver(big, meta(big, 1, 'alice@example.org', 'bob@example.org')), (error: unknown) => error instanceof DestinationRefused && !error.temporary);
    const small = MESSAGES[0] as Buffer;
    await assert.rejects(destination.deliver(small, meta(small, 2, 'alice@example.org', 'nobody@example.org')), (error: unknown) => error instanceof DestinationRefused && !error.temporary && /550/.test(error.reply));
    // The connection is still usable.
    await destination.deliver(small, meta(small, 3, 'alice@example.org', 'alice@example.org'));
    await destination.close();
    await postfix.waitForMessages('alice', 1);
  });
});

describe('LMTP faults (scripted server)', () => {
  it('reads a 4xx after the data as a temporary refusal and a 5xx as a permanent one; the connection goes on', async () => {
    const server = await startScriptedLmtp((_message, index) => ['452 4.2.2 Mailbox full', '554 5.6.0 Rejected', '250 2.0.0 ok'][index] as string);
    const destination = smtpDestination({ protocol: 'lmtp', address: { host: '127.0.0.1', port: server.port } });
    await destination.open();
    const message = MESSAGES[0] as Buffer;
    await assert.rejects(destination.deliver(message, meta(message, 1, '', 'bob')), (error: unknown) => error instanceof DestinationRefused && error.temporary && error.reply.includes('452 4.2.2 Mailbox full'));
    await assert.rejects(destination.deliver(message, meta(message, 2, '', 'bob')), (error: unknown) => error instanceof DestinationRefused && !error.temporary && error.reply.includes('554'));
    await destination.deliver(message, meta(message, 3, '', 'bob'));
    await destination.close();
    await server.close();
    assert.deepEqual(server.envelope.filter((line) => line.startsWith('MAIL')).map((line) => line.split(' ')[1]), ['FROM:<>', 'FROM:<>', 'FROM:<>']);
  });

  it('reads a connection dropped before the reply as the destination being unavailable, not as a refusal', async () => {
    const server = await startScriptedLmtp(() => 'drop');
    const destination = smtpDestination({ protocol: 'lmtp', address: { host: '127.0.0.1', port: server.port } });
    await destination.open();
    const message = MESSAGES[0] as Buffer;
    await assert.rejects(destination.deliver(message, meta(message, 1, '', 'bob')), DestinationUnavailable);
    await assert.rejects(destination.deliver(message, meta(message, 2, '', 'bob')), DestinationUnavailable);
    await destination.close();
    await server.close();
  });

  it('names a refused connection when it opens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const destination = smtpDestination({ protocol: 'lmtp', address: { host: '127.0.0.1', port } });
    await assert.rejects(destination.open(), (error: unknown) => error instanceof DestinationUnavailable && error.message === `Cannot deliver to LMTP 127.0.0.1:${port}: cannot connect: connection refused`);
  });
});

/** An address of this machine that is not loopback, if it has one. */
const outside = Object.values(networkInterfaces()).flat().find((address) => address?.family === 'IPv4' && !address.internal)?.address;

describe('TLS policy', () => {
  it('refuses to hand a message in clear text to a non-loopback server without STARTTLS, unless allowed', { skip: outside === undefined && 'no non-loopback address here' }, async () => {
    const server = await startScriptedLmtp(() => '250 2.0.0 ok', { host: outside });
    try {
      const address = { host: outside as string, port: server.port };
      await assert.rejects(smtpDestination({ protocol: 'lmtp', address }).open(), (error: unknown) => error instanceof DestinationUnavailable && /STARTTLS/i.test(error.message));
      assert.equal(server.messages.length, 0);
      const allowed = smtpDestination({ protocol: 'lmtp', address }, { tls: { allowPlaintext: true } });
      await allowed.open();
      const message = MESSAGES[0] as Buffer;
      await allowed.deliver(message, meta(message, 1, '', 'bob'));
      await allowed.close();
      assert.equal(server.messages.length, 1);
    } finally {
      await server.close();
    }
  });
});
