import { api } from '../api.js';
import type { Session } from '../main.js';
import type { Account, AccountStatus } from '../types.js';
import { Loading, Problem, StateBadge, useLoad } from '../ui.js';
import { inWords, when } from '../words.js';

export function AccountsPage(props: { session: Session }) {
  const { data, error } = useLoad(async () => {
    const [{ accounts }, overview] = await Promise.all([api<{ accounts: Account[] }>('/accounts'), api<{ accounts: AccountStatus[] }>('/overview/accounts')]);
    const status = new Map(overview.accounts.map((a) => [a.id, a]));
    return accounts.map((account) => ({ account, status: status.get(account.id) }));
  }, []);
  return (
    <>
      <div class="title">
        <h1>Accounts</h1>
        {props.session.can('write') ? (
          <a class="button primary" href="#/accounts/new">
            Add an account
          </a>
        ) : null}
      </div>
      <Problem error={error} />
      {data === undefined ? (
        error === undefined ? <Loading what="accounts" /> : null
      ) : data.length === 0 ? (
        <p>No accounts yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Account</th>
              <th scope="col">State</th>
              <th scope="col">Last run</th>
              <th scope="col">Next sync</th>
              <th scope="col">Messages</th>
              <th scope="col">Last error</th>
            </tr>
          </thead>
          <tbody>
            {data.map(({ account, status }) => (
              <tr key={account.id} data-account={account.id}>
                <td>
                  <a href={`#/accounts/${account.id}`}>{account.name}</a>
                  <div class="muted">
                    {account.username}@{account.host}:{account.port}
                  </div>
                </td>
                <td>{status === undefined ? null : <StateBadge state={status.syncing ? 'syncing' : status.state} />}</td>
                <td>{status?.lastRun == null ? 'never' : `${when(status.lastRun.startedAt)} (${status.lastRun.status}, ${status.lastRun.newMessages} new)`}</td>
                <td>{account.paused ? 'paused' : account.syncInterval === null ? 'on request' : when(status?.nextSyncAt ?? account.nextSyncAt)}</td>
                <td>{status?.messageCount ?? '—'}</td>
                <td class="last-error">{status?.lastError == null ? '' : status.state === 'failing' ? inWords(status.lastRun?.errorCode, status.lastError) : status.lastError}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
