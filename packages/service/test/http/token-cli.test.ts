/**
 * `popwire token create --scope --account --expires` and `token list`, through the built bin:
 * what it makes is what the API enforces, and the list shows scope, accounts, expiry and last
 * use. Build first: npx tsc -b packages/client packages/service
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Store } from '../../src/store/store.ts';
import { parseExpiry } from '../../src/cli/commands/token.ts';
import { failedWith, parseJson, popwire, succeeded } from '../cli/popwire.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

describe('popwire token', () => {
  let dir: string;
  let app: TestApp;
  let alice: number;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'popwire-token-cli-'));
    app = await startApp(await Store.open({ kind: 'sqlite', dir }));
    alice = (await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'pop.example.test', port: 995 }, 'pw-0123456789') })).json.id;
    await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'other.example.test', port: 995 }, 'pw-9876543210', { name: 'Other' }) });
  });
  after(async () => {
    await app?.close();
    await app?.store.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('makes a token with scopes, accounts and an expiry that the API enforces, and lists them', async () => {
    const made = succeeded(await popwire(['token', 'create', '--store', dir, '--name', 'tenant', '--scope', 'read,write', '--account', 'alice@pop.example.test:995', '--expires', '90d']));
    const token = made.stdout.toString().trim();
    assert.match(token, /^pw_[\w-]{43}$/);

    const accounts = await app.request('GET', '/v1/accounts', { token });
    assert.deepEqual(accounts.json.accounts.map((a: { id: number }) => a.id), [alice]);
    const metrics = await app.request('GET', '/metrics', { token });
    assert.equal(metrics.status, 403);
    assert.match(metrics.json.error.message, /metrics/);

    const listed = parseJson<Array<Record<string, unknown>>>(succeeded(await popwire(['token', 'list', '--store', dir, '--json'])));
    const tenant = listed.find((t) => t.name === 'tenant')!;
    assert.deepEqual(tenant.scopes, ['read', 'write']);
    assert.deepEqual(tenant.accounts, [{ id: alice, key: 'alice@pop.example.test:995' }]);
    const days = (Date.parse(String(tenant.expiresAt)) - Date.now()) / 86_400_000;
    assert.ok(days > 89 && days <= 90, `expires in ${days} days`);
    assert.notEqual(tenant.lastUsedAt, null, 'the API call above was recorded');
    assert.equal(JSON.stringify(listed).includes(token), false);

    const text = succeeded(await popwire(['token', 'list', '--store', dir])).stdout.toString();
    const line = text.split('\n').find((l) => l.includes('tenant'))!;
    assert.match(line, /\tread,write\talice@pop\.example\.test:995\texpires 20\d\d-.*\tlast used 20\d\d-/);
    assert.match(text, /\ttest\tadmin\tall accounts\tnever expires\t/);
  });

  it('refuses an unknown scope, an unknown account and an expiry in the past, making no token', async () => {
    const before = (await app.store.tokens.list()).length;
    failedWith(await popwire(['token', 'create', '--store', dir, '--scope', 'read,root']), 2, /root/);
    failedWith(await popwire(['token', 'create', '--store', dir, '--account', 'mallory@pop.example.test:995']), 2, /mallory@pop\.example\.test:995: no such account/);
    failedWith(await popwire(['token', 'create', '--store', dir, '--expires', '2001-01-01']), 2, /past/);
    failedWith(await popwire(['token', 'create', '--store', dir, '--expires', 'soon']), 2, /90d/);
    assert.equal((await app.store.tokens.list()).length, before);
  });

  it('reads an expiry as a duration from now or as a date', () => {
    const now = Date.parse('2026-12-07T00:00:00Z');
    assert.equal(parseExpiry('90d', undefined, now), Date.parse('2027-03-07T00:00:00Z'));
    assert.equal(parseExpiry('12h', undefined, now), Date.parse('2026-12-07T12:00:00Z'));
    assert.equal(parseExpiry('30m', undefined, now), Date.parse('2026-12-07T00:30:00Z'));
    assert.equal(parseExpiry('2w', undefined, now), Date.parse('2026-12-21T00:00:00Z'));
    assert.equal(parseExpiry('2027-03-01', undefined, now), Date.parse('2027-03-01T00:00:00Z'));
    for (const bad of ['0d', '-1d', '1y', '90', 'd', '2026-12-06', 'tomorrow']) assert.throws(() => parseExpiry(bad, undefined, now), /^InvalidArgumentError: Expected/, bad);
  });
});
