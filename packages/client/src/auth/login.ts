import type { Sensitive } from '../protocol/command.js';
import { badChallenge, type SaslMechanism } from './sasl.js';

/**
 * LOGIN (draft-murchison-sasl-login): server-first; the server prompts for the user name, then for
 * the password, and each is sent as it is. The prompts are answered by their order, not their
 * text: servers word them differently ("Username:", "User Name", localised), and Microsoft's
 * MS-XLOGIN section 3.1.5.1 lets a client assume the order.
 */
export function login(user: string, password: Sensitive): SaslMechanism {
  let prompts = 0;
  return {
    name: 'LOGIN',
    async start() {
      return undefined;
    },
    async step() {
      prompts += 1;
      if (prompts === 1) return Buffer.from(user, 'utf8');
      if (prompts === 2) return Buffer.from(password.reveal(), 'utf8');
      throw badChallenge('LOGIN', 'the server asked for a third thing after the user name and password');
    },
    isComplete() {
      return prompts === 2;
    },
  };
}
