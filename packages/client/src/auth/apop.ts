import { createHash } from 'node:crypto';
import { AUTHORIZATION } from '../commands/states.js';
import type { Engine } from '../engine.js';
import { Pop3UsageError } from '../errors.js';
import { sendLine } from '../exchanges.js';
import { encodeCommand, Sensitive } from '../protocol/command.js';
import { authenticationError } from './user-pass.js';

/** Longest timestamp accepted: a msg-id (RFC 5322 section 3.6.4) fits on one 998-octet line. */
export const MAX_APOP_TIMESTAMP = 998;

/**
 * The APOP timestamp in a greeting (RFC 1939 section 7): the first `<...>` holding an "@" and only
 * printable ASCII, such as `<1896.697170952@dbc.mtview.ca.us>`; undefined when there is none.
 *
 * One pass with indexOf: each character is looked at a bounded number of times, whatever the
 * greeting holds. Python's poplib matched it with a backtracking regex, and a greeting of many '<'
 * took it quadratic time (CVE-2018-1060).
 */
export function apopTimestamp(greeting: string): string | undefined {
  let open = greeting.indexOf('<');
  while (open !== -1) {
    const close = greeting.indexOf('>', open + 1);
    if (close === -1) return undefined;
    // In "<a <b@c>" the timestamp is "<b@c>": the last '<' before the '>'. The backward search
    // stops at `open` at the latest, so it looks only at what the forward one just passed.
    const start = greeting.lastIndexOf('<', close);
    const candidate = greeting.slice(start, close + 1);
    const at = candidate.indexOf('@');
    if (candidate.length <= MAX_APOP_TIMESTAMP && at > 1 && at < candidate.length - 2 && /^[\x21-\x7e]+$/.test(candidate)) {
      return candidate;
    }
    open = greeting.indexOf('<', close + 1);
  }
  return undefined;
}

/**
 * RFC 1939 section 7 APOP: the user name and MD5(timestamp + password) in hex. The password is not
 * sent, but the digest can be attacked offline, fast: hence TLS or an opt-in (see select.ts).
 */
export async function apop(engine: Engine, user: string, password: Sensitive, timestamp: string): Promise<void> {
  // The server splits "APOP name digest" at spaces.
  if (/\s/.test(user)) {
    throw new Pop3UsageError('APOP cannot carry a user name containing a space', { code: 'POP3_INVALID_ARGUMENT', command: 'APOP' });
  }
  const digest = createHash('md5').update(timestamp, 'latin1').update(password.reveal(), 'utf8').digest('hex');
  await sendLine(engine, encodeCommand('APOP', user, new Sensitive(digest)), {
    allowedIn: AUTHORIZATION,
    barrier: true,
    onError: authenticationError,
    onOk: () => {
      engine.state = 'transaction';
    },
  });
}
