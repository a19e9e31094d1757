/**
 * The sync's promise against what a real server will not do on demand, with a scripted maildrop
 * (scripted-mailbox.ts): a RETR refused mid-pipeline, a UID listed twice, no UIDL, a UID given to
 * another message, [IN-USE] at login, and Gmail's partial listings, cut or not. Each case checks
 * that every message ends up stored exactly once and none is deleted unstored.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { Pop3Client } from 'popwire';
import { Store } from '../../src/store/store.ts';
import { syncAccount, type SyncPolicy } from '../../src/sync/index.ts';
import { DAY_MS } from '../../src/sync/policy.ts';
import { addAccount, assertExactlyOnce, assertNothingLost, delivered, storedRows, type Delivered } from './promise-checks.ts';
import { message, startScriptedMailbox, type ScriptedMailbox, type ScriptedMailboxOptions, type MailboxMessage } from './scripted-mailbox.ts';

const DELETE: SyncPolicy = { retention: 'delete', oversize: 'skip' };

describe('a sync against a scripted maildrop', () => {
  let mailbox: ScriptedMailbox | undefined;
  let store: Store | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await store?.close();
    await mailbox?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    store = undefined;
    mailbox = undefined;
    dir = undefined;
  });

  async function setUp(messages: MailboxMessage[], options?: ScriptedMailboxOptions) {
    mailbox = await startScriptedMailbox(messages, options);
    dir = await mkdtemp(join(tmpdir(), 'popwire-sync-scripted-'));
    store = await Store.open({ kind: 'sqlite', dir });
    const accountId = await addAccount(store, mailbox.server.port);
    const port = mailbox.server.port;
    const run = (policy: SyncPolicy, extra: { repeat?: boolean; now?: () => number } = {}) =>
      syncAccount({
        store: store!,
        accountId,
        policy,
        ...extra,
        connect: () => Pop3Client.connect({ host: '127.0.0.1', port, tls: 'none', user: 'alice', password: 'secret', allowPlaintextAuth: true, timeout: 5_000 }),
      });
    const check = async (expected: readonly Delivered[], when: string) => assertExactlyOnce(expected, await storedRows(store!, accountId), when);
    return { mailbox, store, accountId, run, check };
  }

  const asDelivered = (messages: ReadonlyArray<{ uid: string; bytes: Buffer }>) => messages.map((m, i) => delivered(`${m.uid} (#${i + 1})`, m.bytes));

  it('a RETR refused mid-pipeline: the others are stored, it is counted unavailable and not deleted, and the next run gets it', async () => {
    const messages = [1, 2, 3, 4, 5].map((i) => message(`uid-${i}`, `Message ${i}`));
    let refuse = true;
    const { run, check, store: s, accountId } = await setUp(messages, {
      refuseRetr: (m) => (refuse && m.uid === 'uid-3' ? '[SYS/TEMP] message vanished' : undefined),
    });
    const first = await run(DELETE);
    assert.equal(first.status, 'ok', String(first.error));
    assert.equal(first.newMessages, 4);
    assert.match(first.notes.join('\n'), /1 message\(s\) vanished/);
    assert.deepEqual(mailbox!.sessions[0]!.deleted.sort(), ['uid-1', 'uid-2', 'uid-4', 'uid-5'], 'the unavailable message was not deleted');
    assert.equal(mailbox!.sessions[0]!.commands.filter((c) => c === 'RETR 3').length, 1, 'RETR 3 was asked once');
    assert.equal(await s.messages.count(accountId), 4);

    refuse = false;
    const second = await run(DELETE);
    assert.deepEqual([second.status, second.newMessages, second.deleted], ['ok', 1, 1]);
    await check(asDelivered(messages), 'after the second run');
    assert.deepEqual(mailbox!.remaining(), []);
  });

  it('a listing that repeats a UID: both messages are stored, once each, and both deleted', async () => {
    const messages = [message('a', 'First'), message('dup', 'Second'), message('dup', 'Third, same UID', 30), message('c', 'Fourth')];
    const { run, check } = await setUp(messages);
    const first = await run(DELETE);
    assert.deepEqual([first.status, first.newMessages, first.deleted], ['ok', 4, 4]);
    assert.match(first.notes.join('\n'), /repeated UID/);
    await check(asDelivered(messages), 'after the run');
    assert.deepEqual(mailbox!.remaining(), []);
  });

  it('a listing that repeats a UID, kept on the server: the next run knows both from UIDL alone, sends no LIST and stores nothing again', async () => {
    const messages = [message('a', 'First'), message('dup', 'Second'), message('dup', 'Third, same UID', 30), message('c', 'Fourth')];
    const { run, check } = await setUp(messages);
    const LEAVE: SyncPolicy = { retention: 'leave', oversize: 'skip' };
    const first = await run(LEAVE);
    assert.deepEqual([first.status, first.newMessages], ['ok', 4]);
    const second = await run(LEAVE);
    assert.deepEqual([second.status, second.newMessages, second.alreadyHad], ['ok', 0, 4]);
    assert.match(second.notes.join('\n'), /repeated UID/);
    assert.deepEqual(mailbox!.sessions[1]!.commands.filter((c) => c.startsWith('LIST') || c.startsWith('RETR')), [], 'UIDL and QUIT only');
    await check(asDelivered(messages), 'after two runs');
  });

  it('a listing that repeats a UID, kept on the server, with a newcomer under that UID: the next run asks LIST and stores the newcomer', async () => {
    const messages = [message('a', 'First'), message('dup', 'Second')];
    const { run, check } = await setUp(messages);
    const LEAVE: SyncPolicy = { retention: 'leave', oversize: 'skip' };
    assert.equal((await run(LEAVE)).newMessages, 2);
    messages.push(message('dup', 'Third, same UID as the second', 30));
    const second = await run(LEAVE);
    assert.deepEqual([second.status, second.newMessages], ['ok', 1]);
    assert.ok(mailbox!.sessions[1]!.commands.includes('LIST'), 'LIST asked for the sizes');
    await check(asDelivered(messages), 'after two runs');
  });

  it('a server without UIDL: messages are told apart by a digest of TOP n 0, and a second run finds nothing new', async () => {
    const messages = [1, 2, 3, 4].map((i) => message(`ignored-${i}`, `Message ${i}`, 10 * i));
    const { run, check, store: s, accountId } = await setUp(messages, { uidl: false });
    const first = await run({ retention: 'leave', oversize: 'skip' });
    assert.deepEqual([first.status, first.identity, first.newMessages], ['ok', 'digest', 4]);
    assert.match((await s.accounts.get(accountId)).status_note ?? '', /no UIDL/);
    const second = await run({ retention: 'leave', oversize: 'skip' });
    assert.deepEqual([second.status, second.newMessages, second.alreadyHad], ['ok', 0, 4]);
    assert.deepEqual(mailbox!.sessions[1]!.commands.filter((c) => c.startsWith('RETR')), [], 'the second run retrieved nothing');
    await check(asDelivered(messages), 'after two runs');

    const third = await run(DELETE);
    assert.deepEqual([third.status, third.newMessages, third.deleted], ['ok', 0, 4], 'known digests are deleted without retrieving them again');
    assert.deepEqual(mailbox!.remaining(), []);
  });

  it('a UID that comes back with other content and size is stored as a second message', async () => {
    const original = message('reused', 'Original');
    const messages = [original, message('other', 'Other')];
    const { run, store: s, accountId } = await setUp(messages);
    assert.deepEqual([(await run(DELETE)).newMessages, mailbox!.remaining().length], [2, 0]);

    const comeback = message('reused', 'Different content under the same UID', 40);
    messages.push(comeback);
    const second = await run(DELETE);
    assert.deepEqual([second.status, second.newMessages, second.deleted], ['ok', 1, 1]);
    assertExactlyOnce(asDelivered([original, messages[1]!, comeback]), await storedRows(s, accountId), 'after the second run', { uniqueUids: false });
    assert.deepEqual(mailbox!.remaining(), []);
  });

  it('with policy keep, a kept UID the server gave to another message is stored before it is deleted, never deleted unstored', async () => {
    // RFC 1939 wants UIDs never reused; a server that reuses one after another client deleted
    // the message (here between two runs) must not make the sync delete the newcomer unread.
    const messages = [message('kept', 'Original')];
    const original = messages[0]!.bytes;
    const { run, store: s, accountId } = await setUp(messages);
    const keep: SyncPolicy = { retention: 'keep', keepDays: 3, oversize: 'skip' };
    const day0 = Date.now();
    const first = await run(keep, { now: () => day0 });
    assert.deepEqual([first.newMessages, first.deleted], [1, 0]);

    messages[0] = message('kept', 'A newcomer under the same UID, and longer', 40);
    const newcomer = messages[0].bytes;
    const day4 = await run(keep, { now: () => day0 + 4 * DAY_MS });
    assert.equal(day4.status, 'ok', String(day4.error));
    const both = [delivered('original', original), delivered('newcomer', newcomer)];
    assertNothingLost(both, mailbox!.remaining().map((m) => delivered(m.uid, m.bytes).sha256), await storedRows(s, accountId), 'after the day-4 run');
    assert.deepEqual([day4.newMessages, day4.deleted], [1, 1], 'the newcomer is retrieved, then deleted with its first-seen date');
    assertExactlyOnce(both, await storedRows(s, accountId), 'after the day-4 run', { uniqueUids: false });
  });

  it('[IN-USE] at login defers the run: retryAfter set, nothing stored, and the credentials are not blamed', async () => {
    const messages = [message('u1', 'One')];
    const { run, store: s, accountId } = await setUp(messages, { refuseLogin: () => '[IN-USE] Do you have another POP session running?' });
    const now = Date.now();
    const report = await run(DELETE, { now: () => now });
    assert.equal(report.status, 'deferred');
    assert.equal(report.retryAfter, now + 60_000);
    assert.equal(await s.messages.count(accountId), 0);
    const account = await s.accounts.get(accountId);
    assert.equal(account.retry_after, now + 60_000);
    assert.doesNotMatch(account.status_note ?? '', /credentials/, 'a busy maildrop is not a bad password');
    const [row] = await s.runs.forAccount(accountId);
    assert.equal(row?.status, 'deferred');
    assert.deepEqual(mailbox!.sessions[0]!.commands.filter((c) => /^(UIDL|RETR|DELE)/.test(c)), []);
  });

  it('Gmail-style partial listings: sessions repeat until one finds nothing new, and every message is stored once', async () => {
    const messages = Array.from({ length: 25 }, (_, i) => message(`gm-${i + 1}`, `Gmail ${i + 1}`));
    const { run, check } = await setUp(messages, { gmail: { perSession: 10 } });
    const report = await run({ retention: 'leave', oversize: 'skip' }, { repeat: true });
    assert.equal(report.status, 'ok', String(report.error));
    assert.deepEqual([report.sessions, report.newMessages], [4, 25], 'sessions of 10, 10 and 5, then one with nothing new');
    await check(asDelivered(messages), 'after the run');
  });

  it('Gmail-style listings with a session cut mid-way: the next run finishes, and nothing is stored twice', async () => {
    const messages = Array.from({ length: 25 }, (_, i) => message(`gm-${i + 1}`, `Gmail ${i + 1}`));
    const { run, check, store: s, accountId } = await setUp(messages, {
      gmail: { perSession: 10 },
      // At the second session's fourth RETR (gm-14) the connection ends, with no QUIT, so nothing of that session is popped.
      dropAt: (line, session) => session === 2 && line === 'RETR 4',
    });
    const first = await run({ retention: 'leave', oversize: 'skip' }, { repeat: true });
    assert.equal(first.status, 'failed');
    const afterCut = await storedRows(s, accountId);
    assert.equal(afterCut.length, 13, "the first session's 10, and the 3 the second got whole");
    assertNothingLost(asDelivered(messages), mailbox!.remaining().map((m) => delivered(m.uid, m.bytes).sha256), afterCut, 'after the cut');
    const second = await run({ retention: 'leave', oversize: 'skip' }, { repeat: true });
    assert.equal(second.status, 'ok', String(second.error));
    assert.equal(second.newMessages, 25 - afterCut.length);
    await check(asDelivered(messages), 'after the second run');
  });

  it('Gmail-style listings with a whole session cut before QUIT: later runs still reach the messages past the window', async () => {
    // The cut session retrieved and stored the first 10, but Gmail pops only at QUIT: the next
    // session lists those same 10 again, every one known.
    const messages = Array.from({ length: 25 }, (_, i) => message(`gm-${i + 1}`, `Gmail ${i + 1}`));
    const { run, check, store: s, accountId } = await setUp(messages, { gmail: { perSession: 10 }, dropAt: (line, session) => session === 1 && line === 'QUIT' });
    const first = await run({ retention: 'leave', oversize: 'skip' }, { repeat: true });
    assert.equal(first.status, 'failed');
    assert.equal(await s.messages.count(accountId), 10);
    const second = await run({ retention: 'leave', oversize: 'skip' }, { repeat: true });
    assert.equal(second.status, 'ok', String(second.error));
    assert.deepEqual([second.sessions, second.newMessages], [4, 15], 'the stored 10 retrieved again and hidden, then 10, 5, and nothing');
    const again = mailbox!.sessions[1]!.commands.filter((c) => c.startsWith('RETR'));
    assert.equal(again.length, 10, 'the second run retrieved the known 10 once more');
    await check(asDelivered(messages), 'after the second run');
  });

  it('Gmail-style listings that keep listing known messages after QUIT: after a failed run, one extra session, not a loop', async () => {
    const messages = Array.from({ length: 10 }, (_, i) => message(`recent-${i + 1}`, `Recent ${i + 1}`));
    const { run, check } = await setUp(messages, { gmail: { perSession: 10, pop: false }, dropAt: (line, session) => session === 1 && line === 'QUIT' });
    const leave: SyncPolicy = { retention: 'leave', oversize: 'skip' };
    assert.equal((await run(leave, { repeat: true })).status, 'failed');
    const second = await run(leave, { repeat: true });
    assert.deepEqual([second.status, second.sessions, second.newMessages], ['ok', 2, 0], 'retrieves the known 10 again once, then stops');
    const third = await run(leave, { repeat: true });
    assert.deepEqual([third.status, third.sessions, third.newMessages], ['ok', 1, 0], 'after a run that ended well, nothing is retrieved again');
    assert.deepEqual(mailbox!.sessions.slice(-1)[0]!.commands.filter((c) => c.startsWith('RETR')), []);
    await check(asDelivered(messages), 'after three runs');
  });
});
