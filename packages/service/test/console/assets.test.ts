/**
 * The console's assets: built by the build, in the packed tarball, and written so that message
 * data can never become markup in the console's own page (the sender's HTML goes only into the
 * sandboxed frame, web/src/message-frame.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { buildConsole } from './harness.ts';

const SERVICE = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? sources(join(dir, entry.name)) : [join(dir, entry.name)]));
}

describe("the console's assets", () => {
  it('are in the packed tarball once built', () => {
    buildConsole();
    const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: SERVICE, encoding: 'utf8' });
    assert.equal(pack.status, 0, pack.stderr);
    const files = (JSON.parse(pack.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    for (const asset of ['dist/web/index.html', 'dist/web/app.js', 'dist/web/app.css', 'dist/console/serve-console.js']) assert.ok(files.includes(asset), `${asset} is packed`);
  });

  it('never write HTML into the page: no innerHTML, outerHTML, insertAdjacentHTML, document.write or dangerouslySetInnerHTML', () => {
    const files = sources(join(SERVICE, 'web/src'));
    assert.ok(files.length > 5);
    for (const file of files) {
      assert.doesNotMatch(readFileSync(file, 'utf8'), /innerHTML|outerHTML|insertAdjacentHTML|document\.write|dangerouslySetInnerHTML|createContextualFragment|DOMParser/, file);
    }
  });

  it('give the sender HTML only to a frame with an empty sandbox', () => {
    const page = readFileSync(join(SERVICE, 'web/src/pages/message.tsx'), 'utf8');
    const frames = page.match(/<iframe[^>]*>/g) ?? [];
    assert.equal(frames.length, 1);
    assert.match(frames[0]!, /sandbox=""/);
  });
});
