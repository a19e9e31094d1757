/**
 * The delivery fixtures themselves (support/dovecot-delivery.ts, support/postfix.ts): a message
 * handed over by hand, in the servers' own protocols, is found where the fixture says it will be.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { dropDeliveryHeaders, startDeliveryDovecot, type DeliveryDovecot } from '../../../../support/dovecot-delivery.ts';
import { startPostfix, type Postfix } from '../../../../support/postfix.ts';

/** Speaks a whole LMTP/SMTP dialogue line by line, returning every reply. */
export async function converse(port: number, lines: string[]): Promise<string[]> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setEncoding('latin1');
  const replies: string[] = [];
  let buffer = '';
  const pending = [...lines];
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        // "250-..." continues a multi-line reply; "250 ..." ends it.
        if (line[3] === '-') continue;
        replies.push(line);
        const next = pending.shift();
        if (next === undefined) {
          socket.end();
          resolve(replies);
        } else {
          socket.write(next, 'latin1');
        }
      }
    });
  });
}

describe('support/dovecot-delivery.ts', () => {
  let dovecot: DeliveryDovecot;
  before(async () => {
    dovecot = await startDeliveryDovecot();
  });
  after(() => dovecot?.stop());

  it('delivers what its LMTP listener accepts into the recipient Maildir, with LF line endings', async () => {
    const message = 'Subject: fixture\r\nFrom: a@example.org\r\n\r\nbody line\r\n..dot\r\n';
    const replies = await converse(dovecot.lmtpPort, [
      'LHLO test\r\n',
      'MAIL FROM:<a@example.org>\r\n',
      'RCPT TO:<bob@example.org>\r\n',
      'DATA\r\n',
      `${message}.\r\n`,
      'QUIT\r\n',
    ]);
    assert.match(replies[5] ?? '', /^250 /, replies.join('\n'));
    const [file, ...rest] = await dovecot.readMaildir('bob');
    assert.equal(rest.length, 0);
    assert.equal(dropDeliveryHeaders(file as Buffer).toString('latin1'), message.replaceAll('\r\n', '\n').replace('..dot', '.dot'));
    assert.match((file as Buffer).toString('latin1'), /^Return-Path: <a@example.org>\n/);
  });
});

describe('support/postfix.ts', () => {
  let postfix: Postfix;
  before(async () => {
    postfix = await startPostfix();
  });
  after(() => postfix?.stop());

  it('delivers what its SMTP listener accepts into the recipient Maildir, and refuses an unknown recipient with 550', async () => {
    const message = 'Subject: via postfix\r\nFrom: a@example.org\r\n\r\n8-bit: \xe9t\xe9\r\n';
    const replies = await converse(postfix.port, [
      'EHLO test\r\n',
      'MAIL FROM:<a@example.org>\r\n',
      'RCPT TO:<nobody@example.org>\r\n',
      'RCPT TO:<alice@example.org>\r\n',
      'DATA\r\n',
      `${message}.\r\n`,
      'QUIT\r\n',
    ]);
    assert.match(replies[3] ?? '', /^550 /, replies.join('\n'));
    assert.match(replies[6] ?? '', /^250 /, replies.join('\n'));
    const [file] = await postfix.waitForMessages('alice', 1);
    const text = (file as Buffer).toString('latin1');
    assert.match(text, /^Return-Path: <a@example.org>\nDelivered-To: alice@example.org\nReceived: /);
    assert.equal(dropDeliveryHeaders(file as Buffer).toString('latin1'), message.replaceAll('\r\n', '\n'));
  });
});
