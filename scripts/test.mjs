#!/usr/bin/env node
// `npm test`: install the servers the tests run for real (once, before any test file starts, so
// parallel files never race for dpkg's lock), build with scripts/build.mjs (the CLI tests run the
// built `popwire` bin, which is the bundle the package ships),
// type-check the tests too, then run every *.test.ts under packages/ with node:test. Node 20
// expands no globs, hence the walk.
// Extra arguments are passed to node --test (e.g. `npm test -- --test-name-pattern=STLS`);
// paths to *.test.ts files among them run only those files.
//
// Every file has a time limit, so that a parser gone quadratic or a wait that never ends fails
// the file instead of hanging the run until CI's own limit. On Node 20, `--test-timeout` limits
// each file as a whole (its process is cancelled when the limit passes) and each test in it; a
// suite's own `{ timeout }` cannot lengthen the file's limit. So the files are run in groups of
// one limit each: FILE_LIMIT_MS for most, LONGER for the few that need more (they say why).
// Files run one at a time either way on 2 cores (node --test runs availableParallelism() - 1).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

const MINUTE = 60_000;
/** The limit of a file not in LONGER: about ten times what the slowest of them takes on a loaded 2-core machine. */
const FILE_LIMIT_MS = 5 * MINUTE;
const LONGER = {
  // 30 SIGKILLed syncs of 303 messages, on SQLite and on PostgreSQL.
  'packages/service/test/sync/crash.test.ts': 20 * MINUTE,
  // 15 SIGKILLed popwire sync --delete --lmtp runs of 300 messages into Dovecot LMTP, then a clean run.
  'packages/service/test/destinations/sync-crash.test.ts': 10 * MINUTE,
  // SIGKILLs of popwire serve (its test allows 10 minutes).
  'packages/service/test/delivery/kill.test.ts': 15 * MINUTE,
  // npm pack and two installs from the tarballs (each allowed 10 minutes).
  'packages/service/test/package.test.ts': 25 * MINUTE,
  // Every fault case twice (SQLite and PostgreSQL), and every command boundary in clear text and TLS.
  'packages/service/test/sync/faults.test.ts': 10 * MINUTE,
  // Starts PostgreSQL, Dovecot and the service the way a user would (the suite allows 3 minutes).
  'packages/service/test/dev-servers.test.ts': 8 * MINUTE,
};

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
run(process.execPath, ['scripts/build.mjs']);
run('npx', ['tsc', '-p', 'tsconfig.test.json']);
const args = process.argv.slice(2);
const chosen = args.filter((arg) => arg.endsWith('.test.ts')).map((arg) => relative(root, resolve(arg)));
const options = args.filter((arg) => !arg.endsWith('.test.ts'));
const files = chosen.length > 0 ? chosen : testFiles(join(root, 'packages')).map((path) => relative(root, path)).sort();
for (const path of Object.keys(LONGER)) {
  if (!existsSync(join(root, path))) throw new Error(`scripts/test.mjs: LONGER names ${path}, which does not exist`);
}

const groups = new Map();
for (const file of files) {
  const limit = LONGER[file] ?? FILE_LIMIT_MS;
  groups.set(limit, [...(groups.get(limit) ?? []), file]);
}
// Each group prints its own summary; a TAP copy of each is counted so that the run ends with one
// line for all of them.
const tapDir = mkdtempSync(join(tmpdir(), 'popwire-test-'));
const totals = { passed: 0, failed: 0, skipped: 0 };
let failed = 0;
for (const [index, [limit, group]] of [...groups].sort(([a], [b]) => a - b).entries()) {
  console.log(`\n# ${group.length} test file(s), each limited to ${limit / MINUTE} min`);
  const tap = join(tapDir, `${index}.tap`);
  const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`];
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...reporters, `--test-timeout=${limit}`, ...options, ...group], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) failed = result.status ?? 1;
  const counts = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
  const count = (name) => Number([...counts.matchAll(new RegExp(`^# ${name} (\\d+)$`, 'gm'))].at(-1)?.[1] ?? 0);
  totals.passed += count('pass');
  totals.failed += count('fail') + count('cancelled');
  totals.skipped += count('skipped');
  // A group that failed without a test failing (a file that did not load) still counts as a failure.
  if (result.status !== 0 && count('fail') + count('cancelled') === 0) totals.failed += 1;
}
rmSync(tapDir, { recursive: true, force: true });
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failed);
