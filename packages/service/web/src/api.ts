/**
 * The console's only way to the service: fetch to /v1 with the token as a bearer header.
 * The token lives in sessionStorage (this tab only, gone when it closes), never in a cookie,
 * so another site cannot make the browser send it (no CSRF), and no page of another origin
 * can read it. Requests carry no credentials of any other kind.
 */
const KEY = 'popwire.console.token';

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let signedOut: () => void = () => {};

export function onSignOut(listener: () => void): void {
  signedOut = listener;
}

export function currentToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function signIn(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
  signedOut();
}

async function request(path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${currentToken() ?? ''}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`/v1${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? null : JSON.stringify(init.body),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (response.ok) return response;
  const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  const failure = new ApiFailure(response.status, body?.error?.code ?? `HTTP_${response.status}`, body?.error?.message ?? response.statusText);
  // A token revoked or expired while the console was open: back to the sign-in form, saying why.
  if (response.status === 401) {
    sessionStorage.setItem(`${KEY}.why`, failure.message);
    signOut();
  }
  throw failure;
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const response = await request(path, init);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export async function apiBlob(path: string): Promise<Blob> {
  return (await request(path)).blob();
}

export function takeSignOutReason(): string | null {
  const why = sessionStorage.getItem(`${KEY}.why`);
  sessionStorage.removeItem(`${KEY}.why`);
  return why;
}

export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
