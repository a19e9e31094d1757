import { Pop3UsageError } from '../errors.js';
import type { Sensitive } from '../protocol/command.js';
import { describeOAuthError } from './oauth-error.js';
import { badChallenge, escapeSaslName, type SaslMechanism } from './sasl.js';

/** RFC 7628 section 3.1: the separator between key-value pairs. */
const KVSEP = '\x01';
/** RFC 7628 section 3.2.3: the client's answer to an error challenge. */
const DUMMY_RESPONSE = Buffer.from(KVSEP);

/**
 * RFC 7628 OAUTHBEARER: a GS2 header naming the user, then `host`, `port` and `auth=Bearer <token>`
 * as ^A-separated pairs (section 3.1). Sent after the server's `+`, like XOAUTH2. On failure the
 * server sends a JSON error document as a challenge (section 3.2.2); the client must answer with a
 * single ^A (section 3.2.3), and the server's -ERR follows.
 */
export function oauthBearer(user: string, token: () => Promise<Sensitive>, host: string, port: number): SaslMechanism {
  let failureDetail: string | undefined;
  return {
    name: 'OAUTHBEARER',
    deferInitialResponse: true,
    async start() {
      checkOAuthUser('OAUTHBEARER', user);
      const bearer = (await token()).reveal();
      const message = `n,a=${escapeSaslName(user)},${KVSEP}host=${host}${KVSEP}port=${port}${KVSEP}auth=Bearer ${bearer}${KVSEP}${KVSEP}`;
      return Buffer.from(message, 'utf8');
    },
    async step(challenge) {
      if (failureDetail !== undefined) throw badChallenge('OAUTHBEARER', 'the server sent a second challenge after its error');
      failureDetail = describeOAuthError(challenge);
      return DUMMY_RESPONSE;
    },
    get failureDetail() {
      return failureDetail;
    },
  };
}

/** A control character in the user name (^A above all) would end its field early. */
export function checkOAuthUser(mechanism: string, user: string): void {
  if (/[\x00-\x1f\x7f]/.test(user)) {
    throw new Pop3UsageError(`${mechanism} cannot carry a user name containing control characters`, { code: 'POP3_INVALID_ARGUMENT' });
  }
}
