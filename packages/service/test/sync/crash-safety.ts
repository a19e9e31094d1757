/**
 * What crash.test.ts drives: a sync in a child process (crash-child.mjs, on the built service)
 * that can be started the moment the test wants it and killed with SIGKILL at any moment of its
 * run. A child takes some 0.4 s to start, so the next one is started while the current one runs:
 * it opens the store, says `ready`, and waits for `go ACCOUNT_ID`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./crash-child.mjs', import.meta.url));
const PACKAGES = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Throws unless every source the child runs (the client, and the service's sync/ and store/)
 * is older than its build in dist/: a child running yesterday's build would test yesterday's code.
 */
export async function assertBuildIsCurrent(): Promise<void> {
  const stale: string[] = [];
  for (const [pkg, under] of [['client', ''], ['service', 'sync'], ['service', 'store']] as const) {
    const src = join(PACKAGES, pkg, 'src', under);
    for (const name of await readdir(src, { recursive: true })) {
      if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue;
      const built = join(PACKAGES, pkg, 'dist', under, name.replace(/\.ts$/, '.js'));
      const [source, output] = await Promise.all([stat(join(src, name)), stat(built).catch(() => undefined)]);
      if (output === undefined || output.mtimeMs < source.mtimeMs) stale.push(join(pkg, 'src', under, name));
    }
  }
  if (stale.length > 0) throw new Error(`the build is older than ${stale.join(', ')}: run npx tsc -b packages/client packages/service first`);
}

export interface ChildEnd {
  readonly pid: number;
  /** Whether our SIGKILL ended it (false: it finished first). */
  readonly killed: boolean;
  readonly code: number | null;
  /** The last phase it announced, or `starting` if none. */
  readonly phase: string;
  /** Its `done` report when it finished. */
  readonly done: string | undefined;
  readonly stderr: string;
  /** Milliseconds from `go` to its exit. */
  readonly ms: number;
  /** Killed by the watchdog: it was still running STUCK_AFTER_MS after `go`. */
  readonly stuck: boolean;
}

/** A run of 303 messages takes seconds; one still going after this is waiting on something that will not come. */
export const STUCK_AFTER_MS = 60_000;

/** When to kill: `ms` after `go`, or `ms` after the child announced `phase` (never, if it does not). */
export type KillAt = { readonly ms: number; readonly phase?: string | undefined };

export class SyncChild {
  private phase = 'starting';
  private onPhase: ((phase: string) => void) | undefined;
  private done: string | undefined;
  private stderr = '';
  private readonly ready: Promise<void>;
  private readonly exited: Promise<[number | null, NodeJS.Signals | null]>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    const lines = createInterface({ input: child.stdout! });
    this.ready = new Promise((resolve, reject) => {
      lines.on('line', (line) => {
        if (line === 'ready') resolve();
        else if (line.startsWith('phase ')) {
          this.phase = line.slice(6);
          this.onPhase?.(this.phase);
        }
        else if (line.startsWith('done ')) this.done = line.slice(5);
      });
      void this.exited.then(([code]) => reject(new Error(`the sync child exited (${code}) before it was ready: ${this.stderr}`)));
    });
    // Rejections of `ready` after use are the exit's business, read through `run`.
    this.ready.catch(() => {});
  }

  /** `store`: a SQLite store's folder, or a PostgreSQL URL. */
  static start(store: string, port: number, password: string): SyncChild {
    const child = spawn(process.execPath, [CHILD, store, String(port), password], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new SyncChild(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts the run of `accountId`, and kills it at `at` unless it has ended. */
  async run(accountId: number, at: KillAt): Promise<ChildEnd> {
    await this.ready;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer = setTimeout(() => this.child.kill('SIGKILL'), at.ms);
    };
    if (at.phase === undefined) arm();
    else {
      this.onPhase = (phase) => {
        if (phase === at.phase) arm();
      };
    }
    let stuck = false;
    const watchdog = setTimeout(() => {
      stuck = true;
      this.child.kill('SIGKILL');
    }, STUCK_AFTER_MS);
    this.child.stdin!.end(`go ${accountId}\n`);
    const [code, signal] = await this.exited;
    clearTimeout(timer);
    clearTimeout(watchdog);
    return { pid: this.pid, killed: signal === 'SIGKILL' && !stuck, code, phase: this.phase, done: this.done, stderr: this.stderr, ms: performance.now() - started, stuck };
  }

  /** Ends a child that was never used. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** mulberry32: a small seeded generator, so that a run's kill moments can be drawn again from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
