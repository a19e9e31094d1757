/**
 * Configuration: defaults that run on one machine, the environment over the file, and a bad
 * setting refused at start with a message that names it and its source.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popwire-config-test-'));
});
after(() => rm(dir, { recursive: true, force: true }));

let files = 0;
async function file(content: unknown): Promise<string> {
  const path = join(dir, `c${++files}.json`);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function refused(pattern: RegExp) {
  return (e: unknown) => e instanceof ConfigError && pattern.test(e.message);
}

describe('loadConfig', () => {
  it('runs with no file and no environment: SQLite in ./popwire-data, the API on loopback', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.store, 'popwire-data');
    assert.deepEqual(config.http, { host: '127.0.0.1', port: 8080, headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000, maxConnections: 1024, authFailures: 20, authWindow: 60 });
    assert.equal(config.sync.concurrency, 4);
    assert.equal(config.sync.maxSize, 100 * 1024 * 1024);
    assert.equal(config.history.keepDays, 30);
  });

  it('floors the sync interval at 60 s by default, lowered only by sync.minInterval, and refuses a default under it', () => {
    assert.equal(loadConfig({ env: {} }).sync.minInterval, 60);
    assert.equal(loadConfig({ env: { POPWIRE_SYNC_MIN_INTERVAL: '1', POPWIRE_SYNC_INTERVAL: '1' } }).sync.defaultInterval, 1);
    assert.throws(() => loadConfig({ env: { POPWIRE_SYNC_INTERVAL: '10' } }), refused(/^sync\.defaultInterval \(from POPWIRE_SYNC_INTERVAL\): must be at least sync\.minInterval \(60 seconds\)/));
  });

  it('refuses a store URL of a kind it does not know, naming where it came from', () => {
    assert.throws(() => loadConfig({ env: { POPWIRE_STORE: 'mysql://x@h/db' } }), refused(/^store \(from POPWIRE_STORE\): mysql:\/\/ is not a kind of store popwire knows/));
    assert.equal(loadConfig({ env: { POPWIRE_STORE: 'postgresql://db.test/popwire' } }).store, 'postgresql://db.test/popwire');
  });

  it('takes --store, --host and --port over the environment and the file', async () => {
    const config = loadConfig({ file: await file({ http: { port: 9000 }, store: 'a' }), env: { POPWIRE_STORE: 'b', POPWIRE_HTTP_PORT: '9100' }, flags: { store: 'c', host: '::1', port: '0' } });
    assert.deepEqual([config.store, config.http.host, config.http.port], ['c', '::1', 0]);
    assert.throws(() => loadConfig({ env: {}, flags: { port: '99999' } }), refused(/^http\.port \(from --port\): must be <= 65535/));
  });

  it('takes the environment over the file', async () => {
    const config = loadConfig({ file: await file({ http: { port: 9000 }, store: 'a' }), env: { POPWIRE_HTTP_PORT: '9100' } });
    assert.equal(config.http.port, 9100);
    assert.equal(config.store, 'a');
  });

  it('names the bad setting and the file it came from', async () => {
    const path = await file({ http: { port: 70000 } });
    assert.throws(() => loadConfig({ file: path, env: {} }), refused(new RegExp(`^http\\.port \\(from ${path}\\): must be <= 65535`)));
  });

  it('names the environment variable a bad setting came from', () => {
    assert.throws(() => loadConfig({ env: { POPWIRE_SYNC_CONCURRENCY: '0' } }), refused(/^sync\.concurrency \(from POPWIRE_SYNC_CONCURRENCY\): must be >= 1/));
    assert.throws(() => loadConfig({ env: { POPWIRE_HTTP_PORT: 'eighty' } }), refused(/POPWIRE_HTTP_PORT.*must be an integer/));
  });

  it('refuses an unknown setting (a typo must not be ignored)', async () => {
    const typo = await file({ htpp: { port: 1 } });
    assert.throws(() => loadConfig({ file: typo, env: {} }), refused(/^htpp \(unknown setting\)/));
  });

  it('lists the allowed values of a setting that has few', async () => {
    const loud = await file({ log: { level: 'loud' } });
    assert.throws(() => loadConfig({ file: loud, env: {} }), refused(/log\.level .*must be one of "fatal", "error"/));
  });

  it('refuses a webhook without its secret, or one that is not http(s)', async () => {
    const noSecret = await file({ webhook: { url: 'https://x.test/hook' } });
    assert.throws(() => loadConfig({ file: noSecret, env: {} }), refused(/webhook\.secret .*is required/));
    assert.throws(() => loadConfig({ env: { POPWIRE_WEBHOOK_URL: 'file:///etc/passwd', POPWIRE_WEBHOOK_SECRET: 'x'.repeat(20) } }), refused(/webhook\.url \(from POPWIRE_WEBHOOK_URL\)/));
  });

  it('says when the file is missing or not JSON', async () => {
    assert.throws(() => loadConfig({ file: join(dir, 'missing.json'), env: {} }), refused(/cannot read the configuration file/));
    const broken = await file('{ not json');
    assert.throws(() => loadConfig({ file: broken, env: {} }), refused(/is not valid JSON/));
  });

  it('runs jobs in-process by default; pg-boss only over a PostgreSQL store', async () => {
    assert.equal(loadConfig({ env: {} }).jobs.engine, 'in-process');
    const pg = loadConfig({ env: { POPWIRE_JOBS_ENGINE: 'pg-boss', POPWIRE_STORE: 'postgres://db.test/popwire' } });
    assert.deepEqual([pg.jobs.engine, pg.store], ['pg-boss', 'postgres://db.test/popwire']);
    assert.throws(() => loadConfig({ env: { POPWIRE_JOBS_ENGINE: 'pg-boss' } }), refused(/^jobs\.engine: pg-boss needs a PostgreSQL store/));
    const sqliteFile = await file({ jobs: { engine: 'pg-boss' }, store: 'data' });
    assert.throws(() => loadConfig({ file: sqliteFile, env: {} }), refused(/^jobs\.engine: pg-boss needs a PostgreSQL store/));
    assert.throws(() => loadConfig({ env: { POPWIRE_JOBS_ENGINE: 'bullmq' } }), refused(/jobs\.engine \(from POPWIRE_JOBS_ENGINE\): must be one of "in-process", "pg-boss"/));
  });
});

describe('loadConfig: network', () => {
  it('allows nothing special by default, and reads network.allow from the file or POPWIRE_NETWORK_ALLOW', async () => {
    assert.deepEqual(loadConfig({ env: {} }).network, { allow: [] });
    assert.deepEqual(loadConfig({ file: await file({ network: { allow: ['10.0.0.0/8', 'pop.internal'] } }), env: {} }).network.allow, ['10.0.0.0/8', 'pop.internal']);
    assert.deepEqual(loadConfig({ env: { POPWIRE_NETWORK_ALLOW: ' 127.0.0.1, fd00::/8 ,*.corp.example' } }).network.allow, ['127.0.0.1', 'fd00::/8', '*.corp.example']);
  });

  it('refuses an entry that is neither an address, a CIDR block nor a host name, naming it and its source', async () => {
    const bad = await file({ network: { allow: ['10.0.0.0/8', '10.0.0.0/40'] } });
    assert.throws(() => loadConfig({ file: bad, env: {} }), refused(/^network\.allow\[1\] \(from .*\.json\): "10\.0\.0\.0\/40" is neither/));
    assert.throws(() => loadConfig({ env: { POPWIRE_NETWORK_ALLOW: 'not a host' } }), refused(/^network\.allow\[0\] \(from POPWIRE_NETWORK_ALLOW\)/));
  });
});
