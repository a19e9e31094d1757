/**
 * `npm run demo`: on a fresh machine, shows popwire doing its job against a real POP3 server.
 * It starts a private Dovecot on loopback (as the tests do), puts a few messages in alice's
 * mailbox, and runs the built `popwire` command against it, printing each command line first.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDovecot } from '../support/dovecot.ts';
import { smallFixtures } from '../support/fixtures.ts';

const bin = fileURLToPath(new URL('../packages/service/bin/popwire.js', import.meta.url));
const dovecot = await startDovecot();
const dir = await mkdtemp(join(tmpdir(), 'popwire-demo-'));
try {
  await dovecot.setMailbox('alice', smallFixtures().map((f) => f.bytes));
  const ca = join(dir, 'ca.pem');
  await writeFile(ca, dovecot.ca);
  const url = `pop3s://alice@127.0.0.1:${dovecot.tlsPort}`;
  const env = { ...process.env, POPWIRE_PASSWORD: dovecot.users.alice!.password };
  const popwire = (...args: string[]) => {
    console.log(`\n$ popwire ${args.join(' ')}`);
    const result = spawnSync(process.execPath, [bin, ...args], { env, stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`popwire ${args[0]} exited with ${result.status}`);
  };
  console.log(`A private Dovecot is listening on 127.0.0.1:${dovecot.tlsPort} (implicit TLS); alice has ${smallFixtures().length} messages.`);
  console.log('The password comes from POPWIRE_PASSWORD; the server certificate is trusted through --ca.');
  popwire('capa', '--ca', ca, `pop3s://127.0.0.1:${dovecot.tlsPort}`);
  popwire('stat', '--ca', ca, url);
  popwire('list', '--ca', ca, url);
  popwire('top', '1', '0', '--ca', ca, url);
  popwire('list', '--json', '--ca', ca, url);
  popwire('test', '--ca', ca, url);
  popwire('fetch', '--ca', ca, '--maildir', join(dir, 'Maildir'), '--json', url);
} finally {
  await rm(dir, { recursive: true, force: true });
  await dovecot.stop();
}
