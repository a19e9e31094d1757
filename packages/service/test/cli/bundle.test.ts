/**
 * The `popwire` command as the package ships it: bin/popwire.js running the bundle that
 * scripts/build.mjs makes in dist/bundle/. Before it, the command loaded some 420 module files at
 * every start (265 of them Kysely's, because the `messages` command imported the store), which
 * made `popwire capa` five times as slow to start as `node -e 0`.
 *
 * What each run loads is recorded by a module-loading hook (node --import), and each chunk of the
 * bundle names its sources in its source map: so the tests see which code a command reads, not
 * how long it takes. Build first: node scripts/build.mjs
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { smallFixtures } from '../../../../support/fixtures.ts';
import { BIN, dovecotScratch, finished, succeeded, type DovecotScratch, type Run } from './popwire.ts';

const SERVICE = fileURLToPath(new URL('../../', import.meta.url));
const CLIENT = fileURLToPath(new URL('../../../client/', import.meta.url));
const BUNDLE = join(SERVICE, 'dist/bundle/');
const PASSWORD = 'alice-secret';

/**
 * Appends the URL of every module Node loads to $POPWIRE_LOADED: ES modules and the CommonJS ones
 * they import, through the loader hook; CommonJS modules required (the bundle requires
 * better-sqlite3), which never pass that hook, from require's cache at exit.
 */
const HOOK = `
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
register('data:text/javascript,' + encodeURIComponent(\`
  import { appendFileSync } from 'node:fs';
  export async function load(url, context, next) {
    appendFileSync(process.env.POPWIRE_LOADED, url + '\\\\n');
    return next(url, context);
  }
\`));
process.on('exit', () => {
  for (const file of Object.keys(createRequire(import.meta.url).cache)) appendFileSync(process.env.POPWIRE_LOADED, pathToFileURL(file).href + '\\n');
});
`;

let server: DovecotScratch;
let hook: string;

before(async () => {
  server = await dovecotScratch('popwire-bundle-test-');
  await server.dovecot.setMailbox('alice', smallFixtures().slice(0, 3).map((fixture) => fixture.bytes));
  hook = join(server.scratch, 'hook.mjs');
  await writeFile(hook, HOOK);
});

after(async () => {
  await server?.stop();
});

interface Loaded {
  readonly run: Run;
  /** Every file loaded, as a path. */
  readonly files: readonly string[];
}

