/**
 * One writer owns an account's policy (issue 11, trap 5). `popwire sync` into the store of
 * `popwire serve` once replaced an API account's policy without a word: `keep` 30 days became
 * `leave`, and `--delete` would have switched it to deleting. Now, for an account whose policy
 * was set through the API:
 * - a sync without policy options follows that policy, and says so on stderr;
 * - a sync that asks for the same policy runs as asked, saying nothing;
 * - a sync that asks for another is refused (exit 2) before it connects, and changes nothing;
 * - with --replace-policy it replaces it, says so, and the CLI owns the policy from then on.
 * The built bin against a real Dovecot, into an SQLite store where the account was made as the
 * API makes it (AccountService). Build first: npx tsc -b packages/client packages/service
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Dovecot } from '../../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../../support/fixtures.ts';
import { SecretBox } from '../../../src/accounts/secrets.ts';
import { AccountService, type PolicyInput } from '../../../src/accounts/service.ts';
import { Store } from '../../../src/store/store.ts';
import { failedWith, parseJson, popwire, type Run, dovecotScratch, type DovecotScratch } from '../popwire.ts';

let dovecot: Dovecot;
let scratch: string;
let caFile: string;

let servers: DovecotScratch | undefined;
before(async () => {
  ({ dovecot, scratch, caFile } = servers = await dovecotScratch('popwire-sync-policy-test-'));
});

after(() => servers?.stop());

let paths = 0;
const freshPath = (name: string) => join(scratch, `${name}-${++paths}`);
const url = () => `pop3s://alice@127.0.0.1:${dovecot.tlsPort}`;
const KEEP_30: PolicyInput = { retention: 'keep', keepDays: 30 };

/** A store holding alice's account as POST /v1/accounts makes it, with `policy`; 3 messages on the server. */
async function apiAccount(policy: PolicyInput): Promise<string> {
  const dir = freshPath('store');
  await dovecot.setMailbox('alice', bulkMessages(3, 500));
  await using store = await Store.open({ kind: 'sqlite', dir });
  const accounts = new AccountService(store, new SecretBox([randomBytes(32)]));
  await accounts.create({ name: 'Alice', host: '127.0.0.1', port: dovecot.tlsPort, username: 'alice', credentials: { type: 'password', password: 'alice-secret' }, syncInterval: null, policy });
  return dir;
}

async function row(dir: string) {
  await using store = await Store.open({ kind: 'sqlite', dir });
  const [account] = await store.accounts.list();
  return account!;
}

const sync = (dir: string, args: readonly string[] = [], json = true): Promise<Run> =>
  popwire(['sync', url(), '--store', dir, '--ca', caFile, ...(json ? ['--json'] : []), ...args], { password: 'alice-secret' });

describe('sync into an account whose policy was set through the API', () => {
  it('without policy options, follows the account policy and says so; the policy stays the API one', async () => {
    const dir = await apiAccount(KEEP_30);
    const run = await sync(dir);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^popwire: alice@127\.0\.0\.1:\d+ follows the policy set through the API: delete a message from the server 30 day\(s\) after it was first seen \(--replace-policy with policy options changes it\)\n$/);
    const report = parseJson<{ newMessages: number; deleted: number }>(run);
    assert.deepEqual([report.newMessages, report.deleted], [3, 0]);
    const account = await row(dir);
    assert.deepEqual([account.policy, account.keep_days, account.policy_owner], ['keep', 30, 'api']);
  });

  it('refuses options that ask for another policy (exit 2) before connecting, and changes nothing', async () => {
    const dir = await apiAccount(KEEP_30);
    for (const args of [['--delete'], ['--keep-days', '1'], ['--max-size', '1000']]) {
      const run = await sync(dir, args, false);
      failedWith(run, 2, /^popwire: alice@127\.0\.0\.1:\d+'s policy was set through the API: delete a message from the server 30 day\(s\) after it was first seen; this sync asks for: .*add --replace-policy/);
    }
    const account = await row(dir);
    assert.deepEqual([account.policy, account.keep_days, account.max_size, account.policy_owner], ['keep', 30, null, 'api']);
    await using store = await Store.open({ kind: 'sqlite', dir });
    assert.equal(await store.messages.count(), 0, 'nothing was synced');
  });

  it('runs quietly when the options ask for the policy the account has', async () => {
    const dir = await apiAccount(KEEP_30);
    const run = await sync(dir, ['--keep-days', '30']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    assert.equal((await row(dir)).policy_owner, 'api');
  });

  it('--replace-policy makes the options the account policy, says so, and the CLI owns it from then on', async () => {
    const dir = await apiAccount(KEEP_30);
    const run = await sync(dir, ['--delete', '--replace-policy']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /the policy set through the API \(delete a message from the server 30 day\(s\) after it was first seen\) is replaced by this one \(delete each message from the server once stored\); popwire serve follows it from now on/);
    assert.equal(parseJson<{ deleted: number }>(run).deleted, 3);
    const account = await row(dir);
    assert.deepEqual([account.policy, account.keep_days, account.policy_owner], ['delete', null, 'cli']);
    // The CLI's own account now: its next sync's options are its policy, as for any account it made.
    const next = await sync(dir);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.stderr, '');
    assert.equal((await row(dir)).policy, 'leave');
  });
});
