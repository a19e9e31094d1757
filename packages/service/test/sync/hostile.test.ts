/**
 * Memory against a hostile server (issue 12). A scripted server that never ends a header block
 * (TOP n 0, which a server without UIDL is digested with) or that lists a small message and then
 * sends it without end: the run fails with a clear error, and this process's resident memory
 * grows by a bounded amount while the server offers far more. Before, a header block was held
 * up to the client's 256 MiB message bound (with 256 TOP commands in flight at once), and a
 * message lying about its size was written to the store until the disk filled.
 *
 * The memory figure is the peak of process.memoryUsage().rss, sampled while the run goes,
 * against the figure before it; the bounds asserted are generous (the garbage collector decides
 * when memory comes back), and far below what an unbounded run would reach.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pop3Client, Pop3ProtocolError } from 'popwire';
import { acceptLogin, startScriptedServer, type ScriptedConnection } from '../../../../support/scripted-server.ts';
import { accountFields } from '../../../../support/stores.ts';
import { SecretBox } from '../../src/accounts/secrets.ts';
import { AccountService } from '../../src/accounts/service.ts';
import { Store } from '../../src/store/store.ts';
import { SyncError } from '../../src/sync/errors.ts';
import { MAX_HEADER_BYTES } from '../../src/sync/listing.ts';
import { syncAccount, type SyncReport } from '../../src/sync/index.ts';
import { popwire, spawnPopwire, succeeded } from '../cli/popwire.ts';

const MiB = 1024 * 1024;
/** What the scripted server offers at most: far past every bound, and past what an unbounded run would take without notice. */
const OFFERED = 512 * MiB;

