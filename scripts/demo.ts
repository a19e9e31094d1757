/**
 * `npm run demo`: on a fresh machine, shows popwire doing its job against a real POP3 server.
 * It starts a private Dovecot on loopback (as the tests do), puts a few messages in alice's
 * mailbox, and runs the built `popwire` command against it, printing each command line first:
 * the session commands, fetch, sync into a local store (twice: the second run finds only the new
 * message), then `popwire serve` with an account made and synced over its HTTP API.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDovecot } from '../support/dovecot.ts';
import { bulkMessages, smallFixtures } from '../support/fixtures.ts';

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

  const store = join(dir, 'popwire-data');
  popwire('sync', '--ca', ca, '--store', store, url);
  await dovecot.deliver('alice', bulkMessages(1, 2000)[0]!);
  console.log('\n(one new message delivered)');
  popwire('sync', '--ca', ca, '--store', store, url);
  popwire('messages', '--store', store, '--limit', '5');
  popwire('show', '1', '--store', store);
  await serveDemo(store, ca, dovecot.tlsPort, dovecot.users.bob!.password);
} finally {
  await rm(dir, { recursive: true, force: true });
  await dovecot.stop();
}

/** `popwire serve` on the same store: a token, an account for bob over the API, a sync, its messages. */
async function serveDemo(store: string, ca: string, port: number, password: string): Promise<void> {
  await dovecot.setMailbox('bob', smallFixtures().map((f) => f.bytes));
  console.log(`\n$ popwire token create --store ${store}`);
  const token = spawnSync(process.execPath, [bin, 'token', 'create', '--store', store], { encoding: 'utf8' }).stdout.trim();
  console.log(token);
  // The demo's Dovecot is on loopback, which the service refuses for API callers unless allowed.
  console.log(`\n$ POPWIRE_STORE=${store} POPWIRE_HTTP_PORT=0 POPWIRE_TLS_CA_FILE=${ca} POPWIRE_NETWORK_ALLOW=127.0.0.1 POPWIRE_LOG_LEVEL=warn popwire serve &`);
  const env = { ...process.env, POPWIRE_STORE: store, POPWIRE_HTTP_PORT: '0', POPWIRE_TLS_CA_FILE: ca, POPWIRE_NETWORK_ALLOW: '127.0.0.1', POPWIRE_LOG_LEVEL: 'warn' };
  const server = spawn(process.execPath, [bin, 'serve'], { env, stdio: ['ignore', 'inherit', 'pipe'] });
  try {
    let stderr = '';
    while (!/listening on (\S+)/.test(stderr)) {
      const [chunk] = (await once(server.stderr, 'data')) as [Buffer];
      stderr += chunk.toString();
    }
    const base = /listening on (\S+)/.exec(stderr)![1]!;
    console.log(stderr.trim());
    const call = async (method: string, path: string, body?: unknown) => {
      console.log(`\n$ curl -X ${method} ${base}${path}${body === undefined ? '' : ` -d '${JSON.stringify(body).replace(password, '***')}'`}`);
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = (await response.json()) as Record<string, unknown>;
      console.log(response.status, JSON.stringify(json).slice(0, 600));
      return json;
    };
    const account = await call('POST', '/v1/accounts', {
      name: 'Bob',
      host: '127.0.0.1',
      port,
      username: 'bob',
      credentials: { type: 'password', password },
      syncInterval: null,
    });
    const job = await call('POST', `/v1/accounts/${String(account.id)}/sync`);
    for (let state = job; state.status === 'queued' || state.status === 'running'; ) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      state = (await (await fetch(`${base}/v1/jobs/${String(job.id)}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    }
    await call('GET', `/v1/jobs/${String(job.id)}`);
    await call('GET', `/v1/accounts/${String(account.id)}/messages?limit=3`);
  } finally {
    server.kill('SIGTERM');
    await once(server, 'exit');
  }
}
