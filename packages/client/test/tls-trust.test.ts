/**
 * A `ca` option adds to the certificates Node trusts; it does not replace them. Node's roots are
 * its bundled list, or the system's store with --use-openssl-ca. The extra CAs go into a copy of
 * that store, parsed once per process: handing the roots over again as PEM text (`ca:
 * [...tls.rootCertificates, ca]`, as before) cost 40 to 70 ms of every `popwire ... --ca` start,
 * and silently swapped a system store for the bundled list.
 *
 * Whether the bundled roots are kept cannot be shown offline (no server here holds a certificate
 * they signed); the system store can be anything, so it stands in for them: a child process runs
 * with --use-openssl-ca and SSL_CERT_FILE naming a CA of ours.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const TRANSPORT = fileURLToPath(new URL('../src/transport.ts', import.meta.url));
const NAMES = ['system', 'extra', 'stranger'] as const;

let dir: string;
const servers = new Map<string, Server>();

/** A self-signed certificate for localhost: its own CA. */
async function certificate(name: string): Promise<{ key: Buffer; cert: Buffer }> {
  const key = join(dir, `${name}-key.pem`);
  const cert = join(dir, `${name}.pem`);
  await execFileAsync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=localhost/O=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert,
  ]);
  return { key: await readFile(key), cert: await readFile(cert) };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popwire-tls-trust-'));
  for (const name of NAMES) {
    const server = createServer(await certificate(name), (socket) => socket.end('+OK ready\r\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.set(name, server);
  }
});

after(async () => {
  for (const server of servers.values()) server.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** In a child with the system store as Node's roots: which servers a connection with `ca: extra.pem` accepts. */
async function trusted(): Promise<Record<string, string>> {
  const script = join(dir, 'connect.mts');
  await writeFile(
    script,
    `
    import { readFileSync } from 'node:fs';
    import { openTransport } from ${JSON.stringify(TRANSPORT)};
    const ports = JSON.parse(process.argv[2]);
    const result = {};
    for (const [name, port] of Object.entries(ports)) {
      try {
        const socket = await openTransport({ host: '127.0.0.1', port, servername: 'localhost', implicitTls: true, ca: readFileSync(${JSON.stringify(join(dir, 'extra.pem'))}), signal: AbortSignal.timeout(10_000) });
        socket.destroy();
        result[name] = 'trusted';
      } catch (error) {
        result[name] = error.code;
      }
    }
    console.log(JSON.stringify(result));
    `,
  );
  const ports = Object.fromEntries([...servers].map(([name, server]) => [name, (server.address() as { port: number }).port]));
  const { stdout } = await execFileAsync(process.execPath, ['--use-openssl-ca', '--import', 'tsx', script, JSON.stringify(ports)], {
    // No folder of hashed certificates: the store is that one file.
    env: { ...process.env, SSL_CERT_FILE: join(dir, 'system.pem'), SSL_CERT_DIR: join(dir, 'no-certificates') },
  });
  return JSON.parse(stdout) as Record<string, string>;
}

describe('a ca option', () => {
  it("adds its CA to the roots Node trusts, which stay trusted; a certificate neither signed is refused", async () => {
    const result = await trusted();
    assert.equal(result.extra, 'trusted');
    assert.equal(result.system, 'trusted');
    assert.equal(result.stranger, 'POP3_TLS_FAILED');
  });
});
