import { useEffect, useState } from 'preact/hooks';
import { api, apiBlob } from '../api.js';
import type { Session } from '../main.js';
import { frameDocument } from '../message-frame.js';
import type { ParsedMessage } from '../types.js';
import { Action, Loading, Problem, useLoad } from '../ui.js';
import { size, when } from '../words.js';

/** An attachment fetched with the bearer token, then handed to the browser as a download. */
function Download(props: { messageId: number; n: number; filename: string | null; contentType: string; bytes: number }) {
  const [error, setError] = useState<string | undefined>(undefined);
  const save = async () => {
    try {
      const blob = await apiBlob(`/messages/${props.messageId}/attachments/${props.n}`);
      // application/octet-stream: the browser saves it, never shows it as a page of this origin.
      const url = URL.createObjectURL(new Blob([blob], { type: 'application/octet-stream' }));
      const link = document.createElement('a');
      link.href = url;
      link.download = props.filename ?? `attachment-${props.n}`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (failure) {
      setError(String(failure));
    }
  };
  return (
    <li>
      <button type="button" onClick={() => void save()}>
        Download {props.filename ?? `attachment ${props.n}`}
      </button>{' '}
      <span class="muted">
        {props.contentType}, {size(props.bytes)}
      </span>
      {error === undefined ? null : <span class="error">{error}</span>}
    </li>
  );
}

function HtmlBody(props: { html: string }) {
  const [remote, setRemote] = useState(false);
  return (
    <section aria-labelledby="html-title">
      <h2 id="html-title">HTML</h2>
      <label class="check">
        <input type="checkbox" name="remoteImages" checked={remote} onChange={(e) => setRemote(e.currentTarget.checked)} /> Load remote images (tells the sender you opened it)
      </label>
      {/* sandbox first, with no token: no script, no form, no popup, no navigation of the console. */}
      <iframe key={remote ? 'remote' : 'local'} sandbox="" srcdoc={frameDocument(props.html, remote)} title="The message's HTML, without scripts" referrerpolicy="no-referrer" class="html-body" />
    </section>
  );
}

export function MessagePage(props: { id: number; session: Session }) {
  const { id } = props;
  const message = useLoad(() => api<ParsedMessage>(`/messages/${id}`), [id]);
  const [showAll, setShowAll] = useState(false);
  useEffect(() => setShowAll(false), [id]);
  if (message.data === undefined) return message.error === undefined ? <Loading what="the message" /> : <Problem error={message.error} />;
  const m = message.data;
  const main = new Set(['from', 'to', 'cc', 'date', 'subject', 'reply-to']);
  const headers = showAll ? m.headers : m.headers.filter((h) => main.has(h.name.toLowerCase()));
  return (
    <>
      <p>
        <a href={`#/messages?accountId=${m.accountId}`}>← Messages</a>
      </p>
      <h1>{m.subject === null || m.subject === '' ? '(no subject)' : m.subject}</h1>
      <p class="muted">{when(m.date)}</p>
      <div class="actions">
        <MessageActions message={m} session={props.session} reload={message.reload} />
      </div>
      <section aria-labelledby="headers-title">
        <h2 id="headers-title">Headers</h2>
        <table class="headers">
          <tbody>
            {headers.map((h, i) => (
              <tr key={i}>
                <th scope="row">{h.name}</th>
                <td>{h.value}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <button type="button" aria-expanded={showAll} onClick={() => setShowAll(!showAll)}>
          {showAll ? 'Show the main headers' : `Show all ${m.headers.length} headers`}
        </button>
      </section>
      {m.text === null ? null : (
        <section aria-labelledby="text-title">
          <h2 id="text-title">Text</h2>
          <pre class="text-body" tabIndex={0}>
            {m.text}
          </pre>
        </section>
      )}
      {m.html === null ? null : <HtmlBody html={m.html} />}
      {m.attachments.length === 0 ? null : (
        <section aria-labelledby="attachments-title">
          <h2 id="attachments-title">Attachments</h2>
          <ul class="attachments">
            {m.attachments.map((a) => (
              <Download key={a.n} messageId={m.id} n={a.n} filename={a.filename} contentType={a.contentType} bytes={a.size} />
            ))}
          </ul>
        </section>
      )}
      {m.warnings.length === 0 ? null : (
        <section aria-labelledby="warnings-title">
          <h2 id="warnings-title">Could not be parsed</h2>
          <ul>
            {m.warnings.map((w, i) => (
              <li key={i}>{w}</li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}

/** Seen, flagged and delete (PATCH and DELETE /v1/messages/{id}): kept in the store, never on the POP3 server. */
function MessageActions(props: { message: ParsedMessage; session: Session; reload: () => void }) {
  const { message: m, session } = props;
  const state = (
    <p class="muted message-state">
      {m.seen ? 'Read' : 'Unread'} · {m.flagged ? 'flagged' : 'not flagged'}
      {m.deletedAt == null ? '' : ` · deleted ${when(m.deletedAt)}`}
    </p>
  );
  if (!session.can('write') || m.deletedAt != null) return state;
  return (
    <>
      {state}
      <Action label={m.flagged ? 'Unflag' : 'Flag'} run={async () => (await api(`/messages/${m.id}`, { method: 'PATCH', body: { flagged: !m.flagged } }), props.reload())} />
      <Action label={m.seen ? 'Mark unread' : 'Mark read'} run={async () => (await api(`/messages/${m.id}`, { method: 'PATCH', body: { seen: !m.seen } }), props.reload())} />
      <Action
        label="Delete"
        kind="danger"
        run={async () => {
          await api(`/messages/${m.id}`, { method: 'DELETE' });
          location.hash = `#/messages?accountId=${m.accountId}`;
        }}
      />
    </>
  );
}
