import { api, query } from '../api.js';
import type { Session } from '../main.js';
import type { WebhookEvent } from '../types.js';
import { Action, Loading, Problem, useLoad } from '../ui.js';
import { when } from '../words.js';
import { useState } from 'preact/hooks';

type Counts = Record<WebhookEvent['state'], number>;

const STATES = [
  ['undelivered', 'Not delivered'],
  ['failing', 'Failing'],
  ['gave-up', 'Given up'],
  ['pending', 'Waiting'],
  ['delivered', 'Delivered'],
] as const;

export function WebhooksPage(props: { session: Session }) {
  const [state, setState] = useState<string>('undelivered');
  const outbox = useLoad(() => api<{ counts: Counts; events: WebhookEvent[] }>(`/webhook-events${query({ state, limit: 100 })}`), [state]);
  return (
    <>
      <h1>Webhooks</h1>
      <Problem error={outbox.error} />
      {outbox.data === undefined ? (
        outbox.error === undefined ? <Loading what="the outbox" /> : null
      ) : (
        <>
          <dl class="counts">
            <div>
              <dt>Waiting</dt>
              <dd>{outbox.data.counts.pending}</dd>
            </div>
            <div>
              <dt>Failing, will retry</dt>
              <dd>{outbox.data.counts.failing}</dd>
            </div>
            <div>
              <dt>Given up</dt>
              <dd>{outbox.data.counts['gave-up']}</dd>
            </div>
            <div>
              <dt>Delivered</dt>
              <dd>{outbox.data.counts.delivered}</dd>
            </div>
          </dl>
          <label class="field inline">
            <span class="label">Show</span>
            <select name="state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
              {STATES.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <button type="button" onClick={outbox.reload}>
            Refresh
          </button>
          {outbox.data.events.length === 0 ? (
            <p>No events.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col">Receiver</th>
                  <th scope="col">State</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Next attempt</th>
                  <th scope="col">Last error</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {outbox.data.events.map((event) => (
                  <tr key={event.id} data-event={event.id}>
                    <td>
                      {event.type} #{event.id}
                      {event.accountId === null ? null : (
                        <div>
                          <a href={`#/accounts/${event.accountId}`}>account {event.accountId}</a>
                        </div>
                      )}
                    </td>
                    <td class="url">{event.url}</td>
                    <td>{event.state}</td>
                    <td>{event.attempts}</td>
                    <td>{event.state === 'delivered' ? `delivered ${when(event.deliveredAt)}` : when(event.nextAttemptAt)}</td>
                    <td>{event.lastError ?? ''}</td>
                    <td>
                      {event.state !== 'delivered' && props.session.can('write') ? (
                        <Action
                          label={`Retry event ${event.id} now`}
                          run={async () => {
                            await api(`/webhook-events/${event.id}/retry`, { method: 'POST' });
                            outbox.reload();
                          }}
                        />
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </>
  );
}
