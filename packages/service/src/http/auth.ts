import type { onRequestHookHandler } from 'fastify';
import type { TokenStore } from '../store/tokens.js';
import { ApiError } from './errors.js';

/** RFC 6750 section 2.1: `Bearer` and a token of token68 characters. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The bearer-token check, as an onRequest hook: it runs before the body is read, so a request
 * without a valid token gets its 401 without its body being parsed or validated, and learns
 * nothing (not even whether the account or message it names exists).
 */
export function requireToken(tokens: TokenStore): onRequestHookHandler {
  return async (request) => {
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined || !(await tokens.verify(token))) {
      throw new ApiError(401, 'UNAUTHORIZED', 'a valid bearer token is required (Authorization: Bearer <token>)');
    }
  };
}
