/**
 * The two packages as a user gets them: `npm pack` both, install the tarballs into an empty
 * folder (their third-party dependencies come from the registry, through the npm cache), and use
 * them from there: `npx popwire --version` and `--help`, a plain-JavaScript ES module that imports
 * `popwire` and reads a message from a real Dovecot, a webhook receiver that imports
 * `popwire-service/webhooks`, and a TypeScript file that type-checks against both. A file missing
 * from a tarball (once, `files` left out `dist`: the installed bin failed with
 * ERR_MODULE_NOT_FOUND) fails here, as it would for a user.
 *
 * better-sqlite3 is a native module. On a user's machine npm downloads its prebuilt binary from
 * GitHub; here GitHub is out of reach, and compiling it costs about a minute. So the binary this
 * checkout already built is offered to prebuild-install as a local prebuild (its documented
 * npm_config_<package>_local_prebuilds setting), exactly where a download would have put it.
 * Without a built binary in the checkout, npm compiles it, as it would for a user.
 *
 * Slow by nature (npm install: about 25 s with a warm cache). Build first is not needed: `npm pack`
 * runs prepack, which builds (scripts/build.mjs: the command's bundle with the rest).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../support/dovecot.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const PACKAGES = { client: join(ROOT, 'packages/client'), service: join(ROOT, 'packages/service') };
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const RUN_TIMEOUT_MS = 60_000;

const MESSAGE = Buffer.from('From: a@example.com\r\nSubject: from the tarball\r\n\r\nhello\r\n');

interface Packed { name: string; version: string; filename: string; files: string[] }
interface Output { code: number | null; stdout: string; stderr: string; ms: number }

let dovecot: Dovecot;
let work: string;
/** The empty project the tarballs are installed into. */
let app: string;
let packed: { client: Packed; service: Packed };
let install: Output;

