/**
 * Running the built `popwire` bin as a child process, for the end-to-end tests of the command
 * line. The bin runs the bundle of scripts/build.mjs (node scripts/build.mjs); a bundle older than
 * the sources is remade when this module loads.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDeliveryDovecot, type DeliveryDovecot } from '../../../../support/dovecot-delivery.ts';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { ensureBundleIsCurrent } from './bundle-current.ts';

ensureBundleIsCurrent();

export const BIN = fileURLToPath(new URL('../../bin/popwire.js', import.meta.url));

export interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export interface SpawnOptions {
  /** POPWIRE_PASSWORD, set only when given (never inherited from whoever runs the tests). */
  readonly password?: string | undefined;
  /** More environment variables. */
  readonly env?: Readonly<Record<string, string>>;
  /** Runs `popwire ARGS` through this shell line instead of directly: `"$@"` stands for node, the bin and ARGS. */
  readonly shell?: string;
  /** The working folder; by default the test's. */
  readonly cwd?: string;
}

/** Starts the bin with stdin not a terminal. */
export function spawnPopwire(args: readonly string[], options: SpawnOptions = {}): ChildProcessWithoutNullStreams {
  const { POPWIRE_PASSWORD: _inherited, ...inherited } = process.env;
  const env = { ...inherited, ...options.env, ...(options.password === undefined ? {} : { POPWIRE_PASSWORD: options.password }) };
  const command = [process.execPath, BIN, ...args];
  const child =
    options.shell === undefined
      ? spawn(process.execPath, [BIN, ...args], { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('bash', ['-c', options.shell, 'popwire', ...command], { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  return child as unknown as ChildProcessWithoutNullStreams;
}

/** Everything the child wrote, and how it ended. */
export async function finished(child: ChildProcessWithoutNullStreams): Promise<Run> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') };
}

export function popwire(args: readonly string[], options: SpawnOptions = {}): Promise<Run> {
  return finished(spawnPopwire(args, options));
}

export function succeeded(run: Run): Run {
  assert.equal(run.code, 0, `exit ${run.code}, stderr: ${run.stderr}`);
  assert.equal(run.stderr, '');
  return run;
}

/** A failure is exactly one `popwire: ...` line on stderr, and nothing on stdout. */
export function failedWith(run: Run, code: number, message: RegExp): void {
  assert.equal(run.code, code, `stderr: ${run.stderr}`);
  assert.match(run.stderr, /^popwire: [^\n]+\n$/);
  assert.match(run.stderr, message);
  assert.equal(run.stdout.length, 0);
}

/** What --json printed, as the type the command promises. */
export function parseJson<T>(run: Run): T {
  return JSON.parse(run.stdout.toString('utf8')) as T;
}

/** A private Dovecot and a scratch folder holding its CA as `ca.pem`, for one CLI test file. */
export interface DovecotScratch {
  readonly dovecot: Dovecot;
  readonly scratch: string;
  readonly caFile: string;
  /** Stops Dovecot and removes the folder. */
  stop(): Promise<void>;
}

export async function dovecotScratch(prefix: string): Promise<DovecotScratch> {
  const dovecot = await startDovecot();
  const scratch = await mkdtemp(join(tmpdir(), prefix));
  const caFile = join(scratch, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
  return {
    dovecot,
    scratch,
    caFile,
    stop: async () => {
      await dovecot.stop();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

export interface DeliveryScratch extends DovecotScratch {
  /** A second Dovecot that takes mail by LMTP and IMAP, where the destinations deliver. */
  readonly target: DeliveryDovecot;
}

/** The source Dovecot of dovecotScratch and a delivery Dovecot beside it, both stopped by `stop`. */
export async function deliveryScratch(prefix: string): Promise<DeliveryScratch> {
  const [source, target] = await Promise.all([dovecotScratch(prefix), startDeliveryDovecot()]);
  return { ...source, target, stop: async () => void (await Promise.all([source.stop(), target.stop()])) };
}

/** A small message with a Return-Path (the envelope sender) and a line that needs dot-stuffing. */
export const deliveryMessage = (subject: string): Buffer =>
  Buffer.from(`Return-Path: <sender@example.org>\r\nDate: Tue, 03 Mar 2026 10:20:30 +0000\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n.dot line\r\n`);
