import type { Engine, Exchange } from '../engine.js';
import { describeResponseCode, Pop3AuthenticationError, type Pop3Error } from '../errors.js';
import { LineExchange, type SendOptions } from '../exchanges.js';
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
  const userLine = new LineExchange(encodeCommand('USER', user), options, () => undefined);
  const passLine = new LineExchange(encodeCommand('PASS', password), { ...options, onOk: () => (engine.state = 'transaction') }, () => undefined);
  if (capaBehind !== undefined && engine.pipelining) {
    // RFC 2449 PIPELINING: USER, PASS and CAPA in one write, their replies read in order. The
    // password goes no earlier than in lock-step in any way that matters: this runs only where
    // USER was allowed at all (TLS, or the caller's allowPlaintextAuth), and a server that refuses
    // USER refuses the PASS that follows it too (RFC 1939 section 7: PASS only after a +OK USER).
    capaBehind.sent = true;
    engine.submit(new LoginLines([userLine, passLine], capaBehind), AUTHORIZATION);
    // The first refusal is the one to report; the other's is then expected.
    passLine.promise.catch(() => {});
    await userLine.promise;
    await passLine.promise;
    return;
  }
  engine.submit(userLine, AUTHORIZATION);
  await userLine.promise;
  engine.submit(passLine, AUTHORIZATION);
  await passLine.promise;
}

/**
 * USER and PASS with CAPA behind them, in one write, when the server offered PIPELINING: their
 * replies, then CAPA's (answered whether the login passed or failed: CAPA is valid in
 * AUTHORIZATION too).
 */
class LoginLines implements Exchange {
  readonly barrier = true;
  readonly command: EncodedCommand;
  private answered = 0;
  constructor(
    private readonly lines: readonly LineExchange<undefined>[],
    private readonly capa: CapaBehind,
  ) {
    const commands = [...lines.map((line) => line.command), CapaBehind.command];
    this.command = {
      verb: commands[0]!.verb,
      bytes: Buffer.concat(commands.map((c) => c.bytes)),
      display: commands.map((c) => c.display).join('\n'),
    };
  }

  onStatus(status: StatusLine): 'done' | 'block' | 'more' {
    const line = this.lines[this.answered];
    if (line === undefined) return this.capa.onStatus(status);
    line.onStatus(status);
    this.answered += 1;
    return 'more';
  }

  onData(chunk: Buffer): void {
    this.capa.onData(chunk);
  }

  onEnd(): void {
    this.capa.onEnd();
  }

  onFail(error: Pop3Error): void {
    for (const line of this.lines.slice(this.answered)) line.onFail(error);
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
