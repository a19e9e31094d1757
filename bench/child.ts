/** Runs one benchmark client script in its own process and returns its result line. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Result } from './clients/common.ts';

export async function runScript<R extends Result = Result>(script: string, job: object, label = script): Promise<R> {
  const path = fileURLToPath(new URL(`./clients/${script}.ts`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`${label} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) as string) as R;
}

/** The middle value (the upper one of an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}
