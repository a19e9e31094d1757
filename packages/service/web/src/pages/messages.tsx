import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import type { Session } from '../main.js';
import type { Account, MessagePage, MessageSummary } from '../types.js';
import { Action, Field, Loading, Problem, useLoad } from '../ui.js';
import { size, when } from '../words.js';

const FILTERS = ['q', 'accountId', 'from', 'since', 'until', 'seen', 'flagged', 'deleted'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number] | 'cursor', string>>;

/** The filters live in the address (#/messages?q=...&accountId=1), so a search can be reloaded, shared and gone back to. */
function go(filters: Filters): void {
  location.hash = `#/messages${query(filters)}`;
}

export function MessagesPage(props: { session: Session; params: URLSearchParams }) {
  const { params } = props;
  const filters: Filters = {};
  for (const key of [...FILTERS, 'cursor'] as const) {
    const value = params.get(key);
    if (value !== null && value !== '') filters[key] = value;
  }
  // The account page links here with ?account=ID.
  if (filters.accountId === undefined && params.get('account') !== null) filters.accountId = params.get('account') ?? undefined;
  const key = JSON.stringify(filters);
  const accounts = useLoad(() => api<{ accounts: Account[] }>('/accounts'), []);
  const page = useLoad(() => api<MessagePage>(`/messages${query({ ...filters, limit: 50 })}`), [key]);
  const [draft, setDraft] = useState<Filters>(filters);
  const [draftKey, setDraftKey] = useState(key);
  // The address changed (a link, back): the form shows what is applied.
  if (draftKey !== key) {
    setDraft(filters);
    setDraftKey(key);
  }
  const set = (name: keyof Filters) => (event: { currentTarget: { value: string } }) => setDraft({ ...draft, [name]: event.currentTarget.value });
  const submit = (event: Event) => {
    event.preventDefault();
    const { cursor: _cursor, ...rest } = draft;
    go(rest);
  };
  return (
    <>
      <h1>Messages</h1>
      <form class="filters" role="search" aria-label="Search the messages" onSubmit={submit}>
        <Field label="Search" hint='Words, "a phrase", -word, prefix*, from:, to:, subject:, body:'>
          <input name="q" type="search" value={draft.q ?? ''} onInput={set('q')} />
        </Field>
        <Field label="Account">
          <select name="accountId" value={draft.accountId ?? ''} onChange={set('accountId')}>
            <option value="">All accounts</option>
            {(accounts.data?.accounts ?? []).map((a) => (
              <option key={a.id} value={String(a.id)}>
                {a.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="From contains">
          <input name="from" value={draft.from ?? ''} onInput={set('from')} />
        </Field>
        <Field label="Since">
          <input name="since" type="date" value={draft.since ?? ''} onInput={set('since')} />
        </Field>
        <Field label="Before">
          <input name="until" type="date" value={draft.until ?? ''} onInput={set('until')} />
        </Field>
        <Field label="Read">
          <select name="seen" value={draft.seen ?? ''} onChange={set('seen')}>
            <option value="">Any</option>
            <option value="false">Unread</option>
            <option value="true">Read</option>
          </select>
        </Field>
        <Field label="Flagged">
          <select name="flagged" value={draft.flagged ?? ''} onChange={set('flagged')}>
            <option value="">Any</option>
            <option value="true">Flagged</option>
            <option value="false">Not flagged</option>
          </select>
        </Field>
        <Field label="Deleted">
          <select name="deleted" value={draft.deleted ?? ''} onChange={set('deleted')}>
            <option value="">Hidden</option>
            <option value="include">Shown too</option>
            <option value="only">Only deleted</option>
          </select>
        </Field>
        <button type="submit" class="primary">
          Search
        </button>
      </form>
      <Problem error={accounts.error ?? page.error} />
      {page.data === undefined ? (
        page.error === undefined ? <Loading what="messages" /> : null
      ) : (
        <MessageTable page={page.data} session={props.session} reload={page.reload} onNext={(cursor) => go({ ...filters, cursor })} searching={filters.q !== undefined} />
      )}
    </>
  );
}

function subjectOf(m: { subject: string | null }): string {
  return m.subject === null || m.subject === '' ? '(no subject)' : m.subject;
}

function MessageRow(props: { message: MessageSummary; session: Session; reload: () => void }) {
  const { message: m, session } = props;
  const change = (body: Record<string, boolean>) => async () => {
    await api(`/messages/${m.id}`, { method: 'PATCH', body });
    props.reload();
  };
  return (
    <tr data-message={m.id} class={m.seen ? 'seen' : 'unseen'}>
      <td>{when(m.date ?? m.storedAt)}</td>
      <td>{m.from === null ? '—' : m.from.name === '' ? m.from.address : `${m.from.name} <${m.from.address}>`}</td>
      <td>
        {m.flagged ? (
          <span class="flag" title="flagged">
            ⚑ <span class="visually-hidden">flagged</span>
          </span>
        ) : null}
        <a href={`#/messages/${m.id}`}>{subjectOf(m)}</a>
        {m.seen ? null : <span class="muted"> · unread</span>}
        {m.hasAttachments ? <span class="muted"> · attachments</span> : null}
        {m.headersOnly ? <span class="muted"> · headers only</span> : null}
        {m.deletedAt == null ? null : <span class="muted"> · deleted</span>}
      </td>
      <td>{size(m.size)}</td>
      {session.can('write') ? (
        <td class="row-actions">
          <Action label={`${m.flagged ? 'Unflag' : 'Flag'} “${subjectOf(m)}”`} run={change({ flagged: !m.flagged })} />
          <Action label={`Mark “${subjectOf(m)}” ${m.seen ? 'unread' : 'read'}`} run={change({ seen: !m.seen })} />
        </td>
      ) : null}
    </tr>
  );
}

function MessageTable(props: { page: MessagePage; session: Session; reload: () => void; onNext: (cursor: string) => void; searching: boolean }) {
  const { messages, next } = props.page;
  if (messages.length === 0) return <p>No messages match.</p>;
  return (
    <>
      <p class="muted">{props.searching ? 'Best matches first.' : 'Newest first.'}</p>
      <table class="messages">
        <thead>
          <tr>
            <th scope="col">Date</th>
            <th scope="col">From</th>
            <th scope="col">Subject</th>
            <th scope="col">Size</th>
            {props.session.can('write') ? (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {messages.map((m) => (
            <MessageRow key={m.id} message={m} session={props.session} reload={props.reload} />
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
