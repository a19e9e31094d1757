/**
 * What a failed run shows through the API is filtered (issue 12): a host that is not a POP3
 * server answers with whatever it speaks, and that line (an SSH banner, an internal admin
 * service's greeting) must not reach GET /runs or a webhook. The operator's log keeps it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pop3Client } from 'popwire';
import { SecretBox, generateKey } from '../../src/accounts/secrets.ts';
import { AccountService } from '../../src/accounts/service.ts';
import { publicError } from '../../src/jobs/failure.ts';
import { Store } from '../../src/store/store.ts';
import { DEFAULT_POLICY } from '../../src/sync/policy.ts';
import { syncAccount } from '../../src/sync/index.ts';

const BANNER = 'SSH-2.0-OpenSSH_9.2p1 internal-bastion-7';

let dir: string;
let server: Server;
let port: number;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popwire-public-error-'));
  server = createServer((socket) => socket.end(`${BANNER}\r\n`));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
after(async () => {
  server?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('a run against a host that is not a POP3 server', () => {
  it('is recorded as a bad reply without the line the host sent', async () => {
    await using store = await Store.open({ kind: 'sqlite', dir: join(dir, 'store') });
    const accounts = new AccountService(store, new SecretBox([Buffer.from(generateKey(), 'base64')]));
    const { id } = await accounts.create({
      name: 'bastion',
      host: '127.0.0.1',
      port,
      tls: 'none',
      allowPlaintextAuth: true,
      username: 'ann',
      credentials: { type: 'password', password: 'ann-password' },
      syncInterval: null,
    });
    let thrown: unknown;
    const report = await syncAccount({
      store,
      accountId: id,
      policy: DEFAULT_POLICY,
      connect: () =>
        Pop3Client.connect({ host: '127.0.0.1', port, tls: 'none', allowPlaintextAuth: true, user: 'ann', password: 'ann-password' }).catch((error: unknown) => {
          thrown = error;
          throw error;
        }),
    });
    assert.equal(report.status, 'failed');
    // The client's own error names the line, for the operator's log...
    assert.ok(thrown instanceof Error && thrown.message.includes('internal-bastion-7'), String(thrown));
    // ...and neither the stored run nor the public form of the error repeats it.
    const [run] = await store.runs.forAccount(id);
    assert.equal(run?.error_code, 'POP3_BAD_REPLY');
    assert.match(run?.error_message ?? '', /not a POP3 reply/);
    assert.doesNotMatch(run?.error_message ?? '', /OpenSSH|bastion/);
    assert.doesNotMatch(publicError(thrown).message, /OpenSSH|bastion/);
  });
});
