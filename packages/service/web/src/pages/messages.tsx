import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import type { Session } from '../main.js';
import type { Account, MessagePage } from '../types.js';
import { Field, Loading, Problem, useLoad } from '../ui.js';
import { size, when } from '../words.js';

/** The filters live in the address (#/messages?account=1&from=...), so a page can be reloaded, shared and gone back to. */
function go(params: Record<string, string | undefined>): void {
  location.hash = `#/messages${query(params)}`;
}

export function MessagesPage(props: { session: Session; params: URLSearchParams }) {
  const { params } = props;
  const filters = {
    account: params.get('account') ?? undefined,
    from: params.get('from') ?? undefined,
    since: params.get('since') ?? undefined,
    until: params.get('until') ?? undefined,
    cursor: params.get('cursor') ?? undefined,
  };
  const accounts = useLoad(() => api<{ accounts: Account[] }>('/accounts'), []);
  const accountId = filters.account ?? (accounts.data?.accounts[0] === undefined ? undefined : String(accounts.data.accounts[0].id));
  const page = useLoad(
    async () => (accountId === undefined ? undefined : api<MessagePage>(`/accounts/${accountId}/messages${query({ from: filters.from, since: filters.since, until: filters.until, cursor: filters.cursor, limit: 50 })}`)),
    [accountId, filters.from, filters.since, filters.until, filters.cursor],
  );
  const [from, setFrom] = useState(filters.from ?? '');
  const [since, setSince] = useState(filters.since ?? '');
  const [until, setUntil] = useState(filters.until ?? '');
  const submit = (event: Event) => {
    event.preventDefault();
    go({ account: accountId, from, since, until });
  };
  return (
    <>
      <h1>Messages</h1>
      <form class="filters" role="search" aria-label="Filter the messages" onSubmit={submit}>
        <Field label="Account">
          <select name="account" value={accountId ?? ''} onChange={(e) => go({ account: e.currentTarget.value, from, since, until })}>
            {(accounts.data?.accounts ?? []).map((a) => (
              <option key={a.id} value={String(a.id)}>
                {a.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="From contains">
          <input name="from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </Field>
        <Field label="Since">
          <input name="since" type="date" value={since} onInput={(e) => setSince(e.currentTarget.value)} />
        </Field>
        <Field label="Before">
          <input name="until" type="date" value={until} onInput={(e) => setUntil(e.currentTarget.value)} />
        </Field>
        <button type="submit" class="primary">
          Filter
        </button>
      </form>
      <Problem error={accounts.error ?? page.error} />
      {accounts.data !== undefined && accounts.data.accounts.length === 0 ? <p>No accounts, so no messages.</p> : null}
      {page.data === undefined ? (
        accountId === undefined || page.error !== undefined ? null : (
          <Loading what="messages" />
        )
      ) : (
        <MessageTable page={page.data} onNext={(cursor) => go({ account: accountId, from: filters.from, since: filters.since, until: filters.until, cursor })} />
      )}
    </>
  );
}

function MessageTable(props: { page: MessagePage; onNext: (cursor: string) => void }) {
  const { messages, next } = props.page;
  if (messages.length === 0) return <p>No messages match.</p>;
  return (
    <>
      <table class="messages">
        <thead>
          <tr>
            <th scope="col">Date</th>
            <th scope="col">From</th>
            <th scope="col">Subject</th>
            <th scope="col">Size</th>
          </tr>
        </thead>
        <tbody>
          {messages.map((m) => (
            <tr key={m.id} data-message={m.id}>
              <td>{when(m.date ?? m.storedAt)}</td>
              <td>{m.from === null ? '—' : m.from.name === '' ? m.from.address : `${m.from.name} <${m.from.address}>`}</td>
              <td>
                <a href={`#/messages/${m.id}`}>{m.subject === null || m.subject === '' ? '(no subject)' : m.subject}</a>
                {m.hasAttachments ? <span class="muted"> · attachments</span> : null}
                {m.headersOnly ? <span class="muted"> · headers only</span> : null}
              </td>
              <td>{size(m.size)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {next === null ? null : (
        <button type="button" onClick={() => props.onNext(next)}>
          Next page
        </button>
      )}
    </>
  );
}
