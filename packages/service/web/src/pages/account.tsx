import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api.js';
import type { Session } from '../main.js';
import type { Account, AccountStatus, Run, TestReport } from '../types.js';
import { Action, describe, Field, Loading, Problem, StateBadge, useLoad } from '../ui.js';
import { duration, inWords, size, when } from '../words.js';

const STEP_NAMES: Record<string, string> = {
  dns: 'Look up the host',
  tcp: 'Connect',
  tls: 'Secure the connection (TLS)',
  greeting: "Read the server's greeting",
  capa: 'Ask what the server can do (CAPA)',
  login: 'Log in',
  stat: 'Count the messages (STAT)',
};

export function TestSteps(props: { report: TestReport }) {
  const { report } = props;
  return (
    <section aria-labelledby="test-title" class="test-report">
      <h2 id="test-title">Connection test: {report.ok ? 'passed' : `failed at “${STEP_NAMES[report.failedStep ?? ''] ?? report.failedStep}”`}</h2>
      <ol>
        {report.steps.map((step) => (
          <li key={step.step} class={step.ok ? 'ok' : 'failed'}>
            <strong>{step.ok ? '✓' : '✗'} {STEP_NAMES[step.step] ?? step.step}</strong> <span class="muted">{step.ms.toFixed(0)} ms</span>
            {step.detail === undefined ? null : <div>{step.detail}</div>}
            {step.mechanism === undefined ? null : <div>Mechanism: {step.mechanism}</div>}
            {step.certificate === undefined ? null : (
              <div>
                Certificate: {step.certificate.subject}, issued by {step.certificate.issuer}, {step.certificate.daysLeft} days left
              </div>
            )}
            {step.error === undefined ? null : <div class="error">{inWords(step.error.code, step.error.message)}</div>}
          </li>
        ))}
      </ol>
    </section>
  );
}