/**
 * npm's own variables (set when the suite runs under `npm test`) describe the checkout, not the
 * user's project: npm_config_local_prefix would point npm install back at the workspace.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_registry']);
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_') || keep.has(key.toLowerCase())));
  return { ...env, ...extra };
}

function exec(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<Output> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), timeout: options.timeout ?? RUN_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr, ms: Math.round(performance.now() - started) });
    });
  });
}

function ok(output: Output, what: string): Output {
  assert.equal(output.code, 0, `${what} failed (exit ${output.code}):\n${output.stderr}\n${output.stdout}`);
  return output;
}

async function pack(dir: string, destination: string): Promise<Packed> {
  const output = ok(await exec('npm', ['pack', '--json', '--pack-destination', destination], { cwd: dir, timeout: INSTALL_TIMEOUT_MS }), `npm pack in ${dir}`);
  // prepack's tsc writes nothing to stdout on success, so stdout is npm's JSON alone.
  const [result] = JSON.parse(output.stdout.slice(output.stdout.indexOf('['))) as Array<{ name: string; version: string; filename: string; files: Array<{ path: string }> }>;
  assert.ok(result);
  return { name: result.name, version: result.version, filename: join(destination, result.filename), files: result.files.map((file) => file.path) };
}

/** prebuild-install's file name for this platform's binary: {name}-v{version}-{runtime}-v{abi}-{platform}{libc}-{arch}.tar.gz. */
async function offerLocalPrebuild(into: string): Promise<Record<string, string>> {
  const module = join(ROOT, 'node_modules/better-sqlite3');
  if (!existsSync(join(module, 'build/Release/better_sqlite3.node'))) return {};
  const { version } = JSON.parse(await readFile(join(module, 'package.json'), 'utf8')) as { version: string };
  const libc = process.platform === 'linux' && !(process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime ? 'musl' : '';
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}${libc}-${process.arch}.tar.gz`;
  await mkdir(into, { recursive: true });
  ok(await exec('tar', ['czf', join(into, name), '-C', module, 'build/Release/better_sqlite3.node'], { cwd: into }), 'tar');
  return { npm_config_better_sqlite3_local_prebuilds: into };
}

before(async () => {
  [dovecot, work] = await Promise.all([startDovecot(), mkdtemp(join(tmpdir(), 'popwire-package-'))]);
  await dovecot.setMailbox('alice', [MESSAGE]);
  const tarballs = join(work, 'tarballs');
  await mkdir(tarballs);
  packed = { client: await pack(PACKAGES.client, tarballs), service: await pack(PACKAGES.service, tarballs) };
  app = join(work, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'popwire-package-test', private: true, type: 'module' }, null, 2));
  const prebuild = await offerLocalPrebuild(join(work, 'prebuilds'));
  install = await exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', packed.client.filename, packed.service.filename], {
    cwd: app,
    env: cleanEnv(prebuild),
    timeout: INSTALL_TIMEOUT_MS,
  });
}, { timeout: INSTALL_TIMEOUT_MS * 2 });

after(async () => {
  await dovecot?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** Relative imports (static and dynamic) of a compiled module. */
function relativeImports(source: string): string[] {
  return [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)].map((match) => match[1]!);
}

describe('the packages, installed from their tarballs into an empty folder', () => {
  it('install without errors and without a dependency that refuses Node 20', (t) => {
    t.diagnostic(`npm install took ${install.ms} ms; tarballs: ${packed.client.filename}, ${packed.service.filename}`);
    ok(install, 'npm install of the tarballs');
    // content-disposition 3 and cookie 2 (pulled by newer @fastify/static and light-my-request)
    // declare node >= 22 and are ES modules that CommonJS require()s: npm warns EBADENGINE, and
    // Node 20 before 20.19 cannot load them at all.
    assert.doesNotMatch(install.stderr, /EBADENGINE/);
  });

  it('ship the LICENSE, the README, the bin, the compiled code and its types, and no tests', () => {
    for (const file of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']) assert.ok(packed.client.files.includes(file), `popwire: ${file}`);
    for (const file of ['LICENSE', 'README.md', 'package.json', 'bin/popwire.js', 'dist/bundle/popwire.js', 'dist/bundle/popwire.js.map', 'dist/webhooks.js', 'dist/webhooks.d.ts']) {
      assert.ok(packed.service.files.includes(file), `popwire-service: ${file}`);
    }
    // The command runs from the bundle: tsc's module-by-module copy of it is not shipped.
    assert.deepEqual(packed.service.files.filter((file) => file.startsWith('dist/cli/')), []);
    for (const { name, files } of [packed.client, packed.service]) {
      assert.deepEqual(files.filter((file) => /(^|\/)test\/|\.test\.|tsbuildinfo/.test(file)), [], name);
    }
  });

  it('every relative import in the shipped code names a file that is shipped', async () => {
    for (const [key, { name, files }] of Object.entries(packed)) {
      const shipped = new Set(files);
      for (const file of files.filter((path) => path.endsWith('.js'))) {
        const source = await readFile(join(app, 'node_modules', name, file), 'utf8');
        for (const specifier of relativeImports(source)) {
          const target = posix.normalize(posix.join(posix.dirname(file), specifier));
          assert.ok(shipped.has(target), `${key}: ${file} imports ${specifier}, which is not in the tarball`);
        }
      }
    }
  });

  it('npx popwire --version prints the versions of both packages', async () => {
    const { stdout } = ok(await exec('npx', ['--no', '--', 'popwire', '--version'], { cwd: app }), 'popwire --version');
    assert.match(stdout, new RegExp(`^popwire-service ${packed.service.version}$`, 'm'));
    assert.match(stdout, new RegExp(`^popwire ${packed.client.version}$`, 'm'));
  });

  it('the installed popwire runs its bundle: every file it loads of either package is bin/popwire.js or in dist/bundle/', async () => {
    // A module hook writes down every file Node loads (ES modules, and the CommonJS ones they import).
    const hook = join(work, 'hook.mjs');
    const log = join(work, 'loaded.txt');
    await writeFile(log, '');
    await writeFile(
      hook,
      `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent(${JSON.stringify(
        `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context); }`,
      )}));\n`,
    );
    const bin = join(app, 'node_modules/popwire-service/bin/popwire.js');
    await writeFile(join(app, 'ca.pem'), dovecot.ca);
    ok(await exec(process.execPath, ['--import', hook, bin, 'capa', `pop3://127.0.0.1:${dovecot.port}`, '--ca', join(app, 'ca.pem')], { cwd: app }), 'popwire capa');
    const loaded = (await readFile(log, 'utf8')).split('\n').filter((url) => url.startsWith('file:')).map((url) => fileURLToPath(url));
    const service = join(app, 'node_modules/popwire-service/');
    const ours = loaded.filter((file) => file.startsWith(service) || file.startsWith(join(app, 'node_modules/popwire/')));
    assert.ok(ours.includes(bin) && ours.some((file) => file.startsWith(join(service, 'dist/bundle/'))), ours.join('\n'));
    assert.deepEqual(ours.filter((file) => file !== bin && !file.startsWith(join(service, 'dist/bundle/'))), []);
  });

  it('npx popwire --help lists the commands', async () => {
    const { stdout } = ok(await exec('npx', ['--no', '--', 'popwire', '--help'], { cwd: app }), 'popwire --help');
    assert.match(stdout, /^Usage: popwire /m);
    for (const command of ['stat', 'fetch', 'sync', 'serve']) assert.match(stdout, new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('a plain JavaScript ES module imports popwire and reads a message from Dovecot', async () => {
    const script = `
      import { readFileSync } from 'node:fs';
      import { Pop3Client } from 'popwire';
      const client = await Pop3Client.connect({
        host: 'localhost',
        port: Number(process.env.POP3_PORT),
        ca: readFileSync(process.env.POP3_CA),
        user: 'alice',
        password: process.env.POP3_PASSWORD,
      });
      try {
        const { count } = await client.stat();
        const body = await client.retrieve(1);
        console.log(JSON.stringify({ count, body: body.toString('base64') }));
      } finally {
        await client.quit();
      }
    `;
    await writeFile(join(app, 'read.mjs'), script);
    await writeFile(join(app, 'ca.pem'), dovecot.ca);
    const env = cleanEnv({ POP3_PORT: String(dovecot.tlsPort), POP3_CA: join(app, 'ca.pem'), POP3_PASSWORD: dovecot.users.alice!.password });
    const { stdout } = ok(await exec(process.execPath, ['read.mjs'], { cwd: app, env }), 'the script');
    const result = JSON.parse(stdout) as { count: number; body: string };
    assert.equal(result.count, 1);
    assert.deepEqual(Buffer.from(result.body, 'base64'), MESSAGE);
  });

  it('a webhook receiver checks Popwire-Signature with popwire-service/webhooks', async () => {
    const script = `
      import { verifySignature, SIGNATURE_HEADER } from 'popwire-service/webhooks';
      const { SECRET, HEADER, BODY } = process.env;
      console.log(JSON.stringify([SIGNATURE_HEADER, verifySignature(SECRET, HEADER, BODY), verifySignature(SECRET, HEADER, BODY + ' ')]));
    `;
    await writeFile(join(app, 'receiver.mjs'), script);
    // Signed here by the documented scheme, not by popwire's own code: HMAC-SHA256 of "<t>.<body>".
    const secret = 'a-shared-secret-of-some-length';
    const body = '{"type":"message.new"}';
    const t = Math.floor(Date.now() / 1000);
    const header = `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
    const { stdout } = ok(await exec(process.execPath, ['receiver.mjs'], { cwd: app, env: cleanEnv({ SECRET: secret, HEADER: header, BODY: body }) }), 'the receiver');
    assert.deepEqual(JSON.parse(stdout), ['Popwire-Signature', true, false]);
  });

  it('a TypeScript consumer type-checks against both packages', async () => {
    const source = `
      import { Pop3Client, Pop3Error, type Pop3ClientOptions } from 'popwire';
      import { verifySignature } from 'popwire-service/webhooks';
      const options: Pop3ClientOptions = { host: 'pop.example.com', user: 'alice', password: 'secret' };
      export async function count(): Promise<number> {
        await using client = await Pop3Client.connect(options);
        return (await client.stat()).count;
      }
      export const valid: boolean = verifySignature('secret', 't=1,v1=00', '{}');
      export const isPop3Error = (error: unknown): boolean => error instanceof Pop3Error;
    `;
    await writeFile(join(app, 'consumer.ts'), source);
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const args = [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023,esnext.disposable', '--typeRoots', join(ROOT, 'node_modules/@types'), '--types', 'node', 'consumer.ts'];
    ok(await exec(process.execPath, args, { cwd: app }), 'tsc');
  });
});
