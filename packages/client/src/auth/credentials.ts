import { Pop3AuthenticationError, Pop3UsageError } from '../errors.js';
import { Sensitive } from '../protocol/command.js';
import { parseAuthMechanism, type AuthMechanism } from './select.js';

/**
 * An OAuth 2.0 access token, or a function that returns one (it may be async). The function is
 * called once per login, when a token mechanism has been chosen, so it can hand out a fresh token.
 */
export type AccessToken = string | (() => string | Promise<string>);

/** What `login()` takes; `connect()` reads the same fields from its options. */
export interface LoginCredentials {
  readonly user: string;
  readonly password?: string | undefined;
  /** For XOAUTH2 and OAUTHBEARER, instead of a password. */
  readonly accessToken?: AccessToken | undefined;
  /** The mechanism to use; by default the strongest the server offers that fits the credentials. */
  readonly auth?: AuthMechanism | undefined;
}

/** Checked credentials, each secret wrapped where it enters, so no trace or error can show it. */
export type Credentials =
  | { readonly kind: 'password'; readonly user: string; readonly password: Sensitive; readonly auth: AuthMechanism | undefined }
  | {
      readonly kind: 'token';
      readonly user: string;
      /** The token, fetched on the first call of a login and the same for its later calls. */
      readonly token: () => Promise<Sensitive>;
      readonly auth: AuthMechanism | undefined;
    };

/**
 * RFC 6750 section 2.1 b64token: what a bearer token is made of. Anything else (a ^A, a space, a
 * line break) would end its field in XOAUTH2 or OAUTHBEARER early.
 */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Checks what the caller gave (JavaScript callers included) before anything is sent. */
export function readCredentials(input: LoginCredentials): Credentials {
  const { user, password, accessToken } = input;
  const auth = input.auth === undefined ? undefined : parseAuthMechanism(input.auth);
  if (typeof user !== 'string' || user === '') throw usage('A user name is needed to log in');
  if (password !== undefined && accessToken !== undefined) throw usage('Give a password or an accessToken, not both');
  if (password !== undefined) {
    if (typeof password !== 'string') throw usage('password must be a string');
    return { kind: 'password', user, password: new Sensitive(password), auth };
  }
  if (typeof accessToken !== 'string' && typeof accessToken !== 'function') {
    throw usage('A password or an accessToken (a string, or a function returning one) is needed to log in');
  }
  let token: Promise<Sensitive> | undefined;
  return { kind: 'token', user, auth, token: () => (token ??= fetchToken(accessToken)) };
}

async function fetchToken(source: AccessToken): Promise<Sensitive> {
  let value: unknown;
  try {
    value = typeof source === 'string' ? source : await source();
  } catch (error) {
    throw new Pop3AuthenticationError(`The accessToken function failed: ${error instanceof Error ? error.message : String(error)}`, {
      code: 'POP3_AUTH_TOKEN_FAILED',
      cause: error,
    });
  }
  if (typeof value !== 'string' || value === '') {
    throw new Pop3AuthenticationError('The accessToken function returned no token', { code: 'POP3_AUTH_TOKEN_FAILED' });
  }
  if (!B64TOKEN.test(value)) throw usage('The access token has characters a bearer token cannot have (RFC 6750 section 2.1)');
  return new Sensitive(value);
}

function usage(message: string): Pop3UsageError {
  return new Pop3UsageError(message, { code: 'POP3_INVALID_ARGUMENT' });
}