/** Messages stored per day: an SVG bar chart, with its numbers in words for a screen reader. */
function DailyChart(props: { days: { day: string; messages: number }[] }) {
  const { days } = props;
  const max = Math.max(1, ...days.map((d) => d.messages));
  const total = days.reduce((sum, d) => sum + d.messages, 0);
  const width = 600;
  const height = 100;
  const bar = width / days.length;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height + 16}`} role="img" aria-label={`Messages stored per day over ${days.length} days: ${total} in all, at most ${Math.max(0, ...days.map((d) => d.messages))} in a day`}>
        {days.map((d, i) => {
          const h = (d.messages / max) * height;
          return (
            <rect key={d.day} x={i * bar + 1} y={height - h} width={Math.max(1, bar - 2)} height={h} class="bar">
              <title>{`${d.day}: ${d.messages}`}</title>
            </rect>
          );
        })}
        <text x="0" y={height + 13} class="axis">
          {days[0]?.day}
        </text>
        <text x={width} y={height + 13} text-anchor="end" class="axis">
          {days[days.length - 1]?.day}
        </text>
      </svg>
      <figcaption>
        Messages stored per day, last {days.length} days: {total}
      </figcaption>
    </figure>
  );
}

function AccountForm(props: { account?: Account; onSave: (body: Record<string, unknown>) => Promise<void>; submitLabel: string }) {
  const a = props.account;
  const [name, setName] = useState(a?.name ?? '');
  const [host, setHost] = useState(a?.host ?? '');
  const [port, setPort] = useState(a === undefined ? '' : String(a.port));
  const [tls, setTls] = useState<string>(a?.tls ?? 'implicit');
  const [username, setUsername] = useState(a?.username ?? '');
  const [password, setPassword] = useState('');
  const [interval, setInterval] = useState(a === undefined ? '300' : a.syncInterval === null ? '' : String(a.syncInterval));
  const [retention, setRetention] = useState<string>(a?.policy.retention ?? 'leave');
  const [keepDays, setKeepDays] = useState(a?.policy.keepDays == null ? '' : String(a.policy.keepDays));
  const [webhookUrl, setWebhookUrl] = useState(a?.webhookUrl ?? '');
  const [webhookSecret, setWebhookSecret] = useState('');
  const [tlsInsecure, setTlsInsecure] = useState(a?.tlsInsecure ?? false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const body: Record<string, unknown> = {
      name,
      tls,
      syncInterval: interval === '' ? null : Number(interval),
      policy: { retention, ...(retention === 'keep' ? { keepDays: Number(keepDays) } : {}) },
      tlsInsecure,
    };
    if (a === undefined) Object.assign(body, { host, username, ...(port === '' ? {} : { port: Number(port) }) });
    if (password !== '' || a === undefined) body['credentials'] = { type: 'password', password };
    if (webhookUrl === '') {
      if (a?.webhookUrl != null) body['webhook'] = null;
    } else if (webhookSecret !== '') body['webhook'] = { url: webhookUrl, secret: webhookSecret };
    setBusy(true);
    setError(undefined);
    try {
      await props.onSave(body);
      setPassword('');
      setWebhookSecret('');
    } catch (failure) {
      setError(describe(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="account-form" onSubmit={(event) => void submit(event)}>
      <Field label="Name">
        <input name="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      {a === undefined ? (
        <>
          <Field label="Host">
            <input name="host" required value={host} onInput={(e) => setHost(e.currentTarget.value)} />
          </Field>
          <Field label="Port" hint="Empty: 995 with TLS, 110 otherwise">
            <input name="port" inputMode="numeric" value={port} onInput={(e) => setPort(e.currentTarget.value)} />
          </Field>
          <Field label="User name">
            <input name="username" required autocomplete="off" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
          </Field>
        </>
      ) : null}
      <Field label="Security">
        <select name="tls" value={tls} onChange={(e) => setTls(e.currentTarget.value)}>
          <option value="implicit">TLS (port 995)</option>
          <option value="starttls">STARTTLS (port 110)</option>
          <option value="none">None</option>
        </select>
      </Field>
      <label class="check">
        <input type="checkbox" name="tlsInsecure" checked={tlsInsecure} onChange={(e) => setTlsInsecure(e.currentTarget.checked)} /> Accept a certificate that does not verify
      </label>
      <Field label={a === undefined ? 'Password' : 'New password'} hint={a === undefined ? undefined : 'Empty: unchanged. Never shown.'}>
        <input type="password" name="password" autocomplete="new-password" required={a === undefined} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      </Field>
      <Field label="Sync every (seconds)" hint="Empty: only on request">
        <input name="syncInterval" inputMode="numeric" value={interval} onInput={(e) => setInterval(e.currentTarget.value)} />
      </Field>
      <Field label="Messages on the server">
        <select name="retention" value={retention} onChange={(e) => setRetention(e.currentTarget.value)}>
          <option value="leave">Leave them</option>
          <option value="delete">Delete them once stored</option>
          <option value="keep">Keep them some days</option>
        </select>
      </Field>
      {retention === 'keep' ? (
        <Field label="Days to keep">
          <input name="keepDays" inputMode="numeric" required value={keepDays} onInput={(e) => setKeepDays(e.currentTarget.value)} />
        </Field>
      ) : null}
      <Field label="Webhook URL" hint="Empty: no webhook">
        <input name="webhookUrl" type="url" value={webhookUrl} onInput={(e) => setWebhookUrl(e.currentTarget.value)} />
      </Field>
      <Field label="Webhook secret" hint="At least 16 characters; needed to set or change the webhook. Never shown.">
        <input name="webhookSecret" type="password" autocomplete="off" minLength={16} value={webhookSecret} onInput={(e) => setWebhookSecret(e.currentTarget.value)} />
      </Field>
      <button type="submit" class="primary" disabled={busy}>
        {props.submitLabel}
      </button>
      <Problem error={error} />
    </form>
  );
}

export function NewAccountPage(props: { session: Session }) {
  if (!props.session.can('write')) return <p>This token cannot add accounts (it lacks the write scope).</p>;
  return (
    <>
      <h1>Add an account</h1>
      <p class="muted">The account is saved, then its connection is tested step by step.</p>
      <AccountForm
        submitLabel="Save and test the connection"
        onSave={async (body) => {
          const account = await api<Account>('/accounts', { method: 'POST', body });
          location.hash = `#/accounts/${account.id}?test=1`;
        }}
      />
    </>
  );
}

