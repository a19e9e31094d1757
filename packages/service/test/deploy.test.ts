/**
 * The deployment files in docs/deploy/: the systemd unit passes `systemd-analyze verify` with no
 * warning and keeps its hardening (systemd's own exposure score, offline), and agrees with the
 * example configuration; each example configuration is accepted by the service's real loader,
 * and popwire.json runs the real service (on a temp store, port 0) that answers /health.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { generateKey } from '../src/accounts/secrets.ts';
import { loadConfig } from '../src/config.ts';
import { startService } from '../src/serve.ts';

const DEPLOY = fileURLToPath(new URL('../../../docs/deploy/', import.meta.url));
const UNIT = join(DEPLOY, 'popwire.service');
const INSTALL_SCRIPT = fileURLToPath(new URL('../../../scripts/install-system-deps.sh', import.meta.url));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popwire-deploy-test-'));
  if (spawnSync('sh', ['-c', 'command -v systemd-analyze']).status !== 0) {
    const install = spawnSync('bash', [INSTALL_SCRIPT], { encoding: 'utf8' });
    assert.equal(install.status, 0, install.stderr);
  }
});
after(() => rm(dir, { recursive: true, force: true }));

function systemdAnalyze(args: readonly string[]): { status: number | null; output: string } {
  const run = spawnSync('systemd-analyze', args, { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** Every `Key=value` of a section, in order (a key may repeat). */
function section(unit: string, name: string): Array<[string, string]> {
  const body = unit.split(/^\[/m).find((s) => s.startsWith(`${name}]`));
  assert.ok(body !== undefined, `no [${name}]`);
  return body
    .split('\n')
    .slice(1)
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}

describe('docs/deploy/popwire.service', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const service = new Map(section(unit, 'Service'));

  it('passes systemd-analyze verify without a warning', () => {
    // verify checks that ExecStart's program exists: /usr/bin/env does, wherever popwire is installed.
    assert.deepEqual(systemdAnalyze(['verify', UNIT]), { status: 0, output: '' });
  });

  it('would be reported by verify if a setting were misspelt or its program missing (the check above can fail)', async () => {
    const misspelt = join(dir, 'misspelt.service');
    await writeFile(misspelt, unit.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
    assert.match(systemdAnalyze(['verify', misspelt]).output, /Unknown key 'NoNewPrivilege'/);
    const missing = join(dir, 'missing.service');
    await writeFile(missing, unit.replace('ExecStart=/usr/bin/env ', 'ExecStart=/nonexistent/env '));
    assert.notEqual(systemdAnalyze(['verify', missing]).status, 0);
  });

  it('keeps systemd\'s exposure score at 2.0 or below (OK): a dedicated user, a read-only system, no new privileges', async () => {
    const score = systemdAnalyze(['security', '--offline=yes', '--threshold=20', UNIT]);
    assert.equal(score.status, 0, score.output.split('\n').at(-1));
    // The same check fails once the hardening goes.
    const bare = join(dir, 'bare.service');
    await writeFile(bare, unit.split('\n').filter((line) => !/^(Protect|Private|Restrict|NoNew|Capability|SystemCall|LockPersonality|UMask)/.test(line)).join('\n'));
    assert.notEqual(systemdAnalyze(['security', '--offline=yes', '--threshold=20', bare]).status, 0);
  });

  it('runs popwire serve as the popwire user, with the store in its state directory and the example configuration', () => {
    assert.equal(service.get('User'), 'popwire');
    assert.equal(service.get('NoNewPrivileges'), 'yes');
    assert.equal(service.get('ProtectSystem'), 'strict');
    assert.equal(service.get('ProtectHome'), 'yes');
    assert.equal(service.get('PrivateTmp'), 'yes');
    const exec = service.get('ExecStart')!;
    assert.match(exec, /^\/usr\/bin\/env popwire serve --config \/etc\/popwire\/popwire\.json$/);
    const config = loadConfig({ file: join(DEPLOY, 'popwire.json'), env: {} });
    assert.equal(config.store, `/var/lib/${service.get('StateDirectory')}`);
    assert.equal(service.get('ReadWritePaths'), config.store);
    // Stopping waits for running syncs (sync.shutdownGrace) before systemd sends SIGKILL.
    assert.ok(Number(service.get('TimeoutStopSec')) * 1000 > config.sync.shutdownGrace);
  });
});

describe('docs/deploy example configurations', () => {
  it('popwire.json is accepted by the real loader: SQLite in /var/lib/popwire, the API on loopback, a key file', () => {
    const config = loadConfig({ file: join(DEPLOY, 'popwire.json'), env: {} });
    assert.equal(config.store, '/var/lib/popwire');
    assert.equal(config.secretKeyFile, '/etc/popwire/secret.key');
    assert.equal(config.http.host, '127.0.0.1');
    assert.equal(config.http.port, 8080);
    assert.equal(config.jobs.engine, 'in-process');
  });

  it('popwire-postgres.json is accepted by the real loader: PostgreSQL with the pg-boss queue', () => {
    const config = loadConfig({ file: join(DEPLOY, 'popwire-postgres.json'), env: {} });
    assert.match(config.store, /^postgres:\/\//);
    assert.equal(config.jobs.engine, 'pg-boss');
    assert.equal(config.tls.caFile, '/etc/popwire/extra-ca.pem');
  });

  it('popwire.json runs the service as written, with only the paths and the port moved', async () => {
    const example = JSON.parse(readFileSync(join(DEPLOY, 'popwire.json'), 'utf8')) as Record<string, unknown>;
    const keyFile = join(dir, 'secret.key');
    await writeFile(keyFile, `${generateKey()}\n`, { mode: 0o600 });
    const file = join(dir, 'popwire.json');
    await writeFile(file, JSON.stringify({ ...example, store: join(dir, 'store'), secretKeyFile: keyFile }));
    const config = loadConfig({ file, env: { POPWIRE_HTTP_PORT: '0' } });
    // `init`: a new store is made where none is (the option is ignored where stores are always made).
    const options = { env: {}, init: true, logDestination: new Writable({ write: (_chunk, _encoding, done) => done() }) };
    const running = await startService(config, options);
    try {
      const health = await fetch(`${running.url}/health`);
      assert.equal(health.status, 200);
    } finally {
      await running.close();
    }
  });
});
