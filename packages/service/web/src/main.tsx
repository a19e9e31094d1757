import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, currentToken, onSignOut, signIn, signOut, takeSignOutReason } from './api.js';
import { AccountPage, NewAccountPage } from './pages/account.js';
import { AccountsPage } from './pages/accounts.js';
import { MessagePage } from './pages/message.js';
import { MessagesPage } from './pages/messages.js';
import { ServicePage } from './pages/service.js';
import { TokensPage } from './pages/tokens.js';
import { WebhooksPage } from './pages/webhooks.js';
import type { ServiceStatus } from './types.js';
import { describe, Field } from './ui.js';

/** What the signed-in token may do: the console offers nothing else (the API would refuse it anyway). */
export interface Session {
  readonly scopes: ReadonlySet<string>;
  can(scope: 'read' | 'write' | 'admin'): boolean;
}

function sessionOf(status: ServiceStatus): Session {
  const scopes = new Set(status.token.scopes);
  return { scopes, can: (scope) => scopes.has('admin') || scopes.has(scope) };
}

/** `#/messages/12?x=1` -> ['messages', '12'] and its parameters. Hash routes: the service serves one page. */
export function useRoute(): { parts: string[]; params: URLSearchParams } {
  const read = () => {
    const [path = '', search = ''] = location.hash.replace(/^#\/?/, '').split('?');
    return { parts: path.split('/').filter((p) => p !== ''), params: new URLSearchParams(search) };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}

const PAGES = [
  ['accounts', 'Accounts'],
  ['messages', 'Messages'],
  ['webhooks', 'Webhooks'],
  ['tokens', 'Tokens'],
  ['service', 'Service'],
] as const;

function SignIn(props: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(() => takeSignOutReason());
  const submit = async (event: Event) => {
    event.preventDefault();
    signIn(token.trim());
    try {
      props.onSignedIn(sessionOf(await api<ServiceStatus>('/service')));
    } catch (failure) {
      sessionStorage.clear();
      setError(describe(failure));
    }
  };
  return (
    <main class="signin">
      <h1>popwire console</h1>
      <form onSubmit={(event) => void submit(event)}>
        <Field label="API token" hint="Made with `popwire token create`. Kept in this tab only, until you sign out or close it.">
          <input type="password" name="token" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        </Field>
        <button type="submit" class="primary">
          Sign in
        </button>
        {error === null ? null : (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function Console(props: { session: Session }) {
  const { parts, params } = useRoute();
  const [page = 'accounts', id] = parts;
  const { session } = props;
  useEffect(() => {
    const label = PAGES.find(([key]) => key === page)?.[1] ?? 'Accounts';
    document.title = `${label} · popwire console`;
  }, [page, id]);
  let content;
  if (page === 'accounts' && id === 'new') content = <NewAccountPage session={session} />;
  else if (page === 'accounts' && id !== undefined) content = <AccountPage id={Number(id)} session={session} params={params} />;
  else if (page === 'messages' && id !== undefined) content = <MessagePage id={Number(id)} session={session} />;
  else if (page === 'messages') content = <MessagesPage session={session} params={params} />;
  else if (page === 'webhooks') content = <WebhooksPage session={session} />;
  else if (page === 'tokens') content = <TokensPage session={session} />;
  else if (page === 'service') content = <ServicePage />;
  else content = <AccountsPage session={session} />;
  return (
    <>
      <header>
        <span class="brand">popwire</span>
        <nav aria-label="Console">
          <ul>
            {PAGES.filter(([key]) => key !== 'tokens' || session.can('admin')).map(([key, label]) => (
              <li key={key}>
                <a href={`#/${key}`} aria-current={page === key ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main>{content}</main>
    </>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(currentToken() === null ? null : undefined);
  useEffect(() => {
    onSignOut(() => setSession(null));
    // A reload of a signed-in tab: the token is still in sessionStorage; ask what it may do.
    if (currentToken() !== null) api<ServiceStatus>('/service').then((status) => setSession(sessionOf(status)), () => setSession(null));
  }, []);
  if (session === undefined) return <p class="muted">Signing in…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  return <Console session={session} />;
}

const root = document.getElementById('app')!;
// The page's "Loading…" placeholder is not Preact's to diff: cleared, then rendered into.
root.textContent = '';
render(<App />, root);