export function AccountPage(props: { id: number; session: Session; params: URLSearchParams }) {
  const { id, session } = props;
  const [report, setReport] = useState<TestReport | undefined>(undefined);
  const [testing, setTesting] = useState(false);
  const [testError, setTestError] = useState<string | undefined>(undefined);
  const [editing, setEditing] = useState(false);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const runTest = async () => {
    setTesting(true);
    setTestError(undefined);
    try {
      setReport(await api<TestReport>(`/accounts/${id}/test`, { method: 'POST' }));
    } catch (failure) {
      setTestError(describe(failure));
    } finally {
      setTesting(false);
    }
  };
  const account = useLoad(async () => {
    const [view, overview] = await Promise.all([api<Account>(`/accounts/${id}`), api<{ accounts: AccountStatus[] }>('/overview/accounts')]);
    return { view, status: overview.accounts.find((a) => a.id === id) };
  }, [id]);
  // Arriving from "Add an account": run the test it promised, once (not again on each refresh).
  useEffect(() => {
    if (props.params.get('test') !== '1' || !session.can('write')) return;
    history.replaceState(null, '', `#/accounts/${id}`);
    void runTest();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id]);
  const runs = useLoad(() => api<{ runs: Run[] }>(`/accounts/${id}/runs${query({ limit: 20 })}`), [id]);
  const daily = useLoad(() => api<{ days: { day: string; messages: number }[] }>(`/accounts/${id}/daily${query({ days: 30 })}`), [id]);
  const refresh = () => {
    account.reload();
    runs.reload();
    daily.reload();
  };
  if (account.data === undefined) return account.error === undefined ? <Loading what="the account" /> : <Problem error={account.error} />;
  const { view, status } = account.data;
  const change = async (body: Record<string, unknown>) => {
    await api<Account>(`/accounts/${id}`, { method: 'PATCH', body });
    setEditing(false);
    refresh();
  };
  return (
    <>
      <div class="title">
        <h1>{view.name}</h1>
        {status === undefined ? null : <StateBadge state={status.syncing ? 'syncing' : status.state} />}
      </div>
      <p class="muted">
        {view.username}@{view.host}:{view.port} · {view.tls === 'implicit' ? 'TLS' : view.tls === 'starttls' ? 'STARTTLS' : 'no TLS'} ·{' '}
        {view.syncInterval === null ? 'synced on request' : `every ${view.syncInterval} s`} · messages on the server: {view.policy.retention}
        {view.webhookUrl === null ? '' : ` · webhook ${view.webhookUrl}`}
      </p>
      {status?.lastError == null ? null : (
        <p class="error last-error" role="status">
          {status.state === 'failing' ? inWords(status.lastRun?.errorCode, status.lastError) : status.lastError}
        </p>
      )}
      <p>
        <a href={`#/messages${query({ accountId: id })}`}>{status?.messageCount ?? 0} messages stored</a> · next sync {view.paused ? 'paused' : when(view.nextSyncAt)}
      </p>
      {session.can('write') ? (
        <div class="actions">
          <Action
            label="Sync now"
            kind="primary"
            disabled={view.needsAttention}
            run={async () => {
              await api(`/accounts/${id}/sync`, { method: 'POST' });
              setNotice('Sync queued.');
              setTimeout(refresh, 1500);
            }}
          />
          <Action label={view.paused ? 'Resume' : 'Pause'} run={async () => change({ paused: !view.paused })} />
          <button type="button" disabled={testing} onClick={() => void runTest()}>
            {testing ? 'Testing…' : 'Test the connection'}
          </button>
          <button type="button" aria-expanded={editing} onClick={() => setEditing(!editing)}>
            {editing ? 'Close the editor' : 'Edit'}
          </button>
          <button type="button" onClick={refresh}>
            Refresh
          </button>
        </div>
      ) : null}
      {notice === undefined ? null : (
        <p role="status" class="notice">
          {notice}
        </p>
      )}
      <Problem error={testError} />
      {testing ? <p role="status">Testing the connection…</p> : null}
      {report === undefined ? null : <TestSteps report={report} />}
      {editing ? (
        <section aria-labelledby="edit-title">
          <h2 id="edit-title">Edit the account</h2>
          <AccountForm account={view} submitLabel="Save the changes" onSave={change} />
        </section>
      ) : null}
      <section aria-labelledby="daily-title">
        <h2 id="daily-title">Messages per day</h2>
        {daily.data === undefined ? <Problem error={daily.error} /> : <DailyChart days={daily.data.days} />}
      </section>
      <section aria-labelledby="runs-title">
        <h2 id="runs-title">Runs</h2>
        <Problem error={runs.error} />
        {runs.data === undefined ? null : runs.data.runs.length === 0 ? (
          <p>No run yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Status</th>
                <th scope="col">Duration</th>
                <th scope="col">New</th>
                <th scope="col">Already had</th>
                <th scope="col">Deleted</th>
                <th scope="col">Skipped</th>
                <th scope="col">Bytes</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {runs.data.runs.map((run) => (
                <tr key={run.id}>
                  <td>{when(run.startedAt)}</td>
                  <td>{run.status}</td>
                  <td>{duration(run.startedAt, run.finishedAt)}</td>
                  <td>{run.newMessages}</td>
                  <td>{run.alreadyHad}</td>
                  <td>{run.deleted}</td>
                  <td>{run.skipped}</td>
                  <td>{size(run.bytes)}</td>
                  <td>{run.error === null ? '' : inWords(run.error.code, run.error.message)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
