/**
 * A hostile HTML message opened in the console does nothing. The message carries a <script>, an
 * onerror handler on a remote image, a javascript: link, a <meta refresh>, a remote style sheet
 * and a nested frame, each aimed at the test's own HTTP server or at alert()/console.log().
 * Checked by the browser's own request log (page.on('request'), which sees the frame's
 * requests too), by the server's hits, and by the absence of any dialog or console output of
 * the message's. Then "load remote images" loads the image, and only it: the log does see
 * the frame's requests, so its silence before meant something.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { buildConsole, checkPage, eventually, launchBrowser, openPage, startService, typeInto, type Service, type WatchedPage } from './harness.ts';
import { hostileMessage } from './messages.ts';

/** A 1x1 transparent GIF. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

let dovecot: Dovecot;
let service: Service;
let browser: Browser;
let remote: Server;
let remoteBase: string;
const hits: string[] = [];

before(async () => {
  buildConsole();
  remote = createServer((request, response) => {
    hits.push(request.url ?? '');
    response.writeHead(200, { 'content-type': request.url === '/remote.png' ? 'image/gif' : 'text/plain' }).end(request.url === '/remote.png' ? PIXEL : 'hello');
  });
  remote.listen(0, '127.0.0.1');
  await once(remote, 'listening');
  remoteBase = `http://127.0.0.1:${(remote.address() as AddressInfo).port}`;
  [dovecot, browser] = await Promise.all([startDovecot(), launchBrowser()]);
  await dovecot.setMailbox('alice', [hostileMessage(remoteBase)]);
  service = await startService(dovecot);
});

after(async () => {
  remote?.close();
  await Promise.all([browser?.close(), service?.stop(), dovecot?.stop()]);
});

/** Waits until the page has made no new request for a second: not an assertion on time, a chance for late requests to show. */
async function quiet(watched: WatchedPage): Promise<void> {
  for (let seen = -1; seen !== watched.requests.length; ) {
    seen = watched.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** How playwright names a request the page's policy stopped before it left. */
const BLOCKED = /^(csp|net::ERR_BLOCKED_BY_CSP)$/;

/** What Chromium itself says when it refuses something: allowed; anything else in the console is not. */
const REFUSAL = /^error: (Blocked script execution in 'about:srcdoc'|Refused to |[^]*violates the following Content Security Policy directive[^]*The (action|request) has been blocked)/;

describe('a hostile HTML message', { timeout: 120_000 }, () => {
  let watched: WatchedPage;
  let messageId: number;

  before(async () => {
    const created = await service.api('/v1/accounts', {
      method: 'POST',
      body: { name: 'Alice', host: dovecot.host, port: dovecot.tlsPort, username: 'alice', credentials: { type: 'password', password: dovecot.users.alice!.password }, syncInterval: null },
    });
    assert.equal(created.status, 201);
    await service.api(`/v1/accounts/${created.json.id}/sync`, { method: 'POST' });
    messageId = await eventually('the message to be stored', async () => (await service.api(`/v1/accounts/${created.json.id}/messages`)).json.messages[0]?.id as number | undefined);
    watched = await openPage(browser);
    await watched.page.goto(`${service.base}/`);
    await typeInto(watched.page, watched.page.getByLabel('API token', { exact: true }), service.token);
    await watched.page.keyboard.press('Enter');
    await watched.page.getByRole('heading', { name: 'Accounts' }).waitFor();
  });

  it('runs no script, loads nothing and navigates nowhere when opened', async () => {
    const { page } = watched;
    const start = watched.requests.length;
    await page.goto(`${service.base}/#/messages/${messageId}`);
    const frame = page.frameLocator('iframe.html-body');
    await frame.getByText('Hostile message body').waitFor();
    // The javascript: link, followed as a user would (a click inside the frame).
    await frame.locator('#js-link').click();
    // Give the refresh (0 s), the script and the handlers every chance: until the page has made no request for a second.
    await quiet(watched);
    await checkPage(watched, '20-hostile-message');

    // The browser's log: each request the message began for another origin was blocked by the
    // policy before it left (the log lists a request the CSP then blocks, with its failure), and
    // none got a response.
    const outside = (url: string) => !url.startsWith(service.base) && !url.startsWith('about:') && !url.startsWith('data:');
    const begun = watched.requests.slice(start).filter(outside);
    assert.deepEqual(begun.filter((url) => !BLOCKED.test(watched.failed.get(url) ?? '')), [], `every request for another origin was blocked by the policy: ${JSON.stringify([...watched.failed])}`);
    assert.deepEqual(watched.responses.filter(outside), [], 'no response from outside the service');
    assert.deepEqual(hits, [], 'the remote server saw nothing');
    assert.deepEqual(watched.dialogs, [], 'no alert()');
    const output = watched.consoleMessages.filter((line) => !REFUSAL.test(line));
    assert.deepEqual(output, [], 'no console output but the browser refusing things');
    assert.ok(!watched.consoleMessages.some((line) => /hostile script ran|onerror ran/.test(line)));
    assert.equal(page.frames().find((f) => f !== page.mainFrame())?.url(), 'about:srcdoc', 'the meta refresh did not navigate the frame');
    assert.equal(new URL(page.url()).hash, `#/messages/${messageId}`, 'the console did not navigate either');
    assert.deepEqual(watched.errors.filter((line) => !REFUSAL.test(line.replace(/^console: /, 'error: ')) && !/^request failed: \S+ (csp|net::ERR_BLOCKED_BY_CSP)$/.test(line)), []);
  });

  it('loads the remote image, and only it, once the reader asks for remote images', async () => {
    const { page } = watched;
    const start = watched.requests.length;
    await page.getByLabel(/Load remote images/).check();
    await eventually('the remote image', async () => hits.includes('/remote.png'));
    await quiet(watched);
    assert.ok(watched.requests.slice(start).includes(`${remoteBase}/remote.png`), "the browser's log shows the frame's request");
    assert.ok(watched.responses.includes(`${remoteBase}/remote.png`));
    assert.deepEqual([...new Set(hits)], ['/remote.png'], 'no script, style sheet, frame or refresh');
    assert.deepEqual(watched.dialogs, []);
    assert.ok(!watched.consoleMessages.some((line) => /hostile script ran|onerror ran/.test(line)));
  });
});
