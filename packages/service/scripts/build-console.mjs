#!/usr/bin/env node
// Builds the console (packages/service/web) into dist/web: one bundled, minified script (Preact
// included), its style sheet and the page. Run by `npm run build` and prepack, so the published
// package holds the assets and the service needs no CDN and no build at run time.
// `--check` type-checks web/ first (tsc, DOM types), as the test script does.
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (path) => fileURLToPath(new URL(`../${path}`, import.meta.url));

if (process.argv.includes('--check')) {
  const tsc = spawnSync('npx', ['tsc', '-p', here('web/tsconfig.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}

// Built beside dist/web, then renamed into place: a service started meanwhile (another test)
// finds the old assets or the new, never half of them.
const out = here('dist/web');
const next = `${out}.${process.pid}`;
await rm(next, { recursive: true, force: true });
await mkdir(next, { recursive: true });
await build({
  entryPoints: [here('web/src/main.tsx')],
  outfile: `${next}/app.js`,
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(here('web/index.html'), `${next}/index.html`);
await copyFile(here('web/style.css'), `${next}/app.css`);
const old = `${out}.old.${process.pid}`;
await rename(out, old).catch((error) => {
  if (error.code !== 'ENOENT') throw error;
});
await rename(next, out);
await rm(old, { recursive: true, force: true });
