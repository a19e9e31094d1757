/**
 * Runs the targets of one *.fuzz.ts file (see run.ts): `target.ts FILE MS SEED [filter...]`, or
 * `target.ts --count FILE [filter...]` to say how many of its targets match.
 */
import fc from 'fast-check';
import type { FuzzTarget } from './harness.ts';

const [first, ...rest] = process.argv.slice(2);
const counting = first === '--count';
const [file, ms, seed, ...filters] = counting ? [rest[0], '0', '0', ...rest.slice(1)] : [first, ...rest];
const { targets } = (await import(file as string)) as { targets: FuzzTarget[] };
const chosen = targets.filter((t) => filters.length === 0 || filters.some((f) => t.name.toLowerCase().includes(f.toLowerCase())));
if (counting) {
  console.log(chosen.length);
  process.exit(0);
}

let failed = false;
for (const target of chosen) {
  const started = performance.now();
  const details = await fc.check(target.property as fc.IRawProperty<unknown>, {
    seed: Number(seed),
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: Number(ms),
    markInterruptAsFailure: false,
    // An async input (a reply to the engine) that neither settles nor fails within this is a hang.
    timeout: 5000,
  });
  const took = ((performance.now() - started) / 1000).toFixed(1);
  if (details.failed) {
    failed = true;
    console.log(`FAIL ${target.name}: after ${details.numRuns} executions (${took} s)`);
    const shown = fc.stringify(details.counterexample);
    console.log(`  counterexample: ${shown.length > 4000 ? `${shown.slice(0, 4000)}... (${shown.length} characters)` : shown}`);
    console.log(`  error: ${String(details.errorInstance)}`);
    console.log(`  replay: seed ${details.seed}, path "${details.counterexamplePath}"`);
  } else {
    console.log(`ok   ${target.name}: ${details.numRuns} executions in ${took} s`);
  }
}
process.exit(failed ? 1 : 0);
