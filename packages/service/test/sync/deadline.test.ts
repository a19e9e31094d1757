/**
 * The per-sync deadline (issue 16, "Slow drip"): `sync.timeout` is per reply, so a server that
 * drips one byte every few seconds held a sync, and its account, for ever. `sync.deadline`
 * (seconds, default one hour) reaches every sync's client options; a dripping server then fails
 * the sync with POP3_TIMEOUT naming the deadline, and nothing is deleted.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Pop3Client, Pop3TimeoutError } from 'popwire';
import { acceptLogin, drip, startScriptedServer, type Script } from '../../../../support/scripted-server.ts';
import { testStores } from '../../../../support/stores.ts';
import { AccountService } from '../../src/accounts/service.ts';
import { SecretBox } from '../../src/accounts/secrets.ts';
import { loadConfig } from '../../src/config.ts';
import { syncAccount } from '../../src/sync/index.ts';

const stores = testStores();

/** Logs in, then answers the first command with a status line that never ends, a byte every 50 ms. */
const dripping: Script = async (conn) => {
  await acceptLogin(conn, ['USER', 'UIDL']);
  await conn.line();
  await drip(conn, 'x');
};

describe('sync.deadline', { timeout: 60_000 }, () => {
  it('defaults to one hour, and is read from the configuration file', () => {
    assert.equal(loadConfig({ env: {} }).sync.deadline, 3600);
  });

  it('a sync against a server that drips fails with POP3_TIMEOUT naming the deadline, and sends no DELE', async () => {
    const server = await startScriptedServer(dripping);
    try {
      await using store = await stores.open('sqlite');
      const accounts = new AccountService(store, new SecretBox([randomBytes(32)]), { timeout: 5000, deadline: 500 });
      const { id } = await accounts.create({
        name: 'Drip',
        host: server.host,
        port: server.port,
        tls: 'none',
        allowPlaintextAuth: true,
        username: 'alice',
        credentials: { type: 'password', password: 'secret' },
      });
      const row = await accounts.row(id);
      assert.equal(accounts.clientOptions(row).deadline, 500);
      const report = await syncAccount({ store, accountId: id, connect: () => Pop3Client.connect(accounts.clientOptions(row)), policy: accounts.policy(row) });
      assert.equal(report.status, 'failed');
      assert.ok(report.error instanceof Pop3TimeoutError, String(report.error));
      assert.match(report.error.message, /session's deadline passed/);
      assert.equal(server.received.some((line) => line.startsWith('DELE')), false);
    } finally {
      await server.close();
    }
  });
});
