/**
 * `popwire sync` with destinations, the built bin end to end: from a real Dovecot POP3 into the
 * store and a real Dovecot LMTP (read back byte for byte), a scripted LMTP for 4xx on chosen
 * messages, a real command as the MDA (exit 75, then 0), and a destination that refuses
 * connections. The promise: a message leaves the POP3 server only once it is stored AND every
 * destination accepted it; what a destination did not take is handed over again next run.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dropDeliveryHeaders, type DeliveryDovecot } from '../../../../support/dovecot-delivery.ts';
import { closedPort } from '../../../../support/daemon.ts';
import type { Dovecot } from '../../../../support/dovecot.ts';
import { startScriptedLmtp } from './scripted-lmtp.ts';
import { parseJson, popwire, deliveryMessage as message, deliveryScratch, type DeliveryScratch, type Run } from '../cli/popwire.ts';

const PASSWORD = 'alice-secret';
let source: Dovecot;
let scratch: string;
let caFile: string;
let target: DeliveryDovecot;
let servers: DeliveryScratch | undefined;

before(async () => {
  servers = await deliveryScratch('popwire-sync-destinations-');
  ({ dovecot: source, scratch, caFile, target } = servers);
});
after(() => servers?.stop());

let stores = 0;
function syncAsAlice(store: string, args: readonly string[]): Promise<Run> {
  return popwire(['sync', ...args, '--store', store, '--json', `pop3s://alice@127.0.0.1:${source.tlsPort}`, '--ca', caFile], { password: PASSWORD });
}

async function remaining(): Promise<string[]> {
  const dir = source.users.alice?.maildir as string;
  const names = [...(await readdir(join(dir, 'cur'))).map((n) => join(dir, 'cur', n)), ...(await readdir(join(dir, 'new'))).map((n) => join(dir, 'new', n))];
  return (await Promise.all(names.map(async (n) => /Subject: (.*)/.exec((await readFile(n)).toString('latin1'))![1]!.trim()))).sort();
}

interface SyncJson {
  status: string;
  newMessages: number;
  deleted: number;
  ignoredExisting: number;
  delivery: { handedOver: number; delivered: number; temporary: number; permanent: number; undelivered: number; refusals: Array<{ reply: string; temporary: boolean }> };
}

describe('popwire sync with destinations', () => {
  it('--lmtp --delete: stores, delivers into Dovecot byte for byte with X-Popwire-UID, and only then deletes; a second run delivers nothing again', async () => {
    const store = join(scratch, `store-${++stores}`);
    const messages = ['one', 'two', 'three'].map(message);
    await source.setMailbox('alice', messages);
    const before = (await target.readMaildir('bob')).length;
    const run = await syncAsAlice(store, ['--delete', '--lmtp', `127.0.0.1:${target.lmtpPort}`, '--to', 'bob']);
    assert.equal(run.code, 0, run.stderr);
    const report = parseJson<SyncJson>(run);
    assert.equal(report.newMessages, 3);
    assert.equal(report.delivery.delivered, 3);
    assert.equal(report.deleted, 3);
    assert.deepEqual(await remaining(), []);
    const files = (await target.readMaildir('bob')).slice(before);
    assert.equal(files.length, 3);
    for (const file of files) assert.match(dropDeliveryHeaders(file).toString('latin1'), /^X-Popwire-UID: \S+\n/);
    assert.deepEqual(
      files.map((f) => dropDeliveryHeaders(f).toString('latin1').replace(/^X-Popwire-UID: \S+\n/, '')).sort(),
      messages.map((m) => m.toString('latin1').replaceAll('\r\n', '\n')).sort(),
    );
    const again = parseJson<SyncJson>(await syncAsAlice(store, ['--delete', '--lmtp', `127.0.0.1:${target.lmtpPort}`, '--to', 'bob']));
    assert.equal(again.delivery.handedOver, 0);
    assert.equal((await target.readMaildir('bob')).length, before + 3);
  });

  it('keeps on the server what the LMTP server answered 4xx for, exits 7, and hands it over again next run', async () => {
    const store = join(scratch, `store-${++stores}`);
    await source.setMailbox('alice', ['a', 'b', 'c', 'd'].map(message));
    let defer = true;
    const lmtp = await startScriptedLmtp((m) => (defer && /Subject: (b|d)\r\n/.test(m.toString('latin1')) ? '452 4.2.2 Mailbox full' : '250 2.0.0 ok'));
    try {
      const first = await syncAsAlice(store, ['--delete', '--lmtp', `127.0.0.1:${lmtp.port}`]);
      assert.equal(first.code, 7, first.stderr);
      assert.match(first.stderr, /2 hand-over\(s\) not accepted \(2 deferred, 0 refused\), kept on the server.*452 4\.2\.2 Mailbox full/);
      const report = parseJson<SyncJson>(first);
      assert.equal(report.delivery.temporary, 2);
      assert.equal(report.deleted, 2);
      assert.deepEqual(await remaining(), ['b', 'd']);

      defer = false;
      const second = await syncAsAlice(store, ['--delete', '--lmtp', `127.0.0.1:${lmtp.port}`]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(parseJson<SyncJson>(second).delivery.delivered, 2);
      assert.deepEqual(await remaining(), []);
      // a and c once, b and d twice (refused, then accepted): nothing accepted is handed over again.
      const subjects = lmtp.messages.map((m) => /Subject: (\w)/.exec(m.toString('latin1'))![1]).sort();
      assert.deepEqual(subjects, ['a', 'b', 'b', 'c', 'd', 'd']);
    } finally {
      await lmtp.close();
    }
  });

  it('an MDA that exits 75 keeps the message (exit 7); the next run, exiting 0, delivers it and deletes it', async () => {
    const store = join(scratch, `store-${++stores}`);
    await source.setMailbox('alice', [message('mda')]);
    const flag = join(scratch, 'tempfail');
    const out = join(scratch, 'mda-out');
    await writeFile(flag, '');
    const script = `if [ -e ${flag} ]; then exit 75; fi; cat >> ${out}`;
    const first = await syncAsAlice(store, ['--delete', '--mda-shell', script]);
    assert.equal(first.code, 7, first.stderr);
    assert.deepEqual(await remaining(), ['mda']);
    await rm(flag);
    const second = await syncAsAlice(store, ['--delete', '--mda-shell', script]);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(await remaining(), []);
    assert.match(await readFile(out, 'latin1'), /Subject: mda/);
  });

  it('a destination that refuses connections stops the run before the POP3 session: exit 6 naming it, nothing deleted', async () => {
    const store = join(scratch, `store-${++stores}`);
    await source.setMailbox('alice', [message('x'), message('y')]);
    const port = await closedPort();
    const run = await syncAsAlice(store, ['--delete', '--lmtp', `127.0.0.1:${port}`]);
    assert.equal(run.code, 6, run.stderr);
    assert.match(run.stderr, new RegExp(`LMTP 127\\.0\\.0\\.1:${port}`));
    assert.deepEqual(await remaining(), ['x', 'y']);
  });

  it('--skip-existing on the first sync records what is on the server without retrieving it; later mail is delivered', async () => {
    const store = join(scratch, `store-${++stores}`);
    await source.setMailbox('alice', [message('old1'), message('old2')]);
    const lmtp = await startScriptedLmtp();
    try {
      const first = parseJson<SyncJson>(await syncAsAlice(store, ['--delete', '--skip-existing', '--lmtp', `127.0.0.1:${lmtp.port}`]));
      assert.equal(first.ignoredExisting, 2);
      assert.equal(first.newMessages, 0);
      assert.equal(lmtp.messages.length, 0);
      await source.deliver('alice', message('new'));
      const second = parseJson<SyncJson>(await syncAsAlice(store, ['--delete', '--skip-existing', '--lmtp', `127.0.0.1:${lmtp.port}`]));
      assert.equal(second.ignoredExisting, 0);
      assert.equal(second.newMessages, 1);
      assert.equal(lmtp.messages.length, 1);
      assert.deepEqual(await remaining(), ['old1', 'old2']);
    } finally {
      await lmtp.close();
    }
  });
});
