import type { Engine, Exchange } from '../engine.js';
import { describeResponseCode, Pop3AuthenticationError, type Pop3Error } from '../errors.js';
import { LineExchange, sendLine, type SendOptions } from '../exchanges.js';
import { encodeCommand, Sensitive, type EncodedCommand } from '../protocol/command.js';
import { CapaBehind } from '../commands/capa.js';
import type { StatusLine } from '../protocol/status.js';
import { AUTHORIZATION } from '../commands/states.js';

/**
 * RFC 1939 section 7 USER/PASS. The password is clear text on the wire: the caller decides
 * whether that is allowed (see `Pop3Client`), not this function.
 *
 * A -ERR to USER or PASS is an authentication failure. Its [AUTH], [IN-USE], [LOGIN-DELAY] or
 * [SYS/TEMP] code (RFC 2449, RFC 3206) decides whether retrying can help.
 */
export async function userPass(engine: Engine, user: string, password: Sensitive, capaBehind?: CapaBehind): Promise<void> {
  const options: SendOptions = { allowedIn: AUTHORIZATION, barrier: true, onError: authenticationError };
  await sendLine(engine, encodeCommand('USER', user), options);
  const pass = new LineExchange(encodeCommand('PASS', password), { ...options, onOk: () => (engine.state = 'transaction') }, () => undefined);
  if (capaBehind !== undefined && engine.pipelining) {
    capaBehind.sent = true;
    engine.submit(new FollowedByCapa(pass, capaBehind), AUTHORIZATION);
  } else {
    engine.submit(pass, AUTHORIZATION);
  }
  await pass.promise;
}

/**
 * PASS with CAPA right behind it, in one write, when the server offered PIPELINING: PASS's reply,
 * then CAPA's (answered whether PASS passed or failed: CAPA is valid in AUTHORIZATION too).
 */
class FollowedByCapa implements Exchange {
  readonly barrier = true;
  readonly command: EncodedCommand;
  private passAnswered = false;
  constructor(
    private readonly pass: LineExchange<undefined>,
    private readonly capa: CapaBehind,
  ) {
    this.command = {
      verb: pass.command.verb,
      bytes: Buffer.concat([pass.command.bytes, CapaBehind.command.bytes]),
      display: `${pass.command.display}\n${CapaBehind.command.display}`,
    };
  }

  onStatus(status: StatusLine): 'done' | 'block' | 'more' {
    if (this.passAnswered) return this.capa.onStatus(status);
    this.pass.onStatus(status);
    this.passAnswered = true;
    return 'more';
  }

  onData(chunk: Buffer): void {
    this.capa.onData(chunk);
  }

  onEnd(): void {
    this.capa.onEnd();
  }

  onFail(error: Pop3Error): void {
    if (!this.passAnswered) this.pass.onFail(error);
    this.capa.onFail(error);
  }
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
