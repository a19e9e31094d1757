/**
 * At-least-once to an external destination, under SIGKILL: `popwire sync --delete --lmtp` (the
 * built bin) from a real Dovecot POP3 into a real Dovecot LMTP, killed at moments drawn uniformly
 * over one clean run's duration (measured first, on another user's mailbox), over rounds of 300
 * messages of about 4 KB (a new round's mailbox when one is through), then a clean run.
 *
 * The promise under test (sync/handover.ts): a message is stored once (exactly once, as
 * always), handed to the destination, its answer recorded in batches, and DELEd only after the
 * record. So:
 * - no message is lost: after every kill each message is on the POP3 server or was delivered;
 *   after the clean run the server is empty and every message was delivered at least once;
 * - duplicates come only from the in-flight window: a run hands over again only what the run
 *   before it handed over but had not recorded, at most DEFAULT_RECORD_EVERY (100) messages. Each
 *   run's new duplicates are counted and must stay within that window;
 * - the store holds each message once.
 *
 * The counts (kills, duplicates, the largest window seen) are printed. The seed is printed;
 * POPWIRE_CRASH_SEED replays the draws, POPWIRE_CRASH_KILLS sets the number of kills (default 15).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDeliveryDovecot, type DeliveryDovecot } from '../../../../support/dovecot-delivery.ts';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { Store } from '../../src/store/store.ts';
import { DEFAULT_RECORD_EVERY } from '../../src/sync/handover.ts';
import { finished, spawnPopwire } from '../cli/popwire.ts';
import { seededRandom } from '../sync/crash-safety.ts';

const SEED = Number(process.env.POPWIRE_CRASH_SEED ?? 0x5eed_0014);
const KILLS = Number(process.env.POPWIRE_CRASH_KILLS ?? 15);
const MESSAGES = 300;

let source: Dovecot;
let target: DeliveryDovecot;
let dir: string;

before(async () => {
  [source, target] = await Promise.all([startDovecot(), startDeliveryDovecot()]);
  dir = await mkdtemp(join(tmpdir(), 'popwire-sync-crash-lmtp-'));
  await writeFile(join(dir, 'ca.pem'), source.ca);
});
after(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** What names a message across rounds: its round and its Message-ID. */
const messageId = (bytes: Buffer) => {
  const text = bytes.toString('latin1');
  return `${/^X-Crash-Round: (\d+)/im.exec(text)?.[1] ?? '?'} ${/^Message-ID: (<[^>]+>)/im.exec(text)?.[1] ?? '?'}`;
};

/** Round `round`'s mailbox: its own content, so no two rounds share a message. */
function mailbox(round: number): Buffer[] {
  const mark = Buffer.from(`X-Crash-Round: ${round}\r\n`);
  return bulkMessages(MESSAGES, 4096).map((m) => Buffer.concat([mark, m]));
}

function args(user: string, store: string): string[] {
  return ['sync', '--delete', '--lmtp', `127.0.0.1:${target.lmtpPort}`, '--to', user === 'alice' ? 'bob' : 'carol', '--store', store, `pop3s://${user}@127.0.0.1:${source.tlsPort}`, '--ca', join(dir, 'ca.pem')];
}

function child(store: string, user = 'alice') {
  return spawnPopwire(args(user, store), { password: source.users[user]!.password });
}

/** Message -> times delivered into bob's Maildir. */
async function deliveredCounts(): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const file of await target.readMaildir('bob')) counts.set(messageId(file), (counts.get(messageId(file)) ?? 0) + 1);
  return counts;
}

async function onServer(): Promise<Set<string>> {
  const maildir = source.users.alice!.maildir;
  const ids = new Set<string>();
  for (const sub of ['cur', 'new']) for (const name of await readdir(join(maildir, sub))) ids.add(messageId(await readFile(join(maildir, sub, name))));
  return ids;
}

const duplicates = (counts: Map<string, number>) => [...counts.values()].reduce((n, c) => n + c - 1, 0);

