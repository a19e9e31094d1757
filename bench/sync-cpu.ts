/**
 * Scenario (i), issue 13: `popwire sync` (syncAccount, in process, into a fresh SQLite store)
 * against the raw limits, on the mailbox of (a). Per round, in this order: the raw ceiling
 * (clients/raw.ts, connect to close), a first sync, a raw session of UIDL and QUIT
 * (clients/raw-listing.ts), and a second sync with nothing new on the store the first left.
 * Ratios are taken within each round; the median and the spread of the rounds are reported.
 *
 * Targets: the first sync at no less than 0.6x the raw limit's speed, with CPU per message (the
 * sync process's process.cpuUsage() over the syncAccount call) at most half the 400 us it was;
 * a run with nothing new at most 1.2x the raw UIDL session's time. Process start-up is not
 * counted on either side (scenario j measures it).
 *
 * Like with like: the raw session logs in with USER and PASS, so the nothing-new sync it is
 * compared with does too (`auth: 'USER'`); by default popwire logs in with the strongest
 * mechanism Dovecot offers, SCRAM-SHA-256 (two more round trips and a PBKDF2 on each side),
 * which a third run per round measures and the table shows beside it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Job, Result } from './clients/common.ts';
import type { SyncJob, SyncResult } from './clients/popwire-sync.ts';
import { median, runScript } from './child.ts';

export interface SyncCpuRow {
  count: number;
  raw: number[];
  first: number[];
  /** raw ÷ first sync per round: the sync's speed as a fraction of the raw limit's. */
  speed: number[];
  cpuUsPerMessage: number[];
  listing: number[];
  again: number[];
  /** nothing-new sync ÷ raw UIDL session per round: at most 1.2 is the target. */
  againRatio: number[];
  /** The same with popwire's default login (SCRAM-SHA-256 on Dovecot), and its ratio. */
  againScram: number[];
  againScramRatio: number[];
  /**
   * Of the nothing-new run (USER/PASS), from asking for the connection to sending QUIT (its
   * `connecting` and `quitting` phases): the part of the run that the raw session's connect to
   * close compares with, without the store's claim before it and the run's end after it.
   */
  againSession: number[];
  againSessionRatio: number[];
}

export async function syncCpuScenario(job: Job, runs: number, storeBase: string): Promise<SyncCpuRow> {
  const row: SyncCpuRow = { count: job.count, raw: [], first: [], speed: [], cpuUsPerMessage: [], listing: [], again: [], againRatio: [], againScram: [], againScramRatio: [], againSession: [], againSessionRatio: [] };
  for (let i = 0; i < runs; i++) {
    const raw = await runScript('raw', job);
    const storeDir = await mkdtemp(join(storeBase, 'popwire-bench-sync-cpu-'));
    try {
      const first = await runScript<SyncResult>('popwire-sync', { ...job, storeDir, mode: 'first' } satisfies Job & SyncJob);
      const listing = await runScript<Result>('raw-listing', { ...job, commands: ['UIDL'] });
      const again = await runScript<SyncResult>('popwire-sync', { ...job, storeDir, mode: 'again', auth: 'USER' } satisfies Job & SyncJob);
      const againScram = await runScript<SyncResult>('popwire-sync', { ...job, storeDir, mode: 'again' } satisfies Job & SyncJob);
      row.raw.push(raw.sessionSeconds as number);
      row.first.push(first.seconds);
      row.speed.push((raw.sessionSeconds as number) / first.seconds);
      row.cpuUsPerMessage.push((1e6 * first.cpuSeconds) / job.count);
      row.listing.push(listing.seconds);
      row.again.push(again.seconds);
      row.againRatio.push(again.seconds / listing.seconds);
      row.againScram.push(againScram.seconds);
      row.againScramRatio.push(againScram.seconds / listing.seconds);
      if (again.phases.connecting !== undefined && again.phases.quitting !== undefined) {
        row.againSession.push(again.phases.quitting - again.phases.connecting);
        row.againSessionRatio.push((again.phases.quitting - again.phases.connecting) / listing.seconds);
      }
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  }
  return row;
}

export function printSyncCpuRow(row: SyncCpuRow): void {
  const list = (values: number[], digits = 2) => values.map((v) => v.toFixed(digits)).join(', ');
  const spread = (values: number[], digits = 2) => `${Math.min(...values).toFixed(digits)} to ${Math.max(...values).toFixed(digits)}`;
  console.log(`\n### (i) popwire sync against the raw limits, ${row.count} messages of about 4 KB, loopback, in process\n`);
  console.log('| run | seconds (median) | ratio (median of rounds) | spread of the ratio | target |');
  console.log('|---|---:|---:|---|---|');
  console.log(`| raw ceiling, connect to close | ${median(row.raw).toFixed(2)} | 1.00 | | |`);
  console.log(`| first sync into a fresh SQLite store (speed ÷ raw) | ${median(row.first).toFixed(2)} | ${median(row.speed).toFixed(2)} | ${spread(row.speed)} | at least 0.6 |`);
  console.log(`| raw session of UIDL and QUIT, connect to close | ${median(row.listing).toFixed(2)} | 1.00 | | |`);
  console.log(`| sync with nothing new, USER/PASS like the raw session (time ÷ raw UIDL session) | ${median(row.again).toFixed(2)} | ${median(row.againRatio).toFixed(2)} | ${spread(row.againRatio)} | at most 1.2 |`);
  if (row.againSession.length > 0) {
    console.log(`| of that run, connect to QUIT sent (no store claim before, no run's end after) | ${median(row.againSession).toFixed(2)} | ${median(row.againSessionRatio).toFixed(2)} | | |`);
  }
  console.log(`| the same with popwire's default login (SCRAM-SHA-256) | ${median(row.againScram).toFixed(2)} | ${median(row.againScramRatio).toFixed(2)} | ${spread(row.againScramRatio)} | |`);
  console.log(`\nCPU of the first sync: ${median(row.cpuUsPerMessage).toFixed(0)} us per message (median; every round ${list(row.cpuUsPerMessage, 0)}; target at most 200, half of the 400 measured before).`);
  console.log(`Every round, seconds: raw ${list(row.raw)}; first sync ${list(row.first)}; raw UIDL ${list(row.listing)}; nothing new ${list(row.again)}; nothing new, SCRAM ${list(row.againScram)}.`);
}
