import { createHmac } from 'node:crypto';
import type { Sensitive } from '../protocol/command.js';
import { badChallenge, type SaslMechanism } from './sasl.js';

/**
 * RFC 2195 CRAM-MD5: the server sends a challenge (a msg-id such as `<1896.697170952@postoffice>`);
 * the answer is the user name, a space, and HMAC-MD5 of the challenge keyed with the password, in
 * lower-case hex. The password is not sent, but an eavesdropper can test guesses against the
 * answer offline, fast: hence TLS or an opt-in (see select.ts).
 */
export function cramMd5(user: string, password: Sensitive): SaslMechanism {
  let answered = false;
  return {
    name: 'CRAM-MD5',
    async start() {
      return undefined;
    },
    async step(challenge) {
      if (answered) throw badChallenge('CRAM-MD5', 'the server sent a second challenge');
      answered = true;
      const digest = createHmac('md5', Buffer.from(password.reveal(), 'utf8')).update(challenge).digest('hex');
      return Buffer.from(`${user} ${digest}`, 'utf8');
    },
    isComplete() {
      return answered;
    },
  };
}
