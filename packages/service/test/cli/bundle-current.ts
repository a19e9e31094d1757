/**
 * The CLI tests run bin/popwire.js, which runs the bundle in dist/bundle/. A bundle older than the
 * sources would test yesterday's code without a word, and `tsc -b` alone does not remake it: so
 * the first test file to need it remakes it (esbuild, about a second; scripts/build.mjs swaps the
 * new bundle in whole, so files running meanwhile are not disturbed).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const ENTRY = join(ROOT, 'packages/service/dist/bundle/popwire.js');
/** What the bundle is made of: the service's sources, the library's, and the build script itself. */
const SOURCES = ['packages/service/src', 'packages/client/src'];
const BUILD_FILES = ['scripts/build.mjs', 'packages/service/package.json', 'packages/client/package.json'];

function newestSourceMs(): number {
  let newest = 0;
  for (const dir of SOURCES) {
    for (const name of readdirSync(join(ROOT, dir), { recursive: true }) as string[]) {
      if (name.endsWith('.ts')) newest = Math.max(newest, statSync(join(ROOT, dir, name)).mtimeMs);
    }
  }
  for (const file of BUILD_FILES) newest = Math.max(newest, statSync(join(ROOT, file)).mtimeMs);
  return newest;
}

export function ensureBundleIsCurrent(): void {
  const built = statSync(ENTRY, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (built >= newestSourceMs()) return;
  const result = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--bundle-only'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`the popwire bundle is older than its sources, and remaking it failed:\n${result.stderr}`);
}
