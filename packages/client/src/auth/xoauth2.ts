import type { Sensitive } from '../protocol/command.js';
import { describeOAuthError } from './oauth-error.js';
import { badChallenge, type SaslMechanism } from './sasl.js';
import { checkOAuthUser } from './oauthbearer.js';

/**
 * XOAUTH2, Google's and Microsoft's pre-standard OAuth mechanism: one message,
 * `user=<user> ^A auth=Bearer <token> ^A ^A` (developers.google.com/gmail/imap/xoauth2-protocol).
 *
 * It goes after the server's `+`, never on the AUTH line: Office 365's POP3 refuses it there, and
 * a token rarely fits the 255 octets anyway. On failure the server sends a JSON error document
 * as a challenge, the client answers with an empty line, and the server's -ERR follows.
 */
export function xoauth2(user: string, token: () => Promise<Sensitive>): SaslMechanism {
  let failureDetail: string | undefined;
  return {
    name: 'XOAUTH2',
    deferInitialResponse: true,
    async start() {
      checkOAuthUser('XOAUTH2', user);
      return Buffer.from(`user=${user}\x01auth=Bearer ${(await token()).reveal()}\x01\x01`, 'utf8');
    },
    async step(challenge) {
      if (failureDetail !== undefined) throw badChallenge('XOAUTH2', 'the server sent a second challenge after its error');
      failureDetail = describeOAuthError(challenge);
      return Buffer.alloc(0);
    },
    get failureDetail() {
      return failureDetail;
    },
  };
}
