/**
 * What the console's browser tests share: the built console, a real `popwire serve` (the built
 * bin, its own store, a token from `popwire token create`), Debian's Chromium driven by
 * playwright-core, and per page: a screenshot under packages/service/test-artifacts/console/,
 * axe-core's check, and a log of the page's console, dialogs and requests.
 * Build first: npx tsc -b packages/client packages/service (the console's assets are built here).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import type { Dovecot } from '../../../../support/dovecot.ts';
import { eventually as pollUntil } from '../../../../support/eventually.ts';
import { popwire, spawnPopwire, succeeded } from '../cli/popwire.ts';

/** The browser tests poll every 100 ms: a page's work is slower than an API call. */
export const eventually = <T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> => pollUntil(what, check, ms, 100);

export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
const BUILD = fileURLToPath(new URL('../../scripts/build-console.mjs', import.meta.url));
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Builds the console's assets into dist/web, as `npm run build` does: the served bundle is the one tested. */
export function buildConsole(): void {
  const build = spawnSync(process.execPath, [BUILD], { encoding: 'utf8' });
  assert.equal(build.status, 0, `the console did not build: ${build.stderr}`);
}

export interface Service {
  readonly base: string;
  readonly dir: string;
  readonly token: string;
  logs(): string;
  /** Makes another token, with these scopes. */
  token_(scopes: string): Promise<string>;
  api(path: string, init?: { method?: string; body?: unknown; token?: string }): Promise<{ status: number; json: any }>;
  stop(): Promise<void>;
}

export async function startService(dovecot: Dovecot): Promise<Service> {
  const dir = await mkdtemp(join(tmpdir(), 'popwire-console-test-'));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
  const configFile = join(dir, 'popwire.json');
  const store = join(dir, 'data');
  await writeFile(configFile, JSON.stringify({ store, http: { port: 0 }, tls: { caFile }, network: { allow: ['127.0.0.1'] }, log: { level: 'info' } }));
  const makeToken = async (scopes: string) => succeeded(await popwire(['token', 'create', '--name', `console-${scopes}`, '--scope', scopes, '--store', store])).stdout.toString().trim();
  const token = await makeToken('admin');
  const server = spawnPopwire(['serve', '--config', configFile]);
  let logs = '';
  let stderr = '';
  server.stdout.on('data', (chunk: Buffer) => (logs += chunk.toString()));
  server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 20_000;
  while (!/listening on (http:\/\/\S+)/.test(stderr)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`popwire serve did not start: ${stderr}`);
    await once(server.stderr, 'data');
  }
  const base = /listening on (http:\/\/\S+)/.exec(stderr)![1]!;
  return {
    base,
    dir,
    token,
    logs: () => logs,
    token_: makeToken,
    async api(path, init = {}) {
      const response = await fetch(`${base}${path}`, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${init.token ?? token}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: init.body === undefined ? null : JSON.stringify(init.body),
      });
      const text = await response.text();
      return { status: response.status, json: text === '' ? null : JSON.parse(text) };
    },
    async stop() {
      if (server.exitCode === null) {
        server.kill('SIGTERM');
        await once(server, 'exit');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  // IsolateSandboxedIframes off: a sandboxed srcdoc frame (a message's HTML) stays in the page's
  // process, where playwright sees each of its requests from the first; in a process of its own
  // an early one can pass before playwright attaches. Where a frame runs changes nothing of what
  // its sandbox and CSP allow.
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-features=IsolateSandboxedIframes'] });
}

/** A page and everything it did that a test may hold against it. */
export interface WatchedPage {
  readonly page: Page;
  /** console.error lines, uncaught exceptions, failed requests. */
  readonly errors: string[];
  /** Every console message of any type, with its frame's URL. */
  readonly consoleMessages: string[];
  readonly dialogs: string[];
  /** Every request the browser began, in order (one that its CSP then blocks included). */
  readonly requests: string[];
  /** Requests that failed, with why (net::ERR_BLOCKED_BY_CSP...). */
  readonly failed: Map<string, string>;
  /** Every URL that got a response. */
  readonly responses: string[];
}

export async function openPage(browser: Browser): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const watched: WatchedPage = { page, errors: [], consoleMessages: [], dialogs: [], requests: [], failed: new Map(), responses: [] };
  page.on('console', (message) => {
    watched.consoleMessages.push(`${message.type()}: ${message.text()}`);
    if (message.type() === 'error') watched.errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => watched.errors.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    watched.failed.set(request.url(), request.failure()?.errorText ?? '');
    watched.errors.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`);
  });
  page.on('request', (request) => watched.requests.push(request.url()));
  page.on('response', (response) => watched.responses.push(response.url()));
  page.on('dialog', (dialog) => {
    watched.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return watched;
}

/**
 * Saves the page's screenshot, then runs axe-core in it: no serious or critical violation.
 * axe is evaluated through the DevTools protocol, which the page's CSP does not govern, so the
 * console's policy stays as strict as it is served. Frames are left out: the only one is a
 * message's HTML, the sender's markup, not the console's.
 */
export async function checkPage(watched: WatchedPage, name: string): Promise<void> {
  const { page } = watched;
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  if (!(await page.evaluate("'axe' in window"))) await page.evaluate(AXE);
  const violations = (await page.evaluate(`axe.run(document, { iframes: false, resultTypes: ['violations'] }).then((result) =>
    result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => JSON.stringify(n.target)) })))`)) as Array<{ impact: string | null }>;
  const grave = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(grave, [], `axe-core on the ${name} page`);
}

/**
 * Reaches `target` with the Tab key alone (at most `limit` presses) and presses Enter on it:
 * how a keyboard user gets there. Fails if Tab never lands on it.
 */
export async function tabTo(page: Page, target: Locator, options: { enter?: boolean; limit?: number } = {}): Promise<void> {
  const handle = await target.elementHandle();
  assert.ok(handle !== null, 'the element to tab to is on the page');
  for (let i = 0; i < (options.limit ?? 80); i++) {
    await page.keyboard.press('Tab');
    if (await handle.evaluate((element: any) => element === element.ownerDocument.activeElement)) {
      if (options.enter !== false) await page.keyboard.press('Enter');
      return;
    }
  }
  assert.fail(`Tab never reached ${String(target)}`);
}

/** Tabs to a field and types into it, as a keyboard user fills a form. */
export async function typeInto(page: Page, field: Locator, text: string): Promise<void> {
  await tabTo(page, field, { enter: false });
  await page.keyboard.press('Control+A');
  await page.keyboard.type(text);
}

