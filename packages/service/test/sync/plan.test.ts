/**
 * The session plan, case by case and as properties: every listed message gets exactly one
 * fate, and nothing but a committed whole message is ever chosen for DELE.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { disambiguate, digestUid, type ListedMessage } from '../../src/sync/listing.ts';
import { planDeletions, planSession } from '../../src/sync/plan.ts';
import { DAY_MS, type SyncPolicy } from '../../src/sync/policy.ts';
import type { SeenState, SeenUid } from '../../src/store/schema.ts';

const LEAVE: SyncPolicy = { retention: 'leave', oversize: 'skip' };

function row(uid: string, state: SeenState, listedSize: number, extra: Partial<SeenUid> = {}): SeenUid {
  return { account_id: 1, uid, state, listed_size: listedSize, message_id: state === 'skipped' ? null : 1, first_seen_at: 0, deleted_at: null, ...extra };
}

const seenOf = (...rows: SeenUid[]) => new Map(rows.map((r) => [r.uid, r]));
const uids = (messages: readonly ListedMessage[]) => messages.map((m) => m.uid);

describe('planSession', () => {
  const listing: ListedMessage[] = [
    { n: 1, uid: 'a', size: 100 },
    { n: 2, uid: 'b', size: 200 },
    { n: 3, uid: 'c', size: 5000 },
  ];

  it('retrieves every message of a mailbox never seen before', () => {
    const plan = planSession(listing, new Map(), LEAVE);
    assert.deepEqual(uids(plan.retrieve), ['a', 'b', 'c']);
    assert.deepEqual(uids(plan.known), []);
  });

  it('retrieves only the UIDs it has not stored', () => {
    const plan = planSession(listing, seenOf(row('a', 'stored', 100)), LEAVE);
    assert.deepEqual(uids(plan.retrieve), ['b', 'c']);
    assert.deepEqual(uids(plan.known), ['a']);
  });

  it('skips a message over the size limit and reports it, run after run', () => {
    const policy: SyncPolicy = { ...LEAVE, maxSize: 1000 };
    const first = planSession(listing, new Map(), policy);
    assert.deepEqual(uids(first.skipped), ['c']);
    const again = planSession(listing, seenOf(row('c', 'skipped', 5000)), policy);
    assert.deepEqual(uids(again.skipped), ['c']);
    assert.deepEqual(uids(again.retrieve), ['a', 'b']);
  });

  it('retrieves a skipped message once the limit allows it', () => {
    const plan = planSession(listing, seenOf(row('c', 'skipped', 5000)), { ...LEAVE, maxSize: 10_000 });
    assert.deepEqual(uids(plan.retrieve), ['a', 'b', 'c']);
  });

  it('keeps the headers of an oversized message once, then counts it known', () => {
    const policy: SyncPolicy = { ...LEAVE, maxSize: 1000, oversize: 'headers' };
    assert.deepEqual(uids(planSession(listing, new Map(), policy).headers), ['c']);
    const again = planSession(listing, seenOf(row('c', 'headers', 5000)), policy);
    assert.deepEqual(uids(again.headers), []);
    assert.deepEqual(uids(again.known), ['c']);
  });

  it('retrieves the whole message whose headers it kept once the limit is raised', () => {
    const plan = planSession(listing, seenOf(row('c', 'headers', 5000)), { ...LEAVE, maxSize: 10_000, oversize: 'headers' });
    assert.deepEqual(uids(plan.retrieve), ['a', 'b', 'c']);
  });

  it('treats a known UID listed with another size as a reused UID and retrieves it again', () => {
    const plan = planSession(listing, seenOf(row('b', 'stored', 999)), LEAVE);
    assert.deepEqual(uids(plan.reused), ['b']);
    assert.deepEqual(uids(plan.retrieve), ['a', 'b', 'c']);
  });

  it('retrieves again a UID it saw deleted that the server lists once more', () => {
    const plan = planSession(listing, seenOf(row('a', 'stored', 100, { deleted_at: 5 })), LEAVE);
    assert.deepEqual(uids(plan.reused), ['a']);
    assert.ok(uids(plan.retrieve).includes('a'));
  });
});

describe('planDeletions', () => {
  const listing: ListedMessage[] = [
    { n: 1, uid: 'old', size: 1 },
    { n: 2, uid: 'new', size: 1 },
    { n: 3, uid: 'not-stored', size: 1 },
  ];
  const now = 100 * DAY_MS;
  const stored = new Map([
    ['old', { firstSeenAt: now - 31 * DAY_MS }],
    ['new', { firstSeenAt: now - 1 * DAY_MS }],
  ]);

  it('deletes nothing when the policy is leave', () => {
    assert.deepEqual(planDeletions(listing, stored, LEAVE, now), []);
  });

  it('deletes every stored message, and only those, when the policy is delete', () => {
    assert.deepEqual(uids(planDeletions(listing, stored, { ...LEAVE, retention: 'delete' }, now)), ['old', 'new']);
  });

  it('deletes only the messages first seen at least N days ago when the policy is keep', () => {
    assert.deepEqual(uids(planDeletions(listing, stored, { ...LEAVE, retention: 'keep', keepDays: 30 }, now)), ['old']);
    assert.deepEqual(uids(planDeletions(listing, stored, { ...LEAVE, retention: 'keep', keepDays: 0 }, now)), ['old', 'new']);
  });
});

describe('the plan, for any listing, seen UIDs and policy', () => {
  const states = fc.constantFrom<SeenState>('stored', 'headers', 'skipped');
  const scenario = fc.record({
    listed: fc.array(fc.record({ uid: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), size: fc.integer({ min: 0, max: 3000 }) }), { maxLength: 12 }),
    seen: fc.array(fc.record({ uid: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), state: states, size: fc.integer({ min: 0, max: 3000 }), deleted: fc.boolean() })),
    policy: fc.record({
      retention: fc.constantFrom('leave' as const, 'delete' as const, 'keep' as const),
      keepDays: fc.integer({ min: 0, max: 60 }),
      maxSize: fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined }),
      oversize: fc.constantFrom('skip' as const, 'headers' as const),
    }),
  });

  it('gives each listed message exactly one fate', () => {
    fc.assert(
      fc.property(scenario, ({ listed, seen, policy }) => {
        const listing = disambiguate(listed.map((m, i) => ({ n: i + 1, ...m })), 'uidl').messages;
        const rows = seenOf(...seen.map((s) => row(s.uid, s.state, s.size, { deleted_at: s.deleted ? 1 : null })));
        const plan = planSession(listing, rows, policy);
        const fates = [...plan.retrieve, ...plan.headers, ...plan.skipped, ...plan.known].map((m) => m.n).sort((x, y) => x - y);
        assert.deepEqual(fates, listing.map((m) => m.n));
        for (const m of plan.retrieve) assert.ok(policy.maxSize === undefined || m.size <= policy.maxSize, 'retrieves nothing over the limit');
      }),
      { numRuns: 2000 },
    );
  });

  it('never chooses for DELE a message that is not stored whole', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 0, max: 100 }), ({ listed, seen, policy }, day) => {
        const listing = disambiguate(listed.map((m, i) => ({ n: i + 1, ...m })), 'uidl').messages;
        const committed = new Map(seen.filter((s) => s.state === 'stored').map((s) => [s.uid as string, { firstSeenAt: 0 }]));
        const chosen = planDeletions(listing, committed, policy, day * DAY_MS);
        for (const m of chosen) assert.ok(committed.has(m.uid), `${m.uid} is committed`);
        if (policy.retention === 'leave') assert.equal(chosen.length, 0);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('disambiguate', () => {
  it('names the repeats of a UID apart, in listing order, with a suffix no real UID can have', () => {
    const listing = disambiguate(
      [
        { n: 1, uid: 'x', size: 1 },
        { n: 2, uid: 'y', size: 1 },
        { n: 3, uid: 'x', size: 2 },
        { n: 4, uid: 'x', size: 3 },
      ],
      'uidl',
    );
    assert.deepEqual(uids(listing.messages), ['x', 'y', 'x #2', 'x #3']);
    assert.equal(listing.duplicates, 2);
  });
});

describe('digestUid', () => {
  it('depends on the header bytes and on the size', () => {
    const head = Buffer.from('Message-ID: <a@b>\r\n\r\n');
    assert.equal(digestUid(head, 10), digestUid(Buffer.from(head), 10));
    assert.notEqual(digestUid(head, 10), digestUid(head, 11));
    assert.notEqual(digestUid(head, 10), digestUid(Buffer.from('Message-ID: <b@b>\r\n\r\n'), 10));
    assert.match(digestUid(head, 10), /^digest-[0-9a-f]{40}$/);
  });
});
