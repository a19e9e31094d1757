/**
 * Pop3Client.test: each step reported with its duration, a verdict that names the failing step,
 * and no throw for a failure. Against the real Dovecot, both TLS modes; a closed port; a wrong
 * password; a certificate that does not verify.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Pop3Client, type Pop3ClientOptions } from '../src/index.ts';
import { startDovecot, type Dovecot } from '../../../support/dovecot.ts';

let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot();
});
after(() => dovecot?.stop());

const options = (extra: Partial<Pop3ClientOptions> = {}): Pop3ClientOptions => ({
  host: 'localhost',
  port: dovecot.tlsPort,
  ca: dovecot.ca,
  user: 'alice',
  password: dovecot.users.alice!.password,
  timeout: 10_000,
  ...extra,
});

describe('Pop3Client.test', () => {
  it('implicit TLS: every step ok, with the certificate and the login mechanism', async () => {
    const report = await Pop3Client.test(options());
    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    assert.deepEqual(report.steps.map((s) => s.step), ['dns', 'tcp', 'tls', 'greeting', 'capa', 'login', 'capa', 'stat']);
    assert.ok(report.steps.every((s) => s.ok && s.ms >= 0));
    const tls = report.steps.find((s) => s.step === 'tls');
    assert.equal(tls?.certificate?.subject, 'CN=localhost');
    assert.ok((tls?.certificate?.daysLeft ?? -1) >= 5);
    assert.match(tls?.detail ?? '', /^TLSv1\.[23] /);
    assert.equal(report.steps.find((s) => s.step === 'login')?.mechanism, 'SCRAM-SHA-256');
    assert.equal(report.steps.find((s) => s.step === 'stat')?.detail, '0 messages, 0 octets');
    assert.equal(report.failedStep, undefined);
  });

  it('STLS: the TLS step comes right after the greeting, with the certificate', async () => {
    const report = await Pop3Client.test(options({ port: dovecot.port, tls: 'starttls' }));
    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    assert.deepEqual(report.steps.map((s) => s.step), ['dns', 'tcp', 'greeting', 'tls', 'capa', 'login', 'capa', 'stat']);
    assert.equal(report.steps.find((s) => s.step === 'tls')?.certificate?.subject, 'CN=localhost');
  });

  it('a closed port: the verdict is the TCP step, and nothing is thrown', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const report = await Pop3Client.test(options({ host: '127.0.0.1', port }));
    assert.equal(report.ok, false);
    assert.equal(report.failedStep, 'tcp');
    assert.equal(report.error?.code, 'POP3_CONNECT_FAILED');
    assert.deepEqual(report.steps.map((s) => [s.step, s.ok]), [['dns', true], ['tcp', false]]);
  });

  it('a wrong password: the verdict is the login step, with the server code', async () => {
    const report = await Pop3Client.test(options({ password: 'wrong' }));
    assert.equal(report.ok, false);
    assert.equal(report.failedStep, 'login');
    assert.equal(report.error?.code, 'POP3_AUTH_FAILED');
    assert.equal(report.error?.responseCode, 'AUTH');
    assert.deepEqual(report.steps.map((s) => s.step), ['dns', 'tcp', 'tls', 'greeting', 'capa', 'login']);
  });

  it('a certificate that does not verify: the verdict is TLS, and the certificate is still shown', async () => {
    const report = await Pop3Client.test(options({ ca: undefined }));
    assert.equal(report.failedStep, 'tls');
    assert.equal(report.error?.code, 'POP3_TLS_FAILED');
    assert.match(report.error?.message ?? '', /CN=localhost/);
  });

  it('a name that does not resolve: the verdict is DNS', async () => {
    const report = await Pop3Client.test(options({ host: 'no-such-host.invalid' }));
    assert.equal(report.failedStep, 'dns');
  });

  it('a lookup that refuses the address: the verdict is DNS with POP3_ADDRESS_REFUSED, and nothing is dialled', async () => {
    let dialled = 0;
    const server = createServer((socket) => {
      dialled++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const report = await Pop3Client.test(options({ host: '127.0.0.1', port, lookup: refuseAll }));
      assert.equal(report.failedStep, 'dns');
      assert.equal(report.error?.code, 'POP3_ADDRESS_REFUSED');
      assert.match(report.error?.message ?? '', /loopback/);
      assert.equal(dialled, 0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a lookup decides where the session goes: every connection dials the address it gives', async () => {
    const asked: string[] = [];
    const report = await Pop3Client.test(
      options({
        host: 'mail.example.invalid',
        servername: 'localhost',
        lookup: (host, _options, callback) => {
          asked.push(host);
          callback(null, [{ address: '127.0.0.1', family: 4 }]);
        },
      }),
    );
    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    assert.equal(report.steps.find((s) => s.step === 'dns')?.detail, '127.0.0.1');
    // Asked once, for the name: the session is pinned to the address the DNS step approved.
    assert.deepEqual(asked, ['mail.example.invalid']);
  });

  it('a server that is not POP3 is named as such, and its banner is not repeated', async () => {
    const banner = 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3 internal-admin';
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.write(`${banner}\r\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const report = await Pop3Client.test(options({ host: '127.0.0.1', port, tls: 'none', allowPlaintextAuth: true }));
      assert.equal(report.ok, false);
      assert.equal(report.failedStep, 'greeting');
      assert.equal(report.error?.code, 'POP3_BAD_REPLY');
      assert.match(report.error?.message ?? '', /Not a POP3 server/);
      const text = JSON.stringify(report);
      for (const piece of ['SSH', 'OpenSSH', 'Debian', 'internal-admin']) assert.ok(!text.includes(piece), `${piece} in ${text}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

const refuseAll: NonNullable<Pop3ClientOptions['lookup']> = (host, _options, callback) =>
  callback(Object.assign(new Error(`${host} is a loopback address`), { code: 'ADDRESS_REFUSED' }), '', 0);

describe('Pop3Client.connect with a lookup', () => {
  it('a refusal fails the connect with POP3_ADDRESS_REFUSED, not retried, for literals too', async () => {
    let calls = 0;
    const lookup: NonNullable<Pop3ClientOptions['lookup']> = (host, lookupOptions, callback) => {
      calls++;
      refuseAll(host, lookupOptions, callback);
    };
    await assert.rejects(Pop3Client.connect(options({ host: '127.0.0.1', lookup, retry: { attempts: 3, baseDelay: 1 } })), (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'POP3_ADDRESS_REFUSED');
      assert.equal((error as { retryable?: boolean }).retryable, false);
      return true;
    });
    assert.equal(calls, 1);
  });
});
