/**
 * Shared by the benchmark's client scripts. Each runs in its own process (so peak RSS is its
 * own), reads its job from argv as JSON, and prints one JSON result line on stdout.
 */
import { readFileSync } from 'node:fs';

export interface Job {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Messages 1..count are retrieved. */
  count: number;
  /** For `popwire fetch` and mpop (scenario f): where to deliver, whether to delete, whose CA to trust over STLS. */
  fetch?: FetchJob;
  /** `popwire fetch` only: trace the session and report when each phase began (see FetchPhases). */
  phases?: boolean;
}

/** Seconds from the start of `popwire fetch`'s main() to each phase of its session (NaN: the phase did not happen). */
export interface FetchPhases {
  greeting: number;
  /** +OK to STLS, then the first command written over TLS: the handshake lies between. */
  tlsStarted: number;
  tlsDone: number;
  loginSent: number;
  listingSent: number;
  firstRetr: number;
  /** The end of the last body read. */
  lastBody: number;
  quitSent: number;
  quitAnswered: number;
  end: number;
}

export interface FetchJob {
  destination: 'mbox' | 'maildir';
  delete: boolean;
  /** Dovecot's certificate as a PEM file: STLS, verified. Absent: mpop runs in clear text, popwire with --insecure. */
  caFile?: string;
}

export interface Result {
  messages: number;
  /** Message octets delivered to the sink (the raw baseline counts wire octets). */
  bytes: number;
  /** Retrieval only: from the first RETR written to the last octet read; login excluded. */
  seconds: number;
  /** Connect to close, QUIT answered (scenario h), for the clients that report it. */
  sessionSeconds?: number;
  /** CPU time (user and system) of the process over `sessionSeconds` (over `seconds` for the clients timed by measure()), for the clients that report it. */
  cpuSeconds?: number;
  /** Peak RSS of the process, and RSS before retrieval started, in MiB. */
  peakRssMiB: number;
  startRssMiB: number;
  /** `popwire fetch` with `job.phases`. */
  fetchPhases?: FetchPhases;
}

/** How the library-side clients connect to the job's server: clear text, like the raw baseline they are compared with. */
export function plainSession(job: Job, timeout = 120_000) {
  return { host: job.host, port: job.port, tls: 'none' as const, allowPlaintextAuth: true, user: job.user, password: job.password, timeout };
}

export function readJob(): Job {
  const arg = process.argv[2];
  if (arg === undefined) throw new Error('usage: client.ts JOB_JSON');
  return JSON.parse(arg) as Job;
}

/** Times `retrieve` and prints the result line. */
export async function measure(retrieve: () => Promise<{ messages: number; bytes: number }>, more?: () => Partial<Result>): Promise<void> {
  const startRssMiB = process.memoryUsage.rss() / 2 ** 20;
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const { messages, bytes } = await retrieve();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { user, system } = process.cpuUsage(cpu);
  const peakRssMiB = peakRssKiB() / 1024;
  const result: Result = { messages, bytes, seconds, cpuSeconds: (user + system) / 1e6, peakRssMiB, startRssMiB, ...more?.() };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * The process's own peak RSS. Not process.resourceUsage().maxRSS: Linux carries ru_maxrss across
 * fork and exec, so a child would report its parent's peak (the bench's, which holds the 100 MB
 * fixture). VmHWM belongs to the address space that exec created.
 */
export function peakRssKiB(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return match ? Number(match[1]) : 0;
}

export function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i + 1);
}