let dir: string;
let store: Store;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popwire-hostile-'));
  store = await Store.open({ kind: 'sqlite', dir });
});
after(async () => {
  await store?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Writes `line` over and over (honouring backpressure) until the client closes or OFFERED is sent, counting in `counter`. */
async function flood(conn: ScriptedConnection, line: string, counter: { sent: number }): Promise<void> {
  const chunk = Buffer.from(line.repeat(Math.ceil((64 * 1024) / line.length)));
  const closed = conn.closed();
  let gone = false;
  void closed.then(() => (gone = true));
  while (!gone && !conn.socket.destroyed && counter.sent < OFFERED) {
    counter.sent += chunk.length;
    if (!conn.socket.write(chunk)) await Promise.race([once(conn.socket, 'drain'), closed]);
  }
}

/** Serves the commands a sync sends; `top` and `retr` answer TOP and RETR. */
function mailbox(options: { caps: string[]; uidl: boolean; listed: number; top?: (conn: ScriptedConnection) => Promise<void>; retr?: (conn: ScriptedConnection) => Promise<void> }) {
  return async (conn: ScriptedConnection) => {
    await acceptLogin(conn, options.caps);
    for (;;) {
      const line = await conn.lineOrClose();
      if (line === undefined) return;
      if (line === 'QUIT') return conn.reply('+OK bye');
      if (line === 'UIDL') conn.send(options.uidl ? '+OK\r\n1 uid-1\r\n.\r\n' : '-ERR no UIDL here\r\n');
      else if (line === 'LIST') conn.send(`+OK\r\n1 ${options.listed}\r\n.\r\n`);
      else if (line === 'STAT') conn.reply(`+OK 1 ${options.listed}`);
      else if (line.startsWith('TOP ') && options.top !== undefined) await options.top(conn);
      else if (line.startsWith('RETR ') && options.retr !== undefined) await options.retr(conn);
      else conn.reply('-ERR not scripted');
    }
  };
}

/** Runs a sync of a fresh account against the server, sampling RSS; returns the report and the peak growth. */
async function syncAgainst(port: number, maxSize: number | undefined): Promise<{ report: SyncReport; grewBy: number }> {
  const account = await store.accounts.upsert(accountFields(`hostile-${port}`, { host: '127.0.0.1', port }), Date.now());
  globalThis.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  try {
    const report = await syncAccount({
      store,
      accountId: account.id,
      policy: { retention: 'leave', oversize: 'skip', maxSize },
      connect: () => Pop3Client.connect({ host: '127.0.0.1', port, tls: 'none', user: 'alice', password: 'secret', allowPlaintextAuth: true, timeout: 30_000 }),
    });
    peak = Math.max(peak, process.memoryUsage().rss);
    return { report, grewBy: peak - baseline };
  } finally {
    clearInterval(sampler);
  }
}

describe('a sync against a hostile server', { timeout: 120_000 }, () => {
  it('cuts off an endless header block from TOP (no UIDL: the digest path) with a protocol error, its memory bounded', async () => {
    const offered = { sent: 0 };
    const server = await startScriptedServer(
      mailbox({ caps: ['USER', 'TOP'], uidl: false, listed: 500, top: async (conn) => {
        conn.send('+OK\r\n');
        await flood(conn, 'X-Endless: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n', offered);
      } }),
    );
    try {
      const { report, grewBy } = await syncAgainst(server.port, undefined);
      assert.equal(report.status, 'failed');
      assert.ok(report.error instanceof Pop3ProtocolError, String(report.error));
      assert.match((report.error as Error).message, new RegExp(`TOP is larger than ${MAX_HEADER_BYTES} octets`));
      assert.ok(offered.sent < 64 * MiB, `the client read ${offered.sent} octets of header before it stopped`);
      assert.ok(grewBy < 96 * MiB, `resident memory grew by ${Math.round(grewBy / MiB)} MiB`);
      console.log(`endless header: the server wrote ${Math.round(offered.sent / MiB)} MiB before the cut; RSS grew by at most ${Math.round(grewBy / MiB)} MiB`);
    } finally {
      await server.close().catch(() => {});
    }
  });

  it('fails a message that sends far more than LIST said, at the size limit, its memory bounded and nothing stored', async () => {
    const offered = { sent: 0 };
    const server = await startScriptedServer(
      mailbox({ caps: ['USER', 'UIDL', 'TOP'], uidl: true, listed: 1000, retr: async (conn) => {
        conn.send('+OK\r\nSubject: enormous\r\n\r\n');
        await flood(conn, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n', offered);
      } }),
    );
    try {
      const { report, grewBy } = await syncAgainst(server.port, 20 * MiB);
      assert.equal(report.status, 'failed');
      assert.ok(report.error instanceof SyncError && report.error.code === 'SYNC_MESSAGE_TOO_LARGE', String(report.error));
      assert.match((report.error as Error).message, /though LIST said 1000/);
      assert.equal(await store.messages.count(report.accountId), 0);
      assert.ok(offered.sent < OFFERED, 'the client stopped reading before the server ran out');
      assert.ok(grewBy < 160 * MiB, `resident memory grew by ${Math.round(grewBy / MiB)} MiB`);
      console.log(`enormous message: the server wrote ${Math.round(offered.sent / MiB)} MiB before the cut; RSS grew by at most ${Math.round(grewBy / MiB)} MiB`);
    } finally {
      await server.close().catch(() => {});
    }
  });

  it('gives accounts without a size limit the configured default', () => {
    const accounts = new AccountService(store, new SecretBox([Buffer.alloc(32, 7)]), { defaultMaxSize: 5 * MiB });
    const row = { policy: 'leave', keep_days: null, max_size: null, oversize: 'skip' } as unknown as Parameters<AccountService['policy']>[0];
    assert.equal(accounts.policy(row).maxSize, 5 * MiB);
    assert.equal(accounts.policy({ ...row, max_size: 1024 }).maxSize, 1024);
  });
});

/** Peak resident memory of a process so far, from Linux's /proc (VmHWM), in octets. */
function peakRss(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

describe('popwire serve against a hostile server', { timeout: 180_000 }, () => {
  it('fails both runs with clear errors, its own peak memory bounded, with the default size limit from the configuration', async () => {
    const header = { sent: 0 };
    const body = { sent: 0 };
    const endlessHeader = await startScriptedServer(
      mailbox({ caps: ['USER', 'TOP'], uidl: false, listed: 500, top: async (conn) => {
        conn.send('+OK\r\n');
        await flood(conn, 'X-Endless: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n', header);
      } }),
    );
    const endlessBody = await startScriptedServer(
      mailbox({ caps: ['USER', 'UIDL', 'TOP'], uidl: true, listed: 1000, retr: async (conn) => {
        conn.send('+OK\r\nSubject: enormous\r\n\r\n');
        await flood(conn, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n', body);
      } }),
    );
    const home = join(dir, 'serve');
    const configFile = join(dir, 'serve.json');
    await writeFile(configFile, JSON.stringify({ store: home, http: { port: 0 }, network: { allow: ['127.0.0.1'] }, sync: { maxSize: 20 * MiB }, log: { level: 'warn' } }));
    const token = succeeded(await popwire(['token', 'create', '--name', 'hostile', '--store', home])).stdout.toString().trim();
    const server = spawnPopwire(['serve', '--config', configFile]);
    try {
      let stderr = '';
      server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      server.stdout.resume();
      while (!/listening on (http:\/\/[^\s,]+)/.test(stderr)) {
        if (server.exitCode !== null) throw new Error(`popwire serve did not start: ${stderr}`);
        await Promise.race([once(server.stderr, 'data'), once(server, 'exit')]);
      }
      const base = /listening on (http:\/\/[^\s,]+)/.exec(stderr)![1]!;
      const api = async (path: string, init: RequestInit = {}) => {
        const response = await fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
        return (await response.json()) as Record<string, any>;
      };
      const before = peakRss(server.pid!);
      const runs: Array<Record<string, any>> = [];
      for (const [name, port] of [['header', endlessHeader.port], ['body', endlessBody.port]] as const) {
        const account = await api('/v1/accounts', {
          method: 'POST',
          body: JSON.stringify({ name, host: '127.0.0.1', port, tls: 'none', allowPlaintextAuth: true, username: 'alice', credentials: { type: 'password', password: 'secret' }, syncInterval: null }),
        });
        assert.ok(account.id, JSON.stringify(account));
        const job = await api(`/v1/accounts/${account.id}/sync`, { method: 'POST' });
        for (;;) {
          const status = (await api(`/v1/jobs/${job.id}`)).status;
          if (status === 'done' || status === 'failed') break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        runs.push((await api(`/v1/accounts/${account.id}/runs`)).runs[0]);
      }
      const peak = peakRss(server.pid!);
      assert.equal(runs[0]!.status, 'failed');
      assert.match(runs[0]!.error.message, new RegExp(`TOP is larger than ${MAX_HEADER_BYTES} octets`));
      assert.equal(runs[1]!.status, 'failed');
      assert.equal(runs[1]!.error.code, 'SYNC_MESSAGE_TOO_LARGE');
      assert.match(runs[1]!.error.message, new RegExp(`more than ${20 * MiB + 20 * MiB / 16} octets though LIST said 1000`));
      assert.ok(peak < before + 128 * MiB, `popwire serve's peak RSS went from ${Math.round(before / MiB)} to ${Math.round(peak / MiB)} MiB`);
      console.log(`popwire serve: peak RSS ${Math.round(before / MiB)} MiB before, ${Math.round(peak / MiB)} MiB after; the servers wrote ${Math.round(header.sent / MiB)} MiB of header and ${Math.round(body.sent / MiB)} MiB of body`);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      await Promise.all([endlessHeader.close().catch(() => {}), endlessBody.close().catch(() => {})]);
    }
  });
});
