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

/** A function the client calls at each login: the fixed token, or a fresh one. */
export function tokenSource(settings: OAuthSettings): () => Promise<string> {
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
    let response: Response;
    try {
      response = await fetch(settings.tokenUrl, { method: 'POST', body: form, signal: AbortSignal.timeout(REFRESH_TIMEOUT_MS) });
    } catch (cause) {
      throw new OAuthRefreshError(`the token endpoint could not be reached: ${(cause as Error).message}`, { cause });
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
