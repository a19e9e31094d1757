/**
 * The sync engine (scenario d): syncAccount, in this process, from the built service package
 * (as `popwire sync` runs it), into an SQLite store in `job.storeDir`.
 *
 * `first`: the folder is empty; the store is created, the account added, and one sync run
 * retrieves and commits every message. `again`: a new process on the store that `first` left,
 * against the same mailbox: a run with nothing new. Each is its own process, so `again` pays
 * what a `popwire sync` run with nothing to do pays (cold code, store opened), and peak RSS is
 * that run's own.
 *
 * `seconds` is the syncAccount call: connect and login, UIDL (and LIST when something is new),
 * retrieval and commits, QUIT, the run's bookkeeping. Opening the store is timed apart
 * (`openSeconds`); `phases` says when each phase began, in seconds from the start of the call;
 * `cpuSeconds` is the CPU time the process spent in it.
 */
import { Pop3Client, type Pop3ClientOptions } from 'popwire';
import { Store } from '../../packages/service/dist/store/store.js';
import { syncAccount, DEFAULT_POLICY, type SyncPhase } from '../../packages/service/dist/sync/index.js';
import { peakRssKiB, plainSession, readJob, type Result } from './common.ts';

export interface SyncJob {
  storeDir: string;
  mode: 'first' | 'again';
  /**
   * The login mechanism (the `auth` option). Default: the strongest the server offers, which on
   * Dovecot is SCRAM-SHA-256: two more round trips than USER/PASS and a PBKDF2 on each side, some
   * 15 to 25 ms. Scenario (i) asks for USER when it compares a run with nothing new with a raw
   * session that logs in with USER and PASS: like with like.
   */
  auth?: Pop3ClientOptions['auth'];
}

export interface SyncResult extends Result {
  mode: SyncJob['mode'];
  openSeconds: number;
  /** CPU time (user and system, all threads) of this process during the syncAccount call: what contention on the machine does not change much. */
  cpuSeconds: number;
  newMessages: number;
  alreadyHad: number;
  /** Seconds from the start of syncAccount to the first progress report of each phase. */
  phases: Partial<Record<SyncPhase, number>>;
}

const job = readJob() as ReturnType<typeof readJob> & SyncJob;
const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

const opening = process.hrtime.bigint();
const store = await Store.open({ kind: 'sqlite', dir: job.storeDir });
const openSeconds = seconds(opening);
try {
  const now = Date.now();
  const account =
    job.mode === 'first'
      ? await store.accounts.upsert(
          {
            key: `${job.user}@${job.host}:${job.port}`,
            host: job.host,
            port: job.port,
            tls: 'none',
            username: job.user,
            auth: null,
            policy: 'leave',
            keep_days: null,
            max_size: null,
            oversize: 'skip',
            identity: null,
            status_note: null,
            retry_after: null,
            lock_owner: null,
            lock_expires: null,
          },
          now,
        )
      : (await store.accounts.list())[0];
  if (account === undefined) throw new Error(`no account in ${job.storeDir}: run mode "first" there before "again"`);

  const phases: SyncResult['phases'] = {};
  const startRssMiB = process.memoryUsage.rss() / 2 ** 20;
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const report = await syncAccount({
    store,
    accountId: account.id,
    policy: DEFAULT_POLICY,
    repeat: false,
    connect: () => Pop3Client.connect({ ...plainSession(job, 300_000), ...(job.auth === undefined ? {} : { auth: job.auth }) }),
    onProgress: (progress) => (phases[progress.phase] ??= seconds(started)),
  });
  const elapsed = seconds(started);
  const { user, system } = process.cpuUsage(cpu);
  const peakRssMiB = peakRssKiB() / 1024;
  if (report.status !== 'ok') throw new Error(`sync ended ${report.status}: ${String(report.error)}`);
  const expected = job.mode === 'first' ? [job.count, 0] : [0, job.count];
  if (report.newMessages !== expected[0] || report.alreadyHad !== expected[1]) {
    throw new Error(`sync (${job.mode}) stored ${report.newMessages} new and had ${report.alreadyHad}; expected ${expected[0]} and ${expected[1]}`);
  }
  const result: SyncResult = {
    messages: job.mode === 'first' ? report.newMessages : report.alreadyHad,
    bytes: report.bytes,
    seconds: elapsed,
    peakRssMiB,
    startRssMiB,
    mode: job.mode,
    openSeconds,
    cpuSeconds: (user + system) / 1e6,
    newMessages: report.newMessages,
    alreadyHad: report.alreadyHad,
    phases,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await store.close();
}
