#!/usr/bin/env node
// `npm test`: install the servers the tests run for real (once, before any test file starts, so
// parallel files never race for dpkg's lock), build (the CLI tests run the built `popwire` bin),
// type-check the tests too, then run every *.test.ts under packages/ with node:test. Node 20
// expands no globs, hence the walk.
// Extra arguments are passed to node --test (e.g. `npm test -- --test-name-pattern=STLS`).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' ? [] : testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

run('bash', ['scripts/install-system-deps.sh']);
run('npx', ['tsc', '-b', 'packages/client', 'packages/service']);
run('npx', ['tsc', '-p', 'tsconfig.test.json']);
const files = testFiles(join(root, 'packages')).sort();
run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...process.argv.slice(2), ...files]);
