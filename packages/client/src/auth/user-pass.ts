import type { Engine } from '../engine.js';
import { describeResponseCode, Pop3AuthenticationError } from '../errors.js';
import { sendLine, type SendOptions } from '../exchanges.js';
import { encodeCommand, Sensitive } from '../protocol/command.js';
import type { StatusLine } from '../protocol/status.js';
import { AUTHORIZATION } from '../commands/states.js';

/**
 * RFC 1939 section 7 USER/PASS. The password is clear text on the wire: the caller decides
 * whether that is allowed (see `Pop3Client`), not this function.
 *
 * A -ERR to USER or PASS is an authentication failure. Its [AUTH], [IN-USE], [LOGIN-DELAY] or
 * [SYS/TEMP] code (RFC 2449, RFC 3206) decides whether retrying can help.
 */
export async function userPass(engine: Engine, user: string, password: Sensitive): Promise<void> {
  const options: SendOptions = { allowedIn: AUTHORIZATION, barrier: true, onError: authenticationError };
  await sendLine(engine, encodeCommand('USER', user), options);
  await sendLine(engine, encodeCommand('PASS', password), {
    ...options,
    onOk: () => {
      engine.state = 'transaction';
    },
  });
}

export function authenticationError(status: StatusLine, command: { verb: string; display: string }): Pop3AuthenticationError {
  return new Pop3AuthenticationError(`Login failed at ${command.verb}: ${withResponseCode(status)}`, {
    code: 'POP3_AUTH_FAILED',
    command: command.display,
    response: status.text,
    responseCode: status.code,
  });
}

/** The server's text after the response code and its meaning: `[IN-USE] (another session holds the mailbox; ...): busy`. */
export function withResponseCode(status: StatusLine): string {
  const code = describeResponseCode(status.code);
  const text = status.text || (code === '' ? '-ERR' : '');
  return code === '' ? text : text === '' ? code : `${code}: ${text}`;
}
