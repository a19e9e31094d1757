/**
 * Nothing reaches where it should not, through the API: a caller with a token aims the service at
 * loopback, the internal network or a non-POP3 port, through an account's POP3 host, its webhook
 * and its OAuth token endpoint. Each is refused where the connection is made, with
 * ADDRESS_REFUSED and the kind of address, and nothing of the target comes back. The tests'
 * own servers are on loopback, so each app here says what it allows, as a deployment's
 * `network.allow` would.
 *
 * Also: a PATCH that weakens the protection of the stored secret (TLS off, plaintext login, any
 * certificate, another mechanism) must carry the credentials again.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { testStores } from '../../../../support/stores.ts';
import { WebhookDispatcher } from '../../src/delivery/webhook.ts';
import { AddressGuard } from '../../src/net/guard.ts';
import { accountBody, startApp } from './helpers.ts';

const stores = testStores();
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot();
});
after(() => dovecot?.stop());

/** A TCP listener on loopback that counts connections and greets like something else. */
async function listener(greeting: string): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.on('error', () => {});
    socket.write(greeting);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, connections: () => count };
}

function close(server: Server | HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

// The policy is the same whatever the store: SQLite only.
const kind = 'sqlite';
{
  describe('outbound address policy through the API', () => {
    it('POST /test to an account on loopback without an allow: refused at DNS, and nothing is dialled', async () => {
      await using store = await stores.open(kind);
      await using app = await startApp(store, { ca: dovecot.ca, network: new AddressGuard() });
      const ssh = await listener('SSH-2.0-OpenSSH_9.2p1 internal\r\n');
      try {
        const { id } = (await app.request('POST', '/v1/accounts', { body: accountBody({ host: '127.0.0.1', port: ssh.port }, 'pw-0123456789', { tls: 'none', allowPlaintextAuth: true }) })).json;
        const reply = await app.request('POST', `/v1/accounts/${id}/test`);
        assert.equal(reply.status, 200, reply.text);
        assert.equal(reply.json.ok, false);
        assert.equal(reply.json.failedStep, 'dns');
        assert.equal(reply.json.error.code, 'POP3_ADDRESS_REFUSED');
        assert.match(reply.json.error.message, /127\.0\.0\.1 is a loopback address.*ADDRESS_REFUSED/);
        assert.equal(ssh.connections(), 0);
        assert.ok(!reply.text.includes('SSH'));
      } finally {
        await close(ssh.server);
      }
    });

    it('POST /test to a private address: refused, naming RFC 1918; and the metadata address, naming link-local', async () => {
      await using store = await stores.open(kind);
      await using app = await startApp(store, { ca: dovecot.ca });
      for (const [host, words] of [
        ['10.255.255.1', /private address \(RFC 1918\)/],
        ['169.254.169.254', /link-local/],
        ['[::ffff:192.168.0.1]', /private address/],
      ] as const) {
        const { id } = (await app.request('POST', '/v1/accounts', { body: accountBody({ host, port: 110 }, 'pw-0123456789') })).json;
        const reply = await app.request('POST', `/v1/accounts/${id}/test`);
        assert.equal(reply.json.error?.code, 'POP3_ADDRESS_REFUSED', reply.text);
        assert.match(reply.json.error.message, words);
      }
    });

    it('POST /test to an allowed port that is not POP3: says so, and does not repeat its banner', async () => {
      await using store = await stores.open(kind);
      await using app = await startApp(store, { ca: dovecot.ca });
      const ssh = await listener('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3 internal-admin\r\n');
      try {
        const { id } = (await app.request('POST', '/v1/accounts', { body: accountBody({ host: '127.0.0.1', port: ssh.port }, 'pw-0123456789', { tls: 'none', allowPlaintextAuth: true }) })).json;
        const reply = await app.request('POST', `/v1/accounts/${id}/test`);
        assert.equal(reply.json.failedStep, 'greeting', reply.text);
        assert.match(reply.json.error.message, /Not a POP3 server/);
        for (const piece of ['SSH', 'OpenSSH', 'Debian', 'internal-admin']) assert.ok(!reply.text.includes(piece), reply.text);
      } finally {
        await close(ssh.server);
      }
    });

    it('a sync of an account on a refused address fails with POP3_ADDRESS_REFUSED, in one session', async () => {
      await using store = await stores.open(kind);
      await using app = await startApp(store, { ca: dovecot.ca, network: new AddressGuard() });
      const { id } = (await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, dovecot.users.alice!.password) })).json;
      const report = await app.sync(id);
      assert.equal(report.status, 'failed');
      assert.equal((report.error as { code?: string }).code, 'POP3_ADDRESS_REFUSED');
      assert.equal((report.error as { retryable?: boolean }).retryable, false);
    });

    it('an OAuth tokenUrl over http on loopback is never called, and the login says why', async () => {
      let calls = 0;
      const tokens = createHttpServer((_req, res) => {
        calls++;
        res.end(JSON.stringify({ access_token: 'leaked', expires_in: 3600 }));
      }).listen(0, '127.0.0.1');
      await once(tokens, 'listening');
      // A POP3 server that offers XOAUTH2: the login asks the token source, which must refuse.
      const pop = createServer((socket) => {
        socket.on('error', () => {});
        socket.write('+OK ready\r\n');
        socket.on('data', (chunk: Buffer) => {
          for (const line of chunk.toString().split('\r\n').filter(Boolean)) {
            if (/^CAPA/i.test(line)) socket.write('+OK\r\nSASL XOAUTH2\r\n.\r\n');
            else if (/^QUIT/i.test(line)) socket.end('+OK\r\n');
            else socket.write('-ERR no\r\n');
          }
        });
      }).listen(0, '127.0.0.1');
      await once(pop, 'listening');
      try {
        await using store = await stores.open(kind);
        // The POP3 server is allowed by name; the token endpoint's loopback address is not.
        await using app = await startApp(store, { network: new AddressGuard({ allow: ['localhost'] }) });
        const tokenUrl = `http://127.0.0.1:${(tokens.address() as AddressInfo).port}/token`;
        const body = accountBody({ host: 'localhost', port: (pop.address() as AddressInfo).port }, 'unused', {
          tls: 'none',
          allowPlaintextAuth: true,
          auth: 'XOAUTH2',
          credentials: { type: 'oauth2', refreshToken: 'refresh-secret', tokenUrl, clientId: 'c', clientSecret: 'client-secret-0123' },
        });
        const created = await app.request('POST', '/v1/accounts', { body });
        assert.equal(created.status, 201, created.text);
        const reply = await app.request('POST', `/v1/accounts/${created.json.id}/test`);
        assert.equal(reply.json.failedStep, 'login', reply.text);
        assert.equal(reply.json.error.code, 'POP3_AUTH_TOKEN_FAILED');
        assert.match(reply.json.error.message, /loopback address.*ADDRESS_REFUSED/);
        assert.equal(calls, 0);
        for (const secret of ['refresh-secret', 'client-secret-0123']) assert.ok(!reply.text.includes(secret));
      } finally {
        await Promise.all([close(tokens), close(pop)]);
      }
    });

    it("an account's webhook on loopback without an allow is refused at connect; the config's own webhook is trusted", async () => {
      let requests = 0;
      const receiver = createHttpServer((_req, res) => {
        requests++;
        res.end();
      }).listen(0, '127.0.0.1');
      await once(receiver, 'listening');
      const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/internal-admin`;
      const trusted = `http://localhost:${(receiver.address() as AddressInfo).port}/operator`;
      try {
        await using store = await stores.open(kind);
        const network = new AddressGuard();
        await using app = await startApp(store, { ca: dovecot.ca, network });
        const { id } = (await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, 'pw-0123456789', { webhook: { url: hook, secret: 'account-webhook-secret-0123' } }) })).json;
        const webhooks = new WebhookDispatcher(store, app.accounts, { network, defaultTarget: { url: trusted, secret: 'operator-secret-0123456' }, pollMs: 20, attempts: 1 });
        webhooks.start();
        try {
          const [own, operator] = await webhooks.enqueue(await app.accounts.row(id), [{ type: 'sync.failed', accountId: id } as never]);
          await until(async () => (await store.webhookEvents.get(own!))?.last_error != null);
          const event = await store.webhookEvents.get(own!);
          assert.match(event?.last_error ?? '', /127\.0\.0\.1 is a loopback address.*ADDRESS_REFUSED/);
          await until(async () => (await store.webhookEvents.get(operator!))?.delivered_at != null);
          assert.equal(requests, 1, 'only the operator webhook was called');
        } finally {
          await webhooks.stop(100);
        }
      } finally {
        await close(receiver);
      }
    });

    it('a PATCH that weakens the protection of the stored secret needs the credentials again', async () => {
      await using store = await stores.open(kind);
      await using app = await startApp(store, { ca: dovecot.ca });
      const { id } = (await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, 'pw-0123456789', { auth: 'SCRAM-SHA-256' }) })).json;
      for (const [change, field] of [
        [{ tls: 'none' }, 'tls'],
        [{ allowPlaintextAuth: true }, 'allowPlaintextAuth'],
        [{ tlsInsecure: true }, 'tlsInsecure'],
        [{ auth: 'PLAIN' }, 'auth'],
        [{ auth: null }, 'auth'],
        [{ tls: 'none', allowPlaintextAuth: true, name: 'Renamed' }, 'tls, allowPlaintextAuth'],
      ] as const) {
        const reply = await app.request('PATCH', `/v1/accounts/${id}`, { body: change });
        assert.equal(reply.status, 400, `${JSON.stringify(change)}: ${reply.text}`);
        assert.equal(reply.json.error.field, 'body.credentials');
        assert.ok(reply.json.error.message.includes(`(${field})`), reply.json.error.message);
      }
      const unchanged = (await app.request('GET', `/v1/accounts/${id}`)).json;
      assert.deepEqual([unchanged.tls, unchanged.auth, unchanged.name], ['starttls', 'SCRAM-SHA-256', 'Alice']);
      // Harmless changes, the same values again, and a strengthening pass without credentials...
      for (const change of [{ name: 'Renamed' }, { tls: 'starttls' }, { auth: 'SCRAM-SHA-256' }, { tlsInsecure: false, allowPlaintextAuth: false }, { tls: 'implicit' }]) {
        const reply = await app.request('PATCH', `/v1/accounts/${id}`, { body: change });
        assert.equal(reply.status, 200, `${JSON.stringify(change)}: ${reply.text}`);
      }
      // ...and a weakening one passes with them.
      const withCredentials = await app.request('PATCH', `/v1/accounts/${id}`, {
        body: { tls: 'none', allowPlaintextAuth: true, credentials: { type: 'password', password: 'pw-0123456789' } },
      });
      assert.equal(withCredentials.status, 200, withCredentials.text);
      assert.equal(withCredentials.json.tls, 'none');
    });
  });
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('condition not met');
}
