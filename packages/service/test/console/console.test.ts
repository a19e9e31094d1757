/**
 * The console in a real browser (Debian's Chromium, playwright-core) against a real
 * `popwire serve` and the private Dovecot: sign in, add an account with its connection test,
 * sync it, find, open, flag and delete a message, see a failing account's error in words, and
 * every other page. The main flows are driven by the keyboard alone (Tab and Enter). Every page
 * is screenshot into packages/service/test-artifacts/console/ and checked by axe-core; any
 * console error, page error or failed request fails the test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { buildConsole, checkPage, eventually, launchBrowser, openPage, startService, tabTo, typeInto, type Service, type WatchedPage } from './harness.ts';
import { attachmentMessage, htmlMessage, plainMessage } from './messages.ts';

let dovecot: Dovecot;
let service: Service;
let browser: Browser;
let watched: WatchedPage;

const MESSAGES = [plainMessage(1, 'Lunch on Friday', 'Carol <carol@example.org>'), plainMessage(2, 'Quarterly report', 'Bob <bob@example.org>'), attachmentMessage(), htmlMessage()];

before(async () => {
  buildConsole();
  [dovecot, browser] = await Promise.all([startDovecot(), launchBrowser()]);
  await dovecot.setMailbox('alice', MESSAGES);
  service = await startService(dovecot);
  watched = await openPage(browser);
});

after(async () => {
  await Promise.all([browser?.close(), service?.stop(), dovecot?.stop()]);
});

describe('the console', { timeout: 180_000 }, () => {
  let accountId: number;

  it('is served at / with a policy that allows no inline script and no other origin', async () => {
    const response = await fetch(`${service.base}/`);
    assert.equal(response.status, 200);
    const policy = response.headers.get('content-security-policy') ?? '';
    assert.match(policy, /script-src 'self'(;|$)/);
    assert.match(policy, /default-src 'none'/);
    assert.match(policy, /frame-ancestors 'none'/);
    assert.doesNotMatch(await response.text(), /<script>|<script [^>]*>[^<]/, 'no inline script in the page');
    const script = await fetch(`${service.base}/console/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
  });

  it('signs in with a token typed and submitted by keyboard', async () => {
    const { page } = watched;
    await page.goto(`${service.base}/`);
    await page.getByLabel('API token', { exact: true }).waitFor();
    await checkPage(watched, '01-sign-in');
    await typeInto(page, page.getByLabel('API token', { exact: true }), service.token);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Accounts' }).waitFor();
    await page.getByText('No accounts yet.').waitFor();
    assert.equal(await page.evaluate('document.cookie'), '', 'no cookie holds the session');
  });

  it('adds an account by keyboard, and runs its connection test step by step', async () => {
    const { page } = watched;
    await tabTo(page, page.getByRole('link', { name: 'Add an account' }));
    await page.getByRole('heading', { name: 'Add an account' }).waitFor();
    await checkPage(watched, '02-add-account');
    await typeInto(page, page.getByLabel('Name', { exact: true }), 'Alice at Dovecot');
    await typeInto(page, page.getByLabel('Host', { exact: true }), dovecot.host);
    await typeInto(page, page.getByLabel('Port', { exact: true }), String(dovecot.tlsPort));
    await typeInto(page, page.getByLabel('User name', { exact: true }), 'alice');
    await typeInto(page, page.getByLabel('Password', { exact: true }), dovecot.users.alice!.password);
    await typeInto(page, page.getByLabel('Sync every (seconds)', { exact: true }), '');
    await page.keyboard.press('Backspace');
    await tabTo(page, page.getByRole('button', { name: 'Save and test the connection' }));
    await page.getByRole('heading', { name: 'Connection test: passed' }).waitFor({ timeout: 30_000 });
    for (const step of ['Look up the host', 'Connect', 'Secure the connection (TLS)', 'Log in', 'Count the messages (STAT)']) {
      await page.getByText(step, { exact: false }).first().waitFor();
    }
    accountId = Number(/#\/accounts\/(\d+)/.exec(page.url())![1]);
    assert.ok(accountId > 0);
    const { json } = await service.api(`/v1/accounts/${accountId}`);
    assert.equal(json.syncInterval, null, 'the interval left empty: synced on request only');
    await checkPage(watched, '03-account-tested');
  });

  it('syncs the account from its page and shows the run, its counts and the chart', async () => {
    const { page } = watched;
    await tabTo(page, page.getByRole('button', { name: 'Sync now' }));
    await page.getByText('Sync queued.').waitFor();
    const run = page.locator('section', { has: page.getByRole('heading', { name: 'Runs' }) }).locator('tbody tr').first();
    await eventually('the run to end', async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      return (await page.getByText(`${MESSAGES.length} messages stored`).count()) > 0 && /^[^]*?(ok|failed)/.test((await run.textContent()) ?? '');
    });
    // Started, status, duration, then the new messages.
    assert.deepEqual(await run.locator('td').evaluateAll((cells: any[]) => cells.slice(1, 5).map((c) => c.textContent)).then((t) => [t[0], /\d+(\.\d)? m?s/.test(t[1]), t[2]]), ['ok', true, String(MESSAGES.length)]);
    const chart = page.getByRole('img', { name: /Messages stored per day/ });
    await eventually('the chart to count the messages', async () => new RegExp(`: ${MESSAGES.length} in all`).test((await chart.getAttribute('aria-label')) ?? ''));
    await checkPage(watched, '04-account-synced');
  });

  it('lists the account as ok with its last run and message count', async () => {
    const { page } = watched;
    await tabTo(page, page.getByRole('link', { name: 'Accounts', exact: true }));
    const row = page.locator(`tr[data-account="${accountId}"]`);
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /ok/);
    assert.equal((await row.locator('td').nth(4).textContent())?.trim(), String(MESSAGES.length));
    await checkPage(watched, '05-accounts');
  });

  it('lists the messages, searches one, opens it, flags it and deletes it, by keyboard', async () => {
    const { page } = watched;
    await tabTo(page, page.getByRole('link', { name: 'Messages', exact: true }));
    await page.locator('tr[data-message]').first().waitFor();
    assert.equal(await page.locator('tr[data-message]').count(), MESSAGES.length);
    await checkPage(watched, '06-messages');
    await typeInto(page, page.getByLabel('Search', { exact: true }), 'quarterly');
    await page.keyboard.press('Enter');
    await eventually('the search to apply', async () => (await page.locator('tr[data-message]').count()) === 1);
    await page.getByText('Best matches first.').waitFor();
    await checkPage(watched, '07-messages-search');
    await tabTo(page, page.getByRole('link', { name: 'Quarterly report' }));
    await page.getByRole('heading', { name: 'Quarterly report' }).waitFor();
    await page.getByText('this is message 2: Quarterly report.').waitFor();
    const id = Number(/#\/messages\/(\d+)/.exec(page.url())![1]);
    await page.getByText('Unread · not flagged').waitFor();
    await tabTo(page, page.getByRole('button', { name: 'Flag', exact: true }));
    await page.getByRole('button', { name: 'Unflag', exact: true }).waitFor();
    await tabTo(page, page.getByRole('button', { name: 'Mark read', exact: true }));
    await page.getByText('Read · flagged').waitFor();
    await checkPage(watched, '08-message');
    const state = (await service.api(`/v1/messages/${id}`)).json;
    assert.deepEqual([state.flagged, state.seen, state.deletedAt], [true, true, null]);

    await tabTo(page, page.getByRole('button', { name: 'Delete', exact: true }));
    await page.getByRole('heading', { name: 'Messages' }).waitFor();
    await page.locator('tr[data-message]').first().waitFor();
    assert.equal(await page.locator(`tr[data-message="${id}"]`).count(), 0, 'a deleted message is left out of the list');
    assert.equal(await page.locator('tr[data-message]').count(), MESSAGES.length - 1);
    assert.notEqual((await service.api(`/v1/messages/${id}`)).json.deletedAt, null, 'hidden, not purged');
    await page.getByLabel('Deleted', { exact: true }).selectOption('only');
    await tabTo(page, page.getByRole('button', { name: 'Search', exact: true }));
    await page.locator(`tr[data-message="${id}"]`).waitFor();
    assert.equal(await page.locator('tr[data-message]').count(), 1);
    await checkPage(watched, '09-messages-deleted');
  });

  it("shows an HTML message in its sandboxed frame, and downloads another's attachment", async () => {
    const { page } = watched;
    const { json } = await service.api(`/v1/accounts/${accountId}/messages`);
    const html = json.messages.find((m: { subject: string }) => m.subject === 'Weekly newsletter');
    await page.goto(`${service.base}/#/messages/${html.id}`);
    const frame = page.frameLocator('iframe[title="The message\'s HTML, without scripts"]');
    await frame.getByText('Everything is').waitFor();
    assert.equal(await page.locator('iframe.html-body').getAttribute('sandbox'), '');
    await checkPage(watched, '10-message-html');

    const attached = json.messages.find((m: { subject: string }) => m.subject === 'Minutes attached');
    await page.goto(`${service.base}/#/messages/${attached.id}`);
    const download = page.waitForEvent('download');
    await tabTo(page, page.getByRole('button', { name: 'Download minutes.txt' }));
    const file = await download;
    assert.equal(file.suggestedFilename(), 'minutes.txt');
    const path = await file.path();
    const { readFile } = await import('node:fs/promises');
    assert.equal((await readFile(path, 'utf8')).trim(), 'Minutes of the meeting.');
    await checkPage(watched, '11-message-attachment');
  });

  it("shows a failing account's error in words", async () => {
    const { page } = watched;
    // A port where nothing listens: Dovecot's POP3 port + 1 is the harness's free-port pick's neighbour; check it is closed.
    const created = await service.api('/v1/accounts', {
      method: 'POST',
      body: { name: 'Nowhere', host: '127.0.0.1', port: 1, tls: 'none', username: 'nobody', credentials: { type: 'password', password: 'x' }, allowPlaintextAuth: true, syncInterval: null },
    });
    assert.equal(created.status, 201);
    await service.api(`/v1/accounts/${created.json.id}/sync`, { method: 'POST' });
    await eventually('the failed run', async () => (await service.api(`/v1/accounts/${created.json.id}/runs`)).json.runs[0]?.status === 'failed');
    await page.goto(`${service.base}/#/accounts`);
    const row = page.locator(`tr[data-account="${created.json.id}"]`);
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /failing/);
    assert.match((await row.locator('td.last-error').textContent()) ?? '', /The mail server could not be reached/);
    await checkPage(watched, '12-accounts-failing');
    await row.getByRole('link', { name: 'Nowhere' }).click();
    await page.locator('p.last-error').waitFor();
    assert.match((await page.locator('p.last-error').textContent()) ?? '', /could not be reached/);
    await checkPage(watched, '13-account-failing');
  });

  it('edits an account: its policy and webhook change, and the secret is never shown', async () => {
    const { page } = watched;
    await page.goto(`${service.base}/#/accounts/${accountId}`);
    await tabTo(page, page.getByRole('button', { name: 'Edit' }));
    await page.getByRole('heading', { name: 'Edit the account' }).waitFor();
    await page.getByLabel('Messages on the server', { exact: true }).selectOption('keep');
    await typeInto(page, page.getByLabel('Days to keep', { exact: true }), '14');
    await typeInto(page, page.getByLabel('Webhook URL', { exact: true }), 'http://127.0.0.1:9/hook');
    await typeInto(page, page.getByLabel('Webhook secret', { exact: true }), 'a-webhook-secret-of-enough-length');
    await checkPage(watched, '14-account-edit');
    await tabTo(page, page.getByRole('button', { name: 'Save the changes' }));
    await page.getByText('webhook http://127.0.0.1:9/hook').waitFor();
    const { json } = await service.api(`/v1/accounts/${accountId}`);
    assert.deepEqual([json.policy.retention, json.policy.keepDays, json.webhookUrl], ['keep', 14, 'http://127.0.0.1:9/hook']);
    assert.ok(!(await page.content()).includes('a-webhook-secret-of-enough-length'));
  });

  it('pauses and resumes an account', async () => {
    const { page } = watched;
    await tabTo(page, page.getByRole('button', { name: 'Pause' }));
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    assert.equal((await service.api(`/v1/accounts/${accountId}`)).json.paused, true);
    await tabTo(page, page.getByRole('button', { name: 'Resume' }));
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    assert.equal((await service.api(`/v1/accounts/${accountId}`)).json.paused, false);
  });

  it('shows the webhook outbox and retries a failed event now', async () => {
    const { page } = watched;
    // The webhook (port 9: nothing listens) gets the next sync's events; a new message makes one.
    await dovecot.deliver('alice', plainMessage(9, 'After the webhook', 'Carol <carol@example.org>'));
    await service.api(`/v1/accounts/${accountId}/sync`, { method: 'POST' });
    await eventually('a failed delivery', async () => (await service.api('/v1/webhook-events?state=failing')).json.events[0]);
    await page.goto(`${service.base}/#/webhooks`);
    const row = page.locator('tr[data-event]').first();
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /failing/);
    await checkPage(watched, '15-webhooks');
    const id = Number(await row.getAttribute('data-event'));
    const before = (await service.api('/v1/webhook-events?state=failing')).json.events.find((e: { id: number }) => e.id === id);
    await tabTo(page, page.getByRole('button', { name: `Retry event ${id} now` }));
    await eventually('the retry to be attempted', async () => {
      const event = (await service.api('/v1/webhook-events?state=undelivered')).json.events.find((e: { id: number }) => e.id === id);
      return event.attempts > before.attempts;
    });
  });

  it('lists, makes and revokes tokens, for an admin token', async () => {
    const { page } = watched;
    await tabTo(page, page.getByRole('link', { name: 'Tokens', exact: true }));
    await page.getByRole('heading', { name: 'Make a token' }).waitFor();
    await page.getByRole('cell', { name: 'console-admin', exact: true }).waitFor();
    await typeInto(page, page.getByLabel('Name', { exact: true }), 'reader');
    await tabTo(page, page.getByRole('button', { name: 'Make the token' }));
    const made = (await page.locator('code.token').textContent()) ?? '';
    assert.match(made, /^pw_/);
    assert.equal((await service.api('/v1/accounts', { token: made })).status, 200);
    assert.equal((await service.api('/v1/accounts', { token: made, method: 'POST', body: {} })).status, 403, 'the new token has only the read scope');
    await checkPage(watched, '16-tokens');
    await tabTo(page, page.getByRole('button', { name: 'Revoke reader' }));
    await page.getByRole('cell', { name: 'reader', exact: true }).waitFor({ state: 'detached' });
    assert.equal((await service.api('/v1/accounts', { token: made })).status, 401);
  });

  it('shows the service: version, queue depth and running syncs', async () => {
    const { page } = watched;
    await tabTo(page, page.getByRole('link', { name: 'Service', exact: true }));
    await page.getByRole('heading', { name: 'Running syncs' }).waitFor();
    const { json } = await service.api('/v1/service');
    await page.getByText(json.version, { exact: true }).first().waitFor();
    assert.match((await page.locator('dl.facts').textContent()) ?? '', /Sync jobs waiting\d+/);
    await checkPage(watched, '17-service');
  });

  it('offers a read-only token nothing it cannot do', async () => {
    const reader = await service.token_('read');
    const other = await openPage(browser);
    try {
      await other.page.goto(`${service.base}/`);
      await typeInto(other.page, other.page.getByLabel('API token', { exact: true }), reader);
      await other.page.keyboard.press('Enter');
      await other.page.locator(`tr[data-account="${accountId}"]`).waitFor();
      assert.equal(await other.page.getByRole('link', { name: 'Add an account' }).count(), 0);
      assert.equal(await other.page.getByRole('link', { name: 'Tokens', exact: true }).count(), 0);
      await other.page.goto(`${service.base}/#/accounts/${accountId}`);
      await other.page.getByRole('heading', { name: 'Runs' }).waitFor();
      assert.equal(await other.page.getByRole('button', { name: 'Sync now' }).count(), 0);
      await checkPage(other, '18-read-only');
      assert.deepEqual(other.errors, []);
    } finally {
      await other.page.context().close();
    }
  });

  it('refuses an unknown token at sign-in, saying why', async () => {
    const other = await openPage(browser);
    try {
      await other.page.goto(`${service.base}/`);
      await typeInto(other.page, other.page.getByLabel('API token', { exact: true }), 'pw_not-a-token-of-this-service');
      await other.page.keyboard.press('Enter');
      await other.page.getByRole('alert').getByText(/not known to this service/).waitFor();
      assert.equal(await other.page.evaluate('sessionStorage.length'), 0, 'the refused token is not kept');
      // Chromium logs the 401 itself; nothing else may show.
      assert.deepEqual(other.errors.filter((line) => !/status of 401/.test(line)), []);
    } finally {
      await other.page.context().close();
    }
  });

  it('signs out: the token is gone from the tab', async () => {
    const { page } = watched;
    await tabTo(page, page.getByRole('button', { name: 'Sign out' }));
    await page.getByLabel('API token', { exact: true }).waitFor();
    assert.equal(await page.evaluate('sessionStorage.length'), 0);
    await page.reload();
    await page.getByLabel('API token', { exact: true }).waitFor();
  });

  it('logged no console error, page error or failed request, and opened no dialog', () => {
    assert.deepEqual(watched.errors, []);
    assert.deepEqual(watched.dialogs, []);
  });
});
