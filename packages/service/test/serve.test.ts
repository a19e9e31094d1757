/**
 * `popwire serve` end to end, as a user runs it: the built bin in its own process on an empty
 * folder, a token from `popwire token create`, a real Dovecot behind it, a webhook receiver.
 * Over real HTTP: make an account, sync it, read its messages (raw bytes equal to what Dovecot
 * sent, attachments decoded), receive signed `message.new` events, see the metrics move; bad
 * tokens and bodies refused; the password and the webhook secret in no response and no log line;
 * SIGTERM ends it cleanly.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { expectedRetrBytes, startDovecot, type Dovecot } from '../../../support/dovecot.ts';
import { bulkMessages } from '../../../support/fixtures.ts';
import { verifySignature } from '../src/delivery/signature.ts';
import { popwire, spawnPopwire, succeeded } from './cli/popwire.ts';
import { startReceiver, type Receiver } from './delivery/receiver.ts';
import { eventually } from '../../../support/eventually.ts';

const WEBHOOK_SECRET = 'serve-test-webhook-secret-4f2a';
const attachments = readFileSync(new URL('../../client/test/fixtures/mime/attachments.eml', import.meta.url));

let dovecot: Dovecot;
let receiver: Receiver;
let dir: string;
let server: ReturnType<typeof spawnPopwire>;
let base: string;
let token: string;
let logs = '';

before(async () => {
  [dovecot, receiver, dir] = await Promise.all([startDovecot(), startReceiver(), mkdtemp(join(tmpdir(), 'popwire-serve-test-'))]);
  await dovecot.setMailbox('alice', [...bulkMessages(12, 1500), attachments]);
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
  const configFile = join(dir, 'popwire.json');
  await writeFile(configFile, JSON.stringify({ store: join(dir, 'data'), http: { port: 0 }, tls: { caFile }, network: { allow: ['127.0.0.1'] }, log: { level: 'debug' } }));
  token = succeeded(await popwire(['token', 'create', '--name', 'test', '--store', join(dir, 'data')])).stdout.toString().trim();
  server = spawnPopwire(['serve', '--config', configFile]);
  server.stdout.on('data', (chunk: Buffer) => (logs += chunk.toString()));
  let stderr = '';
  server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 20_000;
  while (!/listening on (http:\/\/\S+)/.test(stderr)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`popwire serve did not start: ${stderr}`);
    await once(server.stderr, 'data');
  }
  base = /listening on (http:\/\/\S+)/.exec(stderr)![1]!;
});

after(async () => {
  if (server !== undefined && server.exitCode === null) server.kill('SIGKILL');
  await Promise.all([dovecot?.stop(), receiver?.close(), dir && rm(dir, { recursive: true, force: true })]);
});

async function api(path: string, init: RequestInit & { token?: string | null } = {}) {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? token}`);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  const response = await fetch(`${base}${path}`, { ...init, headers });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body, json: () => JSON.parse(body.toString()) as Record<string, any> };
}


describe('popwire serve', () => {
  let accountId: number;
  const responses: string[] = [];

  it('creates an account, syncs it on request and finishes the job', async () => {
    const created = await api('/v1/accounts', {
      method: 'POST',
      body: JSON.stringify({
        name: 'Alice',
        host: dovecot.host,
        port: dovecot.port,
        tls: 'starttls',
        username: 'alice',
        credentials: { type: 'password', password: dovecot.users.alice!.password },
        syncInterval: null,
        webhook: { url: receiver.url, secret: WEBHOOK_SECRET },
      }),
    });
    responses.push(created.body.toString());
    assert.equal(created.status, 201, created.body.toString());
    accountId = created.json().id;
    const queued = await api(`/v1/accounts/${accountId}/sync`, { method: 'POST' });
    responses.push(queued.body.toString());
    assert.equal(queued.status, 202);
    const again = await api(`/v1/accounts/${accountId}/sync`, { method: 'POST' });
    assert.equal(again.json().id, queued.json().id, 'a second request while the first is queued or running returns the same job');
    const done = await eventually('the job to finish', async () => {
      const job = (await api(`/v1/jobs/${queued.json().id}`)).json();
      return job.status === 'done' || job.status === 'failed' ? job : undefined;
    });
    assert.equal(done.status, 'done', JSON.stringify(done));
    const runs = (await api(`/v1/accounts/${accountId}/runs`)).json();
    responses.push(JSON.stringify(runs));
    assert.equal(runs.runs[0].newMessages ?? runs.runs[0].new_messages, 13);
  });

  it('lists the messages newest first and serves each one byte for byte', async () => {
    const listed = await api(`/v1/accounts/${accountId}/messages?limit=100`);
    responses.push(listed.body.toString());
    const messages = listed.json().messages as Array<{ id: number; date: string | number | null }>;
    assert.equal(messages.length, 13);
    const served = await Promise.all(messages.map(async (m) => (await api(`/v1/messages/${m.id}/raw`)).body));
    const key = (b: Buffer) => b.toString('base64');
    assert.deepEqual(served.map(key).sort(), [...bulkMessages(12, 1500), attachments].map(expectedRetrBytes).map(key).sort());
    // The attachments fixture is dated 26 Nov 2025, the twelve others 25 Nov: it comes first,
    // then the rest by date, and among equal dates the later stored (higher id) first.
    assert.equal(key(served[0]!), key(expectedRetrBytes(attachments)), 'the newest message is listed first');
    const order = messages.map((m) => ({ id: m.id, time: m.date === null ? -Infinity : new Date(m.date).getTime() }));
    for (const [i, m] of order.entries()) {
      const previous = order[i - 1];
      if (previous === undefined) continue;
      assert.ok(previous.time > m.time || (previous.time === m.time && previous.id > m.id), `listed newest first: ${JSON.stringify(order)}`);
    }
  });

  it('serves a message parsed, and its attachment decoded', async () => {
    const listed = (await api(`/v1/accounts/${accountId}/messages?limit=100`)).json().messages as Array<{ id: number; hasAttachments: boolean }>;
    const withAttachment = listed.find((m) => m.hasAttachments);
    assert.ok(withAttachment, 'the attachments fixture is flagged');
    const parsed = await api(`/v1/messages/${withAttachment.id}`);
    responses.push(parsed.body.toString());
    const body = parsed.json();
    assert.ok(body.attachments.length > 0);
    const first = await api(`/v1/messages/${withAttachment.id}/attachments/1`);
    assert.equal(first.status, 200);
    assert.equal(first.body.length, body.attachments[0].size);
  });

  it('sends a signed message.new event for each new message', async () => {
    await eventually('13 webhook events', async () => (receiver.received.length >= 13 ? true : undefined));
    const events = receiver.received.map((r) => ({ r, event: JSON.parse(r.body) as { type: string } }));
    assert.equal(events.filter((e) => e.event.type === 'message.new').length, 13);
    for (const { r } of events) assert.ok(verifySignature(WEBHOOK_SECRET, r.headers['popwire-signature'] as string, r.body), 'valid signature');
    assert.equal(verifySignature('another-secret-entirely', receiver.received[0]!.headers['popwire-signature'] as string, receiver.received[0]!.body), false);
  });

  it('counts the sync in its metrics', async () => {
    const metrics = (await api('/metrics')).body.toString();
    assert.match(metrics, /popwire_messages_stored_total 13/);
    assert.match(metrics, /popwire_syncs_total\{status="ok"\} 1/);
    assert.match(metrics, /popwire_sync_duration_seconds_count 1/);
  });

  it('refuses a missing, wrong or revoked token, and shows nothing without one', async () => {
    for (const bad of [null, 'pw_not-a-token', '']) {
      const response = await api('/v1/accounts', { token: bad });
      assert.equal(response.status, 401);
      assert.equal(response.body.toString().includes('Alice'), false);
    }
    const extra = succeeded(await popwire(['token', 'create', '--store', join(dir, 'data')])).stdout.toString().trim();
    assert.equal((await api('/v1/accounts', { token: extra })).status, 200);
    const listed = JSON.parse(succeeded(await popwire(['token', 'list', '--json', '--store', join(dir, 'data')])).stdout.toString()) as Array<{ id: number }>;
    succeeded(await popwire(['token', 'revoke', String(listed.at(-1)!.id), '--store', join(dir, 'data')]));
    assert.equal((await api('/v1/accounts', { token: extra })).status, 401);
  });

  it('answers a bad body with a 400 that names the field, never a 500', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ name: 'x', host: 'h', username: 'u', credentials: { type: 'password', password: 'p' }, port: 70000 }, /port/],
      [{ name: 'x', host: 'h', username: 'u', credentials: { type: 'password', password: 'p' }, tls: 'maybe' }, /tls/],
      [{ name: 'x', host: 'h', credentials: { type: 'password', password: 'p' } }, /username/],
      [{ name: 'x', host: 'h', username: 'u', credentials: { type: 'password', password: 'p' }, port: '995' }, /port/],
    ];
    for (const [body, field] of cases) {
      const response = await api('/v1/accounts', { method: 'POST', body: JSON.stringify(body) });
      assert.equal(response.status, 400, response.body.toString());
      assert.match(response.json().error.field ?? response.json().error.message, field);
    }
    const broken = await api('/v1/accounts', { method: 'POST', body: '{"name":' });
    assert.equal(broken.status, 400);
  });

  it('never shows the password or the webhook secret, in a response or in its log', () => {
    const password = dovecot.users.alice!.password;
    for (const text of [...responses, logs]) {
      assert.equal(text.includes(password), false, 'password leaked');
      assert.equal(text.includes(WEBHOOK_SECRET), false, 'webhook secret leaked');
    }
    assert.ok(logs.length > 0, 'the service logged');
    assert.equal(logs.includes(token), false, 'the API token leaked into the log');
  });

  it('stops cleanly on SIGTERM', async () => {
    server.kill('SIGTERM');
    const [code] = (await once(server, 'exit')) as [number | null];
    assert.equal(code, 0);
  });
});

describe('popwire serve with a bad configuration', () => {
  it('refuses to start, naming the setting and where it came from (exit 2)', async () => {
    const fromEnv = await popwire(['serve'], { env: { POPWIRE_HTTP_PORT: 'eighty', POPWIRE_STORE: join(dir, 'unused') } });
    assert.equal(fromEnv.code, 2);
    assert.match(fromEnv.stderr, /^popwire: http\.port \(from POPWIRE_HTTP_PORT\) must be an integer/);
    const file = join(dir, 'typo.json');
    await writeFile(file, JSON.stringify({ sync: { concurency: 8 } }));
    const fromFile = await popwire(['serve', '--config', file]);
    assert.equal(fromFile.code, 2);
    assert.match(fromFile.stderr, /sync\.concurency \(unknown setting\)/);
  });
});
