import type { Capabilities } from '../capabilities.js';
import type { CapaBehind } from '../commands/capa.js';
import type { Engine } from '../engine.js';
import { Pop3Error, Pop3UsageError } from '../errors.js';
import type { Sensitive } from '../protocol/command.js';
import { apop, apopTimestamp } from './apop.js';
import { cramMd5 } from './cram-md5.js';
import type { Credentials } from './credentials.js';
import { login } from './login.js';
import { oauthBearer } from './oauthbearer.js';
import { plain } from './plain.js';
import { runSasl } from './sasl.js';
import { scram } from './scram.js';
import {
  chooseMechanisms,
  PASSWORD_MECHANISMS,
  TOKEN_MECHANISMS,
  type AuthMechanism,
  type PasswordMechanism,
  type ServerOffer,
  type TokenMechanism,
} from './select.js';
import { userPass } from './user-pass.js';
import { xoauth2 } from './xoauth2.js';

export interface AuthContext {
  /** From the last CAPA: after STLS when there was one (RFC 2595 section 4). */
  readonly capabilities: Capabilities;
  /** The greeting's text, where an APOP timestamp may be. */
  readonly greeting: string;
  readonly secure: boolean;
  readonly allowPlaintextAuth: boolean;
  /** Where we connected: named in errors, and in OAUTHBEARER's message. */
  readonly host: string;
  readonly port: number;
  /**
   * A CAPA to pipeline behind the login's last line, when the server offered PIPELINING: its
   * `sent` says whether it went, and its promise then holds the answer.
   */
  readonly capaBehind?: CapaBehind | undefined;
}

/**
 * Logs in, and returns the mechanism that did it.
 *
 * One login attempt per call: a mechanism that rejects the credentials (or answers -ERR with a
 * response code, or after any part of them was sent) ends it, because trying the same password
 * with the next mechanism is how accounts get locked. The next mechanism is tried only when the
 * server refuses a bare "AUTH X" with a plain -ERR, and the caller did not name X: the server never
 * saw the credentials, so it only said it will not do X (a CAPA that lists what a backend cannot
 * do, an OAUTHBEARER not enabled for the tenant).
 */
export async function authenticate(engine: Engine, credentials: Credentials, context: AuthContext): Promise<AuthMechanism> {
  if (engine.state !== 'authorization' && !engine.closed) {
    throw new Pop3UsageError(`Already logged in; the session is in the ${engine.state.toUpperCase()} state`, {
      code: 'POP3_INVALID_STATE',
    });
  }
  const offer: ServerOffer = { capabilities: context.capabilities, apopTimestamp: apopTimestamp(context.greeting) };
  const channel = { secure: context.secure, allowPlaintextAuth: context.allowPlaintextAuth, host: context.host };
  if (credentials.kind === 'password') {
    const candidates = chooseMechanisms(PASSWORD_MECHANISMS, 'password', credentials.auth, offer, channel);
    return tryInTurn(candidates, (mechanism) => withPassword(engine, mechanism, credentials.user, credentials.password, offer, context.capaBehind));
  }
  const candidates = chooseMechanisms(TOKEN_MECHANISMS, 'access token', credentials.auth, offer, channel);
  return tryInTurn(candidates, (mechanism) => withToken(engine, mechanism, credentials.user, credentials.token, context));
}

/** Tries `candidates` (never empty: chooseMechanisms throws instead) until one logs in or fails for real. */
async function tryInTurn<M extends AuthMechanism>(candidates: readonly M[], attempt: (mechanism: M) => Promise<void>): Promise<M> {
  let refusal: unknown;
  for (const mechanism of candidates) {
    try {
      await attempt(mechanism);
      return mechanism;
    } catch (error) {
      if (!(error instanceof Pop3Error && error.code === 'POP3_AUTH_MECHANISM_UNAVAILABLE')) throw error;
      refusal = error;
    }
  }
  throw refusal;
}

function withPassword(
  engine: Engine,
  mechanism: PasswordMechanism,
  user: string,
  password: Sensitive,
  offer: ServerOffer,
  capaBehind: CapaBehind | undefined,
): Promise<void> {
  switch (mechanism) {
    case 'USER':
      return userPass(engine, user, password, capaBehind);
    case 'APOP':
      // Chosen only when the greeting has a timestamp.
      return apop(engine, user, password, offer.apopTimestamp as string);
    case 'PLAIN':
      return runSasl(engine, plain(user, password), capaBehind);
    case 'LOGIN':
      return runSasl(engine, login(user, password), capaBehind);
    case 'CRAM-MD5':
      return runSasl(engine, cramMd5(user, password), capaBehind);
    case 'SCRAM-SHA-1':
      return runSasl(engine, scram('sha1', user, password), capaBehind);
    case 'SCRAM-SHA-256':
      return runSasl(engine, scram('sha256', user, password), capaBehind);
  }
}

function withToken(
  engine: Engine,
  mechanism: TokenMechanism,
  user: string,
  token: () => Promise<Sensitive>,
  context: AuthContext,
): Promise<void> {
  switch (mechanism) {
    case 'OAUTHBEARER':
      return runSasl(engine, oauthBearer(user, token, context.host, context.port));
    case 'XOAUTH2':
      return runSasl(engine, xoauth2(user, token));
  }
}