describe('popwire sync --delete --lmtp under SIGKILL', () => {
  it('loses no message, stores each once, and hands over again only what was in flight', { timeout: 15 * 60_000 }, async (t) => {
    const random = seededRandom(SEED);
    t.diagnostic(`seed ${SEED}`);
    // One clean run's duration, on another user's mailbox and store (delivered to carol): kill
    // moments are drawn uniformly over it.
    await source.setMailbox('carol', mailbox(0));
    const warm = performance.now();
    const warmUp = await finished(child(join(dir, 'warm-up'), 'carol'));
    assert.equal(warmUp.code, 0, warmUp.stderr);
    const span = Math.ceil(performance.now() - warm);
    t.diagnostic(`a clean run of ${MESSAGES} messages takes ${span} ms here`);

    const store = join(dir, 'store');
    let round = 1;
    const ids: string[] = [];
    const fill = async () => {
      const files = mailbox(round);
      ids.push(...files.map(messageId));
      await source.setMailbox('alice', files);
    };
    await fill();
    let kills = 0;
    let largestWindow = 0;
    let previousDuplicates = 0;
    let finishedEarly = 0;
    for (let run = 0; kills < KILLS && run < KILLS * 4; run++) {
      const delay = Math.floor(random() * span);
      const running = child(store);
      const timer = setTimeout(() => running.kill('SIGKILL'), delay);
      const end = await finished(running);
      clearTimeout(timer);
      const counts = await deliveredCounts();
      const left = await onServer();
      // Nothing lost: on the server, or delivered.
      for (const id of ids) assert.ok(left.has(id) || (counts.get(id) ?? 0) > 0, `message ${id} is neither on the server nor delivered (run ${run})`);
      const now = duplicates(counts);
      largestWindow = Math.max(largestWindow, now - previousDuplicates);
      assert.ok(now - previousDuplicates <= DEFAULT_RECORD_EVERY, `run ${run} handed over ${now - previousDuplicates} messages again, more than the window of ${DEFAULT_RECORD_EVERY}`);
      previousDuplicates = now;
      if (end.signal === 'SIGKILL') {
        kills++;
        continue;
      }
      assert.equal(end.code, 0, end.stderr);
      finishedEarly++;
      // The round is through: the next one's mailbox.
      if (left.size === 0) {
        round++;
        await fill();
      }
    }
    await rm(join(dir, 'warm-up'), { recursive: true, force: true });

    // The clean run.
    const clean = await finished(child(store));
    assert.equal(clean.code, 0, clean.stderr);
    const counts = await deliveredCounts();
    assert.deepEqual(await onServer(), new Set(), 'the server is empty after the clean run');
    for (const id of ids) assert.ok((counts.get(id) ?? 0) >= 1, `message ${id} was never delivered`);
    const total = duplicates(counts);
    largestWindow = Math.max(largestWindow, total - previousDuplicates);
    assert.ok(total - previousDuplicates <= DEFAULT_RECORD_EVERY);

    await using opened = await Store.open({ kind: 'sqlite', dir: store });
    const rows = await opened.db.selectFrom('messages').select(['uid', 'sha256']).execute();
    assert.equal(rows.length, ids.length, 'the store holds each message once');
    assert.equal(new Set(rows.map((r) => r.sha256)).size, ids.length);

    const duplicated = [...counts.values()].filter((c) => c > 1).length;
    t.diagnostic(
      `${kills} SIGKILLs over ${round} round(s) of ${MESSAGES} messages (${finishedEarly} runs finished before their kill), then a clean run: ${ids.length} messages, 0 lost, each stored once; ` +
        `${counts.size} delivered, ${total} duplicate deliveries (${duplicated} messages delivered more than once); largest window seen ${largestWindow} (bound ${DEFAULT_RECORD_EVERY})`,
    );
    console.log(`sync-crash: kills=${kills} rounds=${round} finishedEarly=${finishedEarly} messages=${ids.length} lost=0 duplicates=${total} duplicatedMessages=${duplicated} largestWindow=${largestWindow} bound=${DEFAULT_RECORD_EVERY}`);
  });
});
