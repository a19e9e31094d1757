/**
 * The syncfs helper a Maildir commit uses instead of one fsync per file: it answers each flush in
 * order, says when `sync -f` cannot be had (so that the Maildir fsyncs each file instead), and
 * turns a failed syncfs into a DeliveryError, never into a success.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeliveryError } from '../../src/delivery/delivery.ts';
import { kernelAtLeast, syncfsHelper } from '../../src/delivery/filesystem-flush.ts';

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'popwire-maildir-flush-test-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

/** A folder holding a `sync` that runs `script` (sh), to put first in PATH. */
async function fakeSync(name: string, script: string): Promise<string> {
  const bin = join(scratch, name);
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'sync'), `#!/bin/sh\n${script}\n`);
  await chmod(join(bin, 'sync'), 0o755);
  return `${bin}:/usr/bin:/bin`;
}

describe('syncfsHelper', { skip: process.platform !== 'linux' && 'syncfs is Linux only' }, () => {
  it('answers every flush with true through the real sync -f, in order, and false once stopped', async () => {
    const flush = syncfsHelper(scratch);
    assert.deepEqual(await Promise.all([flush.flush(), flush.flush(), flush.flush()]), [true, true, true]);
    assert.equal(await flush.flush(), true);
    flush.stop();
    flush.stop();
    assert.equal(await flush.flush(), false);
  });

  it('says false when sync knows no -f (the probe fails), so that the caller fsyncs each file', async () => {
    const path = await fakeSync('no-f', 'echo "sync: invalid option -- f" >&2; exit 1');
    const flush = syncfsHelper(scratch, { path });
    assert.equal(await flush.flush(), false);
    assert.equal(await flush.flush(), false);
    flush.stop();
  });

  it('rejects with a DeliveryError when a syncfs after the probe fails: a failed write is never a durable batch', async () => {
    const marker = join(scratch, 'probed');
    const path = await fakeSync('fails-later', `if [ -e '${marker}' ]; then exit 1; fi; : > '${marker}'; exit 0`);
    const flush = syncfsHelper(scratch, { path });
    await assert.rejects(flush.flush(), (error: unknown) => error instanceof DeliveryError && /syncfs of the filesystem holding .* failed/.test(error.message));
    flush.stop();
  });

  it('says false for the flushes waiting when the helper dies', async () => {
    const path = await fakeSync('dies', 'kill -9 $PPID; sleep 0.1');
    const flush = syncfsHelper(scratch, { path });
    assert.equal(await flush.flush(), false);
    flush.stop();
  });
});

describe('kernelAtLeast', () => {
  it('compares a kernel release with a major and minor version (syncfs reports write errors since 5.8)', () => {
    assert.equal(kernelAtLeast('5.8.0-1-amd64', 5, 8), true);
    assert.equal(kernelAtLeast('6.1.0-13-amd64', 5, 8), true);
    assert.equal(kernelAtLeast('5.10.0', 5, 8), true);
    assert.equal(kernelAtLeast('5.7.19', 5, 8), false);
    assert.equal(kernelAtLeast('4.18.0-513.el8.x86_64', 5, 8), false);
    assert.equal(kernelAtLeast('not a version', 5, 8), false);
  });
});
