import type { AddressGuard } from '../net/guard.js';
import { addressRefusal, guardedDispatcher } from '../net/http.js';

/**
 * OAuth 2.0 access tokens for XOAUTH2 / OAUTHBEARER logins: a fixed token, or one refreshed with
 * a refresh token at the provider's token endpoint (RFC 6749 section 6), kept until shortly
 * before it expires.
 */
export interface OAuthSettings {
  readonly accessToken?: string | undefined;
  readonly refreshToken?: string | undefined;
  readonly tokenUrl?: string | undefined;
  readonly clientId?: string | undefined;
  readonly clientSecret?: string | undefined;
}

export class OAuthRefreshError extends Error {
  override readonly name = 'OAuthRefreshError';
  readonly code = 'OAUTH_REFRESH_FAILED';
}

/** Refresh this long before the token's announced expiry. */
const EARLY_MS = 60_000;
const REFRESH_TIMEOUT_MS = 30_000;

export interface TokenSourceOptions {
  /**
   * The outbound address policy, for a token endpoint an API caller chose: the request is sent
   * only where it allows, over https unless the endpoint's host is one the operator lists.
   * Without it (the CLI, run by the operator) the endpoint is trusted.
   */
  readonly network?: AddressGuard | undefined;
}

/** A function the client calls at each login: the fixed token, or a fresh one. */
export function tokenSource(settings: OAuthSettings, options: TokenSourceOptions = {}): () => Promise<string> {
  let cached: { token: string; until: number } | undefined;
  return async () => {
    if (settings.refreshToken === undefined || settings.tokenUrl === undefined) {
      if (settings.accessToken === undefined) throw new OAuthRefreshError('no access token and no refresh settings');
      return settings.accessToken;
    }
    if (cached !== undefined && Date.now() < cached.until) return cached.token;
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: settings.refreshToken });
    if (settings.clientId !== undefined) form.set('client_id', settings.clientId);
    if (settings.clientSecret !== undefined) form.set('client_secret', settings.clientSecret);
    if (options.network !== undefined && !isHttpUrl(settings.tokenUrl)) throw new OAuthRefreshError('the token endpoint must be an https URL');
    let response: Response;
    try {
      response = await fetch(settings.tokenUrl, {
        method: 'POST',
        body: form,
        // A redirect would carry the client secret to a place nobody checked (307 keeps the body).
        redirect: 'manual',
        signal: AbortSignal.timeout(REFRESH_TIMEOUT_MS),
        ...(options.network === undefined ? {} : { dispatcher: dispatcherFor(options.network, settings.tokenUrl) }),
      });
    } catch (cause) {
      const refused = addressRefusal(cause);
      throw new OAuthRefreshError(`the token endpoint could not be reached: ${refused?.message ?? (cause as Error).message}`, { cause: refused ?? cause });
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel().catch(() => {});
      throw new OAuthRefreshError(`the token endpoint answered with a redirect (HTTP ${response.status}), which is not followed`);
    }
    // The body may echo secrets: only its error code is kept.
    const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; error?: unknown };
    if (!response.ok || typeof body.access_token !== 'string') {
      throw new OAuthRefreshError(`the token endpoint refused the refresh (HTTP ${response.status}${typeof body.error === 'string' ? `, ${body.error}` : ''})`);
    }
    const seconds = typeof body.expires_in === 'number' ? body.expires_in : 3600;
    cached = { token: body.access_token, until: Date.now() + seconds * 1000 - EARLY_MS };
    return cached.token;
  };
}

/**
 * https endpoints go wherever the policy allows; a plain http one only to a host the operator
 * lists (`onlyAllowed`), since the client secret and refresh token would cross the network in
 * clear. Dispatchers are made once per guard and kept: each holds its connection pool.
 */
const dispatchers = new WeakMap<AddressGuard, { https: ReturnType<typeof guardedDispatcher>; http: ReturnType<typeof guardedDispatcher> }>();

function isHttpUrl(text: string): boolean {
  try {
    return ['https:', 'http:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

function dispatcherFor(guard: AddressGuard, tokenUrl: string): ReturnType<typeof guardedDispatcher> {
  let pair = dispatchers.get(guard);
  if (pair === undefined) {
    pair = { https: guardedDispatcher(guard), http: guardedDispatcher(guard, { onlyAllowed: true }) };
    dispatchers.set(guard, pair);
  }
  return new URL(tokenUrl).protocol === 'https:' ? pair.https : pair.http;
}
