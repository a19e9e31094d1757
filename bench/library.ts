/**
 * Scenario (h), issue 13: the library's `retrieveMany()` against the true raw ceiling
 * (clients/raw.ts), on the mailbox of (a), timed connect to QUIT inside each process (process
 * start-up not counted). Rounds alternate raw, library, so that the machine's and Dovecot's drift
 * touch both alike; each round's ratio is computed within the round, and the median and spread
 * of the ratios are reported next to the median times.
 */
import type { Job, Result } from './clients/common.ts';
import { median, runScript } from './child.ts';

export interface LibraryRow {
  raw: number[];
  library: number[];
  /** raw ÷ library per round: the library's speed as a fraction of the ceiling's. */
  ratios: number[];
  cpu: { raw: number[]; library: number[] };
}

export async function libraryScenario(job: Job, runs: number): Promise<LibraryRow> {
  const row: LibraryRow = { raw: [], library: [], ratios: [], cpu: { raw: [], library: [] } };
  for (let i = 0; i < runs; i++) {
    const raw = await runScript('raw', job);
    const library = await runScript('popwire', job);
    for (const result of [raw, library]) {
      if (result.messages !== job.count || result.sessionSeconds === undefined) throw new Error(`a client retrieved ${result.messages} of ${job.count}`);
    }
    row.raw.push(raw.sessionSeconds as number);
    row.library.push(library.sessionSeconds as number);
    row.ratios.push((raw.sessionSeconds as number) / (library.sessionSeconds as number));
    row.cpu.raw.push(cpuOf(raw));
    row.cpu.library.push(cpuOf(library));
  }
  return row;
}

function cpuOf(result: Result): number {
  return result.cpuSeconds ?? Number.NaN;
}

export function printLibraryRow(count: number, row: LibraryRow): void {
  const list = (values: number[]) => values.map((v) => v.toFixed(2)).join(', ');
  const us = (seconds: number) => ((1e6 * seconds) / count).toFixed(0);
  console.log(`\n### (h) popwire retrieveMany() against the true raw ceiling, ${count} messages of about 4 KB, loopback, connect to QUIT in process\n`);
  console.log('| client | seconds (median) | library ÷ ceiling (speed, median of rounds) | spread of the ratio | CPU us per message |');
  console.log('|---|---:|---:|---|---:|');
  console.log(`| raw ceiling (one 1 MiB read buffer, every RETR in one write) | ${median(row.raw).toFixed(2)} | 1.00 | | ${us(median(row.cpu.raw))} |`);
  console.log(
    `| popwire retrieveMany() | ${median(row.library).toFixed(2)} | ${median(row.ratios).toFixed(2)} | ${Math.min(...row.ratios).toFixed(2)} to ${Math.max(...row.ratios).toFixed(2)} | ${us(median(row.cpu.library))} |`,
  );
  console.log(`\nEvery round, seconds: raw ${list(row.raw)}; library ${list(row.library)}; ratios ${list(row.ratios)}.`);
}
