import { Pop3UsageError } from '../errors.js';
import type { Sensitive } from '../protocol/command.js';
import { badChallenge, type SaslMechanism } from './sasl.js';

/**
 * RFC 4616 PLAIN: one client-first message, `authzid NUL authcid NUL passwd`. The authzid is left
 * empty, so the server derives it from the user name; some servers refuse a non-empty one.
 * The password crosses the wire as it is: the caller's TLS policy decides whether that may happen.
 */
export function plain(user: string, password: Sensitive): SaslMechanism {
  return {
    name: 'PLAIN',
    async start() {
      // RFC 4616 section 2: NUL separates the fields, so neither may contain one.
      if (user.includes('\0') || password.reveal().includes('\0')) {
        throw new Pop3UsageError('PLAIN cannot carry a user name or password containing NUL', { code: 'POP3_INVALID_ARGUMENT' });
      }
      return Buffer.from(`\0${user}\0${password.reveal()}`, 'utf8');
    },
    async step() {
      throw badChallenge('PLAIN', 'the server sent a challenge after the credentials');
    },
  };
}
