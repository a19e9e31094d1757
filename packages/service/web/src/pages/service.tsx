import { api } from '../api.js';
import type { ServiceStatus } from '../types.js';
import { Loading, Problem, useLoad } from '../ui.js';
import { when } from '../words.js';

export function ServicePage() {
  const status = useLoad(() => api<ServiceStatus>('/service'), []);
  if (status.data === undefined) return status.error === undefined ? <Loading what="the service's state" /> : <Problem error={status.error} />;
  const s = status.data;
  return (
    <>
      <h1>Service</h1>
      <dl class="facts">
        <dt>popwire-service</dt>
        <dd>{s.version}</dd>
        <dt>popwire library</dt>
        <dd>{s.libraryVersion}</dd>
        <dt>Node.js</dt>
        <dd>{s.node}</dd>
        <dt>Started</dt>
        <dd>{when(s.startedAt)}</dd>
        <dt>Sync jobs waiting</dt>
        <dd>{s.queueDepth}</dd>
        <dt>Accounts</dt>
        <dd>{s.accounts}</dd>
        <dt>Messages stored</dt>
        <dd>{s.messages}</dd>
        <dt>This token</dt>
        <dd>
          {s.token.scopes.join(', ')}
          {s.token.restricted ? ', restricted to some accounts' : ''}
        </dd>
      </dl>
      <h2>Running syncs</h2>
      {s.runningSyncs.length === 0 ? (
        <p>None now.</p>
      ) : (
        <ul>
          {s.runningSyncs.map((r) => (
            <li key={r.accountId}>
              <a href={`#/accounts/${r.accountId}`}>{r.name}</a> <span class="muted">(lease until {when(r.until)})</span>
            </li>
          ))}
        </ul>
      )}
      <button type="button" onClick={status.reload}>
        Refresh
      </button>
    </>
  );
}
