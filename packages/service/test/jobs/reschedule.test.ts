/**
 * When an account syncs next, for every way its job can end; and the backoff's numbers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3AuthenticationError, Pop3ConnectionError, Pop3ServerError } from 'popwire';
import { backoffDelay } from '../../src/jobs/backoff.ts';
import { effectiveInterval } from '../../src/jobs/common.ts';
import { DEFAULT_SYNC_BACKOFF, nextSync, type JobOutcome } from '../../src/jobs/reschedule.ts';
import { SyncError, type SyncReport } from '../../src/sync/index.ts';
import { LEASE_MS } from '../../src/sync/lock.ts';

const NOW = 1_000_000_000;
const NO_JITTER = { ...DEFAULT_SYNC_BACKOFF, jitter: 0 };

function report(status: SyncReport['status'], extra: Partial<SyncReport> = {}): JobOutcome {
  const base: SyncReport = {
    runId: 1, accountId: 1, status, sessions: 1, newMessages: 0, headersOnly: 0, alreadyHad: 0, deleted: 0,
    skipped: [], bytes: 0, seconds: 0, identity: 'uidl', notes: [], retryAfter: null, error: undefined, ignoredExisting: 0,
    delivery: { handedOver: 0, delivered: 0, temporary: 0, permanent: 0, undelivered: 0, refusals: [] },
  };
  return { kind: 'report', report: { ...base, ...extra }, abandoned: false };
}

const rejected = new Pop3AuthenticationError('The server rejected the credentials', { code: 'POP3_AUTH_FAILED', responseCode: 'AUTH' });
const refused = new Pop3ConnectionError('connection refused', { code: 'POP3_CONNECT_FAILED' });

describe('nextSync', () => {
  it('after ok or stopped: one interval from now, and the failure count starts again', () => {
    assert.deepEqual(nextSync(report('ok'), 300, 4, NOW, NO_JITTER), { nextSyncAt: NOW + 300_000, failures: 0 });
    assert.deepEqual(nextSync(report('stopped'), 300, 0, NOW, NO_JITTER), { nextSyncAt: NOW + 300_000, failures: 0 });
  });

  it('after deferred: when the server said, not sooner', () => {
    const error = new Pop3AuthenticationError('in use', { code: 'POP3_AUTH_FAILED', responseCode: 'IN-USE' });
    assert.deepEqual(nextSync(report('deferred', { retryAfter: NOW + 60_000, error }), 1, 2, NOW, NO_JITTER), { nextSyncAt: NOW + 60_000, failures: 2 });
  });

  it('after rejected credentials: needs attention and no new time, however short the interval', () => {
    assert.deepEqual(nextSync(report('failed', { error: rejected }), 1, 0, NOW, NO_JITTER), { needsAttention: true, failures: 1 });
  });

  it('a temporary login refusal ([SYS/TEMP]) is a failure to back off from, not a rejected password', () => {
    const temporary = new Pop3AuthenticationError('try later', { code: 'POP3_AUTH_FAILED', responseCode: 'SYS/TEMP' });
    assert.deepEqual(nextSync(report('failed', { error: temporary }), 300, 0, NOW, NO_JITTER), { nextSyncAt: NOW + 30_000, failures: 1 });
  });

  it('after other failures: 30 s, 1 min, 2 min ... capped at 1 h, whatever the interval', () => {
    const waits = [0, 1, 2, 3, 4, 5, 6, 7, 8, 20].map((failures) => nextSync(report('failed', { error: refused }), 86_400, failures, NOW, NO_JITTER).nextSyncAt! - NOW);
    assert.deepEqual(waits, [30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000]);
    const store = nextSync({ kind: 'error', error: new Error('disk full'), accountGone: false }, 1, 1, NOW, NO_JITTER);
    assert.deepEqual(store, { nextSyncAt: NOW + 60_000, failures: 2 });
  });

  it('when another process holds the lock: again after an interval, at most a lease away; a lost lease counts the same', () => {
    assert.deepEqual(nextSync({ kind: 'locked' }, 5, 3, NOW, NO_JITTER), { nextSyncAt: NOW + 5_000, failures: 3 });
    assert.deepEqual(nextSync({ kind: 'locked' }, 3600, 0, NOW, NO_JITTER), { nextSyncAt: NOW + LEASE_MS, failures: 0 });
    const lost = report('failed', { error: new SyncError('SYNC_LOCKED', 'lease lost') });
    assert.deepEqual(nextSync(lost, 5, 0, NOW, NO_JITTER), { nextSyncAt: NOW + 5_000, failures: 0 });
  });

  it('leaves the time alone for a run abandoned at shutdown, a skipped job, an account gone, or an on-request account', () => {
    const abandoned: JobOutcome = { ...(report('failed', { error: refused }) as Extract<JobOutcome, { kind: 'report' }>), abandoned: true };
    assert.deepEqual(nextSync(abandoned, 60, 1, NOW, NO_JITTER), { failures: 1 });
    assert.deepEqual(nextSync({ kind: 'skipped' }, 60, 0, NOW, NO_JITTER), { failures: 0 });
    assert.deepEqual(nextSync({ kind: 'error', error: new Error('gone'), accountGone: true }, 60, 0, NOW, NO_JITTER), { failures: 0 });
    assert.deepEqual(nextSync(report('ok'), null, 0, NOW, NO_JITTER), { nextSyncAt: undefined, failures: 0 });
    assert.deepEqual(nextSync(report('failed', { error: new Pop3ServerError('no', { code: 'POP3_ERR_REPLY' }) }), null, 0, NOW, NO_JITTER), { nextSyncAt: undefined, failures: 1 });
  });
});

describe('effectiveInterval', () => {
  it("is the account's interval, but never under the floor nor under the server's LOGIN-DELAY", () => {
    assert.equal(effectiveInterval({ sync_interval: 300, login_delay: null }, 60), 300);
    // An account stored before the floor existed, with 1 s.
    assert.equal(effectiveInterval({ sync_interval: 1, login_delay: null }, 60), 60);
    // Gmail announces LOGIN-DELAY 300.
    assert.equal(effectiveInterval({ sync_interval: 60, login_delay: 300 }, 60), 300);
    assert.equal(effectiveInterval({ sync_interval: 900, login_delay: 300 }, 60), 900);
    assert.equal(effectiveInterval({ sync_interval: null, login_delay: 300 }, 60), null);
  });
});

describe('backoffDelay', () => {
  it('falls between half and all of the doubled wait with the default jitter, and never above the cap', () => {
    const b = DEFAULT_SYNC_BACKOFF;
    assert.equal(backoffDelay(1, b, () => 0), 30_000);
    assert.equal(backoffDelay(1, b, () => 1), 15_000);
    assert.equal(backoffDelay(3, b, () => 0.5), 90_000);
    assert.equal(backoffDelay(2000, b, () => 0), 3_600_000);
    for (let attempt = 1; attempt < 40; attempt++) {
      const delay = backoffDelay(attempt, b);
      const whole = Math.min(b.maxMs, b.baseMs * 2 ** (attempt - 1));
      assert.ok(delay >= whole / 2 && delay <= whole, `attempt ${attempt}: ${delay}`);
    }
  });
});