/** Runs the bin as a user would (no tsx), recording what it loads. */
async function popwireLoading(args: readonly string[]): Promise<Loaded> {
  const log = join(await mkdtemp(join(server.scratch, 'loaded-')), 'urls');
  await writeFile(log, '');
  const { POPWIRE_PASSWORD: _inherited, ...env } = process.env;
  const child = spawn(process.execPath, ['--import', hook, BIN, ...args], {
    env: { ...env, POPWIRE_PASSWORD: PASSWORD, POPWIRE_LOADED: log },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run = await finished(child as never);
  const urls = (await readFile(log, 'utf8')).split('\n').filter((url) => url.startsWith('file:'));
  return { run, files: urls.map((url) => fileURLToPath(url)).filter((path) => path !== hook) };
}

/** The sources a loaded chunk of the bundle was made of, from its source map, relative to the checkout. */
function sourcesOf(files: readonly string[]): string[] {
  return files
    .filter((file) => file.startsWith(BUNDLE))
    .flatMap((file) => (JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { sources: string[] }).sources.map((source) => join(BUNDLE, source)));
}

const capaArgs = (): string[] => ['capa', `pop3://127.0.0.1:${server.dovecot.port}`, '--ca', server.caFile];

describe('popwire runs from its bundle', () => {
  it('loads nothing of popwire-service but bin/popwire.js and files of dist/bundle, and not the library from its own package', async () => {
    for (const args of [['--version'], capaArgs()]) {
      const { run, files } = await popwireLoading(args);
      succeeded(run);
      const ours = files.filter((file) => file.startsWith(SERVICE) || file.startsWith(CLIENT) || file.includes('/node_modules/popwire/'));
      assert.ok(ours.includes(BIN), `${args[0]}: the bin ran`);
      assert.deepEqual(ours.filter((file) => file !== BIN && !file.startsWith(BUNDLE)), [], `${args[0]}: loaded outside the bundle`);
      // Commander and the library are in the bundle: a session command reads no package at all.
      assert.deepEqual(files.filter((file) => file.includes('/node_modules/')), [], `${args[0]}: loaded from node_modules`);
    }
  });

  it('popwire --version prints the versions of the service and of the library bundled into it', async () => {
    const { run } = await popwireLoading(['--version']);
    const version = (dir: string) => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(succeeded(run).stdout.toString(), `popwire-service ${version(SERVICE)}\npopwire ${version(CLIENT)}\nNode.js ${process.version}\n`);
  });

  it('popwire capa reads neither the store nor the sync engine nor the service: of them, only the error classes its failures are sorted by', async () => {
    const { run, files } = await popwireLoading(capaArgs());
    assert.match(succeeded(run).stdout.toString(), /^CAPA$/m);
    const sources = sourcesOf(files);
    assert.ok(sources.some((source) => source.endsWith('src/cli/commands/capa.ts')), 'the capa command came from the bundle');
    // failure.ts tells a store's or a sync's error from others by its class.
    const allowed = ['src/store/errors.ts', 'src/sync/errors.ts', 'src/delivery/delivery.ts'].map((path) => join(SERVICE, path));
    const heavy = sources.filter((source) => !allowed.includes(source) && /\/src\/(store|sync|http|jobs|delivery|accounts)\/|\/node_modules\/(kysely|cli-progress)\//.test(source));
    assert.deepEqual(heavy, []);
  });

  it('popwire capa reads none of the message parser (the library\'s message reading, postal-mime, mailsplit) and not the connection test', async () => {
    const { run, files } = await popwireLoading(capaArgs());
    assert.match(succeeded(run).stdout.toString(), /^CAPA$/m);
    const sources = sourcesOf(files);
    assert.ok(sources.some((source) => source === join(CLIENT, 'src/client.ts')), 'the library came from the bundle');
    const parser = sources.filter((source) => source === join(CLIENT, 'src/message.ts') || source.startsWith(join(CLIENT, 'src/message/')) || /\/node_modules\/(postal-mime|@zone-eu\/mailsplit)\//.test(source));
    assert.deepEqual(parser, []);
    // Pop3Client.test's step-by-step connection (with node:dns/promises and node:perf_hooks) loads when called.
    assert.ok(!sources.includes(join(CLIENT, 'src/connection-test.ts')), 'connection-test.ts was loaded');
  });

  it('popwire sync into SQLite loads better-sqlite3, and neither pg nor the HTTP service', async () => {
    const store = join(server.scratch, 'store');
    const { run, files } = await popwireLoading(['sync', `pop3://alice@127.0.0.1:${server.dovecot.port}`, '--store', store, '--ca', server.caFile]);
    assert.match(succeeded(run).stdout.toString(), /^new\s+3$/m);
    const packages = new Set(files.filter((file) => file.includes('/node_modules/')).map((file) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]));
    // better-sqlite3 finds its native module through bindings (which requires file-uri-to-path).
    assert.deepEqual([...packages].sort(), ['better-sqlite3', 'bindings', 'file-uri-to-path']);
    const sources = sourcesOf(files);
    assert.ok(sources.some((source) => source.endsWith('src/store/store.ts')));
    // jobs/failure.ts sorts a run's errors for its record: the rest of jobs/ is the service's scheduler.
    assert.deepEqual(sources.filter((source) => /\/src\/(http|console)\/|\/src\/serve\.ts$|\/src\/jobs\/(?!failure\.ts)/.test(source)), []);
  });

  it('popwire sync with nothing new reads none of the message parser, which the run that stored the messages did', async () => {
    const store = join(await mkdtemp(join(server.scratch, 'store-')), 'store');
    const sync = ['sync', `pop3://alice@127.0.0.1:${server.dovecot.port}`, '--store', store, '--ca', server.caFile];
    const isParser = (source: string) => source === join(CLIENT, 'src/message.ts') || /\/node_modules\/postal-mime\//.test(source);
    const first = await popwireLoading(sync);
    assert.match(succeeded(first.run).stdout.toString(), /^new\s+3$/m);
    assert.ok(sourcesOf(first.files).some(isParser), 'the first run parsed the messages it stored');
    const again = await popwireLoading(sync);
    assert.match(succeeded(again.run).stdout.toString(), /^new\s+0$/m);
    assert.deepEqual(sourcesOf(again.files).filter(isParser), []);
  });

  it('every command named in `popwire --help` loads the module that adds it, for `popwire NAME --help` and `popwire help NAME`', async () => {
    const { run } = await popwireLoading(['--help']);
    const help = succeeded(run).stdout.toString();
    const names = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}([a-z]+)\b/gm)].map((match) => match[1]!).filter((name) => name !== 'help');
    assert.ok(names.includes('capa') && names.includes('serve') && names.includes('export'), names.join(' '));
    for (const name of names) {
      for (const args of [[name, '--help'], ['help', name]]) {
        const { run: shown } = await popwireLoading(args);
        assert.match(succeeded(shown).stdout.toString(), new RegExp(`^Usage: popwire ${name} `), args.join(' '));
      }
    }
  });
});

