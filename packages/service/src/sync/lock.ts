import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import { SyncError } from './errors.js';

/**
 * At most one sync per account at a time. Two would both see the same new UIDs and store them
 * twice (POP3 itself may not stop them: Dovecot lets two sessions in unless pop3_lock_session is
 * set). The claim is a lease on the account's row: taken with one conditional UPDATE, renewed
 * while the sync runs, released at its end. A claim whose holder died is taken over when its
 * lease ran out, or at once when the holder was a process on this machine that no longer
 * exists (a `popwire sync` killed with SIGKILL must not block the next run for a minute).
 *
 * The lease is also the heartbeat by which the pg-boss scheduler tells a sync whose process died
 * (jobs/pg-boss.ts, reapOrphans): a running sync renews it every third of its length, so a lease
 * that ran out means nobody is running that account's sync any more.
 */
export const LEASE_MS = 60_000;

export class AccountLock {
  private timer: NodeJS.Timeout | undefined;
  private lost: Error | undefined;

  private constructor(
    private readonly db: Kysely<Database>,
    private readonly accountId: number,
    readonly owner: string,
    private readonly leaseMs: number,
  ) {}

  /**
   * `leaseMs`: how long the claim lasts unrenewed (config jobs.leaseSeconds); renewed every third
   * of it. `within`: a transaction to claim in (the run's row is opened in the same commit,
   * sync/run.ts); renewals and the release go through `db`. If that transaction does not commit,
   * release the lock (its renewals stop).
   */
  static async acquire(db: Kysely<Database>, accountId: number, now = Date.now(), leaseMs = LEASE_MS, within: Kysely<Database> = db): Promise<AccountLock> {
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 1000) throw new RangeError(`the sync lease must be at least 1000 ms; got ${leaseMs}`);
    const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    const lock = new AccountLock(db, accountId, owner, leaseMs);
    if (!(await lock.claim(within, now))) {
      const holder = await within.selectFrom('accounts').select(['lock_owner', 'lock_expires']).where('id', '=', accountId).executeTakeFirst();
      if (holder?.lock_owner != null && holderIsGone(holder.lock_owner) && (await lock.takeOver(within, holder.lock_owner, now))) return lock.started();
      throw new SyncError('SYNC_LOCKED', `another sync of this account is running (${holder?.lock_owner ?? 'unknown'})`);
    }
    return lock.started();
  }

  /** Throws if the lease was lost (renewal failed), so that the sync stops before it deletes anything. */
  check(): void {
    if (this.lost !== undefined) throw this.lost;
  }

  /** `within`: a transaction to release in, with the run's last writes (sync/run.ts). */
  async release(within: Kysely<Database> = this.db): Promise<void> {
    clearInterval(this.timer);
    await within.updateTable('accounts').set({ lock_owner: null, lock_expires: null }).where('id', '=', this.accountId).where('lock_owner', '=', this.owner).execute();
  }

  private started(): this {
    this.timer = setInterval(() => void this.renew(), this.leaseMs / 3);
    this.timer.unref();
    return this;
  }

  private async claim(within: Kysely<Database>, now: number): Promise<boolean> {
    const result = await within
      .updateTable('accounts')
      .set({ lock_owner: this.owner, lock_expires: now + this.leaseMs })
      .where('id', '=', this.accountId)
      .where((eb) => eb.or([eb('lock_owner', 'is', null), eb('lock_expires', '<', now)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  private async takeOver(within: Kysely<Database>, previous: string, now: number): Promise<boolean> {
    const result = await within
      .updateTable('accounts')
      .set({ lock_owner: this.owner, lock_expires: now + this.leaseMs })
      .where('id', '=', this.accountId)
      .where('lock_owner', '=', previous)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  private async renew(): Promise<void> {
    try {
      const result = await this.db
        .updateTable('accounts')
        .set({ lock_expires: Date.now() + this.leaseMs })
        .where('id', '=', this.accountId)
        .where('lock_owner', '=', this.owner)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) this.lost = new SyncError('SYNC_LOCKED', 'the sync lock was taken over by another process');
    } catch (cause) {
      this.lost = new SyncError('SYNC_LOCKED', 'the sync lock could not be renewed', { cause });
    }
  }
}

/** A holder on this machine whose process has exited. Another machine's holder is never judged gone: its lease must run out. */
function holderIsGone(owner: string): boolean {
  const [host, pid] = owner.split(':');
  if (host !== hostname() || pid === undefined || !/^\d+$/.test(pid)) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
