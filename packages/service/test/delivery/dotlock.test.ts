/**
 * The mbox dotlock: taken with O_EXCL, waited for while another holder has it, given up on
 * clearly, and broken when its holder is gone (a dead pid on this host, or five minutes untouched).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { acquireDotlock, LockBusyError, STALE_AFTER_MS } from '../../src/delivery/dotlock.ts';

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'popwire-dotlock-test-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

let files = 0;
const freshMbox = () => join(scratch, `mbox${++files}`);

const exists = (path: string) => stat(path).then(() => true, () => false);

/** The pid of a process that has exited (reaped), so that nothing runs under it now. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('acquireDotlock', () => {
  it('creates FILE.lock holding "<pid> <host>", and release() removes it', async () => {
    const mbox = freshMbox();
    const lock = await acquireDotlock(mbox, { timeoutMs: 0 });
    assert.equal(lock.path, `${mbox}.lock`);
    assert.equal(await readFile(lock.path, 'utf8'), `${process.pid} ${hostname()}\n`);
    await lock.release();
    assert.equal(await exists(lock.path), false);
  });

  it('a second taker waits while the lock is held, and gets it once it is released', async () => {
    const mbox = freshMbox();
    const first = await acquireDotlock(mbox, { timeoutMs: 0 });
    let taken = false;
    const second = acquireDotlock(mbox, { timeoutMs: 5_000 }).then((lock) => {
      taken = true;
      return lock;
    });
    await delay(200);
    assert.equal(taken, false, 'the second taker did not wait');
    await first.release();
    const lock = await second;
    assert.equal(await readFile(lock.path, 'utf8'), `${process.pid} ${hostname()}\n`);
    await lock.release();
  });

  it('gives up after the timeout with a message naming the lock, its holder, and how to clear it', async () => {
    const mbox = freshMbox();
    // Held by a live process on this host (this one), in a lock file of another program's making.
    await writeFile(`${mbox}.lock`, `${process.pid}\n`);
    const started = Date.now();
    await assert.rejects(acquireDotlock(mbox, { timeoutMs: 300 }), (error: unknown) => {
      assert.ok(error instanceof LockBusyError);
      assert.match(error.message, new RegExp(`locked by another program \\(${mbox}\\.lock, held by pid ${process.pid}\\)`));
      assert.match(error.message, /gave up after 300 ms.*remove .*\.lock/);
      return true;
    });
    assert.ok(Date.now() - started >= 290);
    assert.equal(await readFile(`${mbox}.lock`, 'utf8'), `${process.pid}\n`, 'a live lock is left alone');
  });

  it('an abort signal ends the wait at once', async () => {
    const mbox = freshMbox();
    await writeFile(`${mbox}.lock`, `${process.pid}\n`);
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(acquireDotlock(mbox, { timeoutMs: 30_000, signal: controller.signal }), { name: 'AbortError' });
    assert.ok(Date.now() - started < 5_000);
  });

  it('breaks at once a lock whose holder on this host is gone (a dead pid)', async () => {
    const mbox = freshMbox();
    await writeFile(`${mbox}.lock`, `${deadPid()} ${hostname()}\n`);
    const lock = await acquireDotlock(mbox, { timeoutMs: 0 });
    assert.equal(await readFile(lock.path, 'utf8'), `${process.pid} ${hostname()}\n`);
    await lock.release();
  });

  it('breaks at once a lock holding only a dead pid (liblockfile writes "<pid>\\n")', async () => {
    const mbox = freshMbox();
    await writeFile(`${mbox}.lock`, `${deadPid()}\n`);
    const lock = await acquireDotlock(mbox, { timeoutMs: 0 });
    await lock.release();
  });

  it('breaks a lock untouched for five minutes, whoever holds it', async () => {
    const mbox = freshMbox();
    await writeFile(`${mbox}.lock`, '');
    const old = new Date(Date.now() - STALE_AFTER_MS - 10_000);
    await utimes(`${mbox}.lock`, old, old);
    const lock = await acquireDotlock(mbox, { timeoutMs: 0 });
    await lock.release();
  });

  it('does not break a fresh lock of another host, whatever its pid: the pid means nothing here', async () => {
    const mbox = freshMbox();
    await writeFile(`${mbox}.lock`, `${deadPid()} some-other-host.example\n`);
    await assert.rejects(acquireDotlock(mbox, { timeoutMs: 100 }), LockBusyError);
  });

  it('release() leaves alone a lock that is no longer ours', async () => {
    const mbox = freshMbox();
    const lock = await acquireDotlock(mbox, { timeoutMs: 0 });
    await writeFile(lock.path, 'someone else\n');
    await lock.release();
    assert.equal(await readFile(lock.path, 'utf8'), 'someone else\n');
  });

  it('releaseSync() removes our lock, for a process on its way out', async () => {
    const mbox = freshMbox();
    const lock = await acquireDotlock(mbox, { timeoutMs: 0 });
    lock.releaseSync();
    assert.equal(await exists(lock.path), false);
  });
});
