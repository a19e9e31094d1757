/**
 * `npm run fuzz [-- --seconds 60] [--seed N] [name filter...]`: runs every *.fuzz.ts target
 * for its share of the time, each file in its own process so that a hang is caught (the process
 * is killed past its share plus a grace period) instead of stopping the run. Prints executions
 * per target, the seed, and the shrunk counterexample of any failure; exits 1 on a failure.
 *
 * Kept out of `npm test` (scripts/test.mjs collects *.test.ts only): what it finds becomes a
 * regression test there.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { seconds: { type: 'string', default: '60' }, seed: { type: 'string' } },
  allowPositionals: true,
});
const seconds = Number(values.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number; got ${values.seconds}`);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);

const dir = new URL('.', import.meta.url);
const files = readdirSync(dir).filter((name) => name.endsWith('.fuzz.ts')).sort();
const child = new URL('./target.ts', dir).pathname;
// A first pass to count the targets, so the time is shared between them, not between files.
const counts = files.map((file) => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', child, '--count', new URL(file, dir).pathname, ...positionals], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${file}: ${result.stderr}`);
  return Number(result.stdout.trim());
});
const total = counts.reduce((a, b) => a + b, 0);
if (total === 0) throw new Error(`no fuzz target matches ${positionals.join(' ')}`);
const share = (seconds * 1000) / total;
console.log(`fuzz: ${total} target(s), ${(share / 1000).toFixed(1)} s each, seed ${seed}`);

let failed = false;
for (const [index, file] of files.entries()) {
  const count = counts[index] as number;
  if (count === 0) continue;
  const limit = Math.ceil(share * count) + 60_000;
  const result = spawnSync(process.execPath, ['--import', 'tsx', child, new URL(file, dir).pathname, String(Math.floor(share)), String(seed), ...positionals], {
    stdio: 'inherit',
    timeout: limit,
    killSignal: 'SIGKILL',
  });
  if (result.error !== undefined || result.signal !== null) {
    console.log(`${file}: HUNG (killed after ${Math.round(limit / 1000)} s); rerun with --seed ${seed}`);
    failed = true;
  } else if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
