import type { onRequestHookHandler } from 'fastify';
import type { TokenStore } from '../store/tokens.js';
import { ApiError } from './errors.js';

/** RFC 6750 section 2.1: `Bearer` and a token of token68 characters. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The bearer-token check, as an onRequest hook: it runs before the body is read, so a request
 * without a valid token gets its 401 without its body being parsed or validated, and learns
 * nothing (not even whether the account or message it names exists). A token past its expiry
 * is told so, since whoever holds it needs to know to get a new one; any other refusal says
 * the same thing. What the token may do is decided next, by http/access.ts.
 */
export function requireToken(tokens: TokenStore): onRequestHookHandler {
  return async (request) => {
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    const check = token === undefined ? undefined : await tokens.check(token);
    if (check?.ok === true) {
      request.grant = check.grant;
      return;
    }
    if (check?.reason === 'expired') {
      throw new ApiError(401, 'UNAUTHORIZED', `this token expired at ${new Date(check.expiredAt).toISOString()}; make a new one (popwire token create)`);
    }
    if (token !== undefined) {
      // The usual cause: a token made with `popwire token create` on another store than this
      // service's (another --store, POPWIRE_STORE or folder). Which store is not said: the
      // client learns nothing about the deployment, the person running it reads it at start-up.
      throw new ApiError(401, 'UNAUTHORIZED', 'this bearer token is not known to this service: it may have been made for another store (popwire token create --store must name the store popwire serve uses), or revoked');
    }
    throw new ApiError(401, 'UNAUTHORIZED', 'a valid bearer token is required (Authorization: Bearer <token>)');
  };
}
