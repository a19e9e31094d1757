/**
 * A self-signed certificate for tests that run TLS on the scripted server (support/scripted-server.ts
 * `startTls`), valid for `localhost` and 127.0.0.1. Made once per test process with the openssl CLI,
 * which the Dovecot harness needs anyway; nothing is kept on disk afterwards.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface TestCertificate {
  readonly key: Buffer;
  /** Also the CA to trust: it is self-signed. */
  readonly cert: Buffer;
}

const execFileAsync = promisify(execFile);
let made: Promise<TestCertificate> | undefined;

export function testCertificate(): Promise<TestCertificate> {
  made ??= make();
  return made;
}

async function make(): Promise<TestCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'popwire-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await execFileAsync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert,
    ]);
    return { key: await readFile(key), cert: await readFile(cert) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