describe('the source maps of the bundle', () => {
  /** The line (1-based) and column (0-based) of `text` in the bundle's file `name`. */
  function positionIn(name: string, text: string): { line: number; column: number } {
    const lines = readFileSync(join(BUNDLE, name), 'utf8').split('\n');
    const line = lines.findIndex((candidate) => candidate.includes(text));
    assert.notEqual(line, -1, `${text} in ${name}`);
    return { line: line + 1, column: lines[line]!.indexOf(text) };
  }

  it('lead from a line of the bundle back to the TypeScript source it came from, for the service and for the library', async () => {
    const chunks = readdirSync(BUNDLE).filter((name) => name.endsWith('.js'));
    const library = chunks.find((name) => readFileSync(join(BUNDLE, name), 'utf8').includes('var Pop3Client = class'));
    assert.ok(library, 'a chunk holds Pop3Client');
    const probes = [
      { chunk: 'popwire.js', text: 'function asksForJson(', source: join(SERVICE, 'src/cli/main.ts') },
      { chunk: library, text: 'var Pop3Client = class', source: join(CLIENT, 'src/client.ts'), original: 'export class Pop3Client' },
    ];
    // As bin/popwire.js does it: source maps on, then the bundle loaded; then Node's own lookup, the one stack traces use.
    const script = `
      import { findSourceMap } from 'node:module';
      import { pathToFileURL } from 'node:url';
      process.setSourceMapsEnabled(true);
      const probes = JSON.parse(process.argv[1]);
      await import(pathToFileURL(process.argv[2] + 'popwire.js').href);
      for (const probe of probes) await import(pathToFileURL(process.argv[2] + probe.chunk).href);
      const found = probes.map((probe) => findSourceMap(pathToFileURL(process.argv[2] + probe.chunk).href)?.findEntry(probe.line - 1, probe.column));
      console.log(JSON.stringify(found));
    `;
    const positioned = probes.map((probe) => ({ ...probe, ...positionIn(probe.chunk, probe.text) }));
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(positioned), BUNDLE], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run = await finished(child as never);
    assert.equal(run.code, 0, run.stderr);
    const entries = JSON.parse(run.stdout.toString()) as Array<{ originalSource: string; originalLine: number } | undefined>;
    positioned.forEach((probe, i) => {
      const entry = entries[i];
      assert.ok(entry?.originalSource, `${probe.text}: no mapping`);
      assert.equal(fileURLToPath(new URL(entry.originalSource, 'file:///').href.startsWith('file:') ? entry.originalSource : `file://${entry.originalSource}`), probe.source);
      const line = readFileSync(probe.source, 'utf8').split('\n')[entry.originalLine];
      assert.ok(line?.includes(probe.original ?? probe.text), `${probe.text} maps to: ${line}`);
    });
  });
});
