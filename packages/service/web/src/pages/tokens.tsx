import { useState } from 'preact/hooks';
import { api } from '../api.js';
import type { Session } from '../main.js';
import type { TokenInfo } from '../types.js';
import { Action, describe, Field, Loading, Problem, useLoad } from '../ui.js';
import { when } from '../words.js';

const SCOPES = ['admin', 'read', 'write', 'metrics'] as const;

export function TokensPage(props: { session: Session }) {
  const tokens = useLoad(() => api<{ tokens: TokenInfo[] }>('/tokens'), []);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Set<string>>(new Set(['read']));
  const [made, setMade] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  if (!props.session.can('admin')) return <p>Only an admin token can see the tokens.</p>;
  const create = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const { token } = await api<{ token: string }>('/tokens', { method: 'POST', body: { name, scopes: [...scopes] } });
      setMade(token);
      setName('');
      tokens.reload();
    } catch (failure) {
      setError(describe(failure));
    }
  };
  const toggle = (scope: string, on: boolean) => {
    const next = new Set(scopes);
    if (on) next.add(scope);
    else next.delete(scope);
    setScopes(next);
  };
  return (
    <>
      <h1>Tokens</h1>
      <Problem error={tokens.error} />
      {tokens.data === undefined ? (
        tokens.error === undefined ? <Loading what="tokens" /> : null
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Scopes</th>
              <th scope="col">Accounts</th>
              <th scope="col">Made</th>
              <th scope="col">Last used</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {tokens.data.tokens.map((t) => (
              <tr key={t.id}>
                <td>{t.name}</td>
                <td>{t.scopes.join(', ')}</td>
                <td>{t.accounts === 'all' ? 'all' : t.accounts.map((a) => a.key).join(', ') || 'none'}</td>
                <td>{when(t.createdAt)}</td>
                <td>{when(t.lastUsedAt)}</td>
                <td>{t.expiresAt === null ? 'never' : when(t.expiresAt)}</td>
                <td>
                  <Action
                    label={`Revoke ${t.name}`}
                    kind="danger"
                    run={async () => {
                      await api(`/tokens/${t.id}`, { method: 'DELETE' });
                      tokens.reload();
                    }}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <section aria-labelledby="new-token-title">
        <h2 id="new-token-title">Make a token</h2>
        <form onSubmit={(event) => void create(event)}>
          <Field label="Name">
            <input name="tokenName" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
          <fieldset>
            <legend>Scopes</legend>
            {SCOPES.map((scope) => (
              <label key={scope} class="check">
                <input type="checkbox" name={`scope-${scope}`} checked={scopes.has(scope)} onChange={(e) => toggle(scope, e.currentTarget.checked)} /> {scope}
              </label>
            ))}
          </fieldset>
          <button type="submit" class="primary" disabled={scopes.size === 0}>
            Make the token
          </button>
          <Problem error={error} />
        </form>
        {made === undefined ? null : (
          <p role="status" class="notice">
            The new token, shown this once: <code class="token">{made}</code>
          </p>
        )}
      </section>
    </>
  );
}
