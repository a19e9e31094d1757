#!/usr/bin/env node
// The one way to build: `npm run build`, prepack (both packages), `npm test`, `npm run bench`,
// dev:servers, demo and soak all run this file. In order:
//
// 1. tsc -b packages/client packages/service: type-checks both, and writes each package's dist/:
//    the library that `import 'popwire'` loads, and the service's modules with their types
//    (popwire-service/webhooks, and what the benchmarks and crash tests import directly).
// 2. The `popwire` command's bundle, packages/service/dist/bundle/: what bin/popwire.js runs.
//    Loaded module by module, the command read some 420 files before doing anything (265 of them
//    Kysely's, because `messages` imported the store): 0.4 to 0.8 s of start-up, five times
//    `node -e 0`. esbuild puts the command line, the library and the pure-JavaScript packages
//    they need into popwire.js plus chunks: each command's module is a chunk of its own that
//    program.ts imports only when that command runs, so `popwire capa` never reads the store's
//    code, nor `popwire sync` the HTTP service's.
// 3. The web console's assets, packages/service/dist/web: packages/service/scripts/build-console.mjs
//    type-checks packages/service/web (DOM types, Preact's JSX) and bundles it with esbuild.
//
// `node scripts/build.mjs --bundle-only` skips step 1 (the bundle is made from the sources, not
// from tsc's output, so it does not need it); a type error then goes unnoticed.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const SERVICE = `${root}packages/service`;
const CLIENT = `${root}packages/client`;

/** Where the bundle goes. One folder below dist/, as tsc's dist/cli/ was: paths a module finds from import.meta.url (the console's assets in dist/web, say) resolve the same from either. */
const BUNDLE_DIR = `${SERVICE}/dist/bundle`;

/**
 * Third-party packages bundled into the command: the ones `popwire` needs on its way to a POP3
 * session or a sync, all plain JavaScript. Every other package stays an import of node_modules,
 * loaded only by the command that needs it: better-sqlite3 (native), and the service's stack
 * (fastify and its plugins find files next to their own modules; pino starts workers by path;
 * pg-boss, prom-client, nodemailer, imapflow...). A package bundled here must be listed in
 * packages/service/package.json's dependencies all the same: the tarball's users install it.
 */
const BUNDLED = new Set(['commander', 'kysely', 'cli-progress', 'postal-mime', '@zone-eu/mailsplit', 'popwire']);
/** Packages a bundled one requires only if they are installed (none of them is, here): left as imports. */
const OPTIONAL = new Set([]);

/**
 * A module of the service that finds a file relative to itself (`new URL('../../dist/web/',
 * import.meta.url)`, `createRequire(import.meta.url)('../../package.json')`) is written for where
 * tsc puts it: dist/console/serve-console.js, dist/cli/program.js. In the bundle it sits in a chunk
 * of dist/bundle/ instead. So its import.meta.url is made the URL its tsc output would have, and
 * such paths lead where they always did.
 */
const moduleUrlAsCompiled = {
  name: 'popwire-module-url-as-compiled',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]packages[\\/]service[\\/]src[\\/].*\.ts$/ }, async ({ path }) => {
      const source = await readFile(path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const compiled = `${SERVICE}/dist/${relative(`${SERVICE}/src`, path).replace(/\.ts$/, '.js')}`;
      const url = `new URL(${JSON.stringify(relative(BUNDLE_DIR, compiled))}, import.meta.url).href`;
      return { contents: source.replaceAll('import.meta.url', url), loader: 'ts', resolveDir: dirname(path) };
    });
  },
};

/**
 * CommonJS packages left out of the bundle that the command loads with require() rather than
 * import. An import of a CommonJS file makes Node scan its source, and the files it re-exports,
 * with cjs-module-lexer (a WebAssembly module compiled on first use) for named exports we never
 * use: importing better-sqlite3 took 18 to 19 ms of CPU against 11 for require() (fresh processes,
 * medians of 7), on every popwire sync. Only packages that are CommonJS and stay so: require() of
 * an ES module fails in Node 20.
 */
const REQUIRED = new Set(['better-sqlite3']);

/** `import X from 'better-sqlite3'` becomes X = require('better-sqlite3'): the default import of a CommonJS module is its module.exports either way. */
const requiredExternals = {
  name: 'popwire-required-externals',
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, ({ path, kind }) => {
      if (!REQUIRED.has(packageName(path))) return undefined;
      return kind === 'require-call' ? { path, external: true } : { path, namespace: 'popwire-required' };
    });
    builder.onLoad({ filter: /.*/, namespace: 'popwire-required' }, ({ path }) => ({ contents: `module.exports = require(${JSON.stringify(path)});`, loader: 'js' }));
  },
};

/** Bare imports of a package not in BUNDLED stay imports, resolved in node_modules when they run. */
const externals = {
  name: 'popwire-externals',
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, ({ path, importer }) => {
      if (path.startsWith('node:') || BUNDLED.has(packageName(path))) return undefined;
      // A bundled package's own dependencies come with it.
      if (importer.includes('/node_modules/') && !OPTIONAL.has(packageName(path))) return undefined;
      return { path, external: true };
    });
  },
};

/**
 * `import { Pop3Client } from 'popwire'` in the service's sources reads, in the bundle, as an
 * import of the library file that defines Pop3Client. Through index.ts every chunk that used the
 * library also loaded what index.ts re-exports: the message parser, postal-mime with its
 * 2,200-line entity table, a third of the library's code, which `popwire capa` and a sync with
 * nothing new never run (esbuild places whole files: whatever reaches index.ts gets every file
 * index.ts re-exports from). So each service module that imports from 'popwire' gets a facade of
 * its own re-exporting just the names it imports, each from the file index.ts takes it from; the
 * names and their meaning are index.ts's own. A name index.ts does not re-export by name is a
 * build error, and a module using another form of import (`* as`, `export ... from`) gets
 * index.ts whole.
 */
const libraryByName = {
  name: 'popwire-library-by-name',
  setup(builder) {
    const index = `${CLIENT}/src/index.ts`;
    const reexportsOf = (source) => source.matchAll(/export\s+(type\s+)?\{([^}]*)\}\s+from\s+'([^']+)'/g);
    const importsOf = (source) => source.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+'popwire'/g);
    const valueNames = (list) => list.split(',').map((name) => name.trim()).filter((name) => name !== '' && !name.startsWith('type '));
    /** Exported name -> [the file's path, the name in that file]. */
    const origins = new Map();
    for (const [, typeOnly, list, from] of reexportsOf(readFileSync(index, 'utf8'))) {
      if (typeOnly) continue;
      for (const name of valueNames(list)) {
        const [local, exported = local] = name.split(/\s+as\s+/);
        origins.set(exported, [`${CLIENT}/src/${from.replace(/^\.\//, '').replace(/\.js$/, '.ts')}`, local]);
      }
    }
    // A dynamic import('popwire') is left to the alias: index.ts whole, in a chunk of its own.
    builder.onResolve({ filter: /^popwire$/ }, ({ importer, kind }) =>
      importer.startsWith(`${SERVICE}/src/`) && kind === 'import-statement' ? { path: importer, namespace: 'popwire-by-name' } : undefined,
    );
    builder.onLoad({ filter: /.*/, namespace: 'popwire-by-name' }, async ({ path }) => {
      const source = await readFile(path, 'utf8');
      const named = [...importsOf(source)];
      const otherForms = source.split(/from\s+'popwire'/).length - 1 > named.length;
      if (otherForms) return { contents: `export * from ${JSON.stringify(index)};`, loader: 'ts' };
      const lines = [];
      for (const [, typeOnly, list] of named) {
        if (typeOnly) continue;
        for (const name of valueNames(list)) {
          const imported = name.split(/\s+as\s+/)[0];
          const origin = origins.get(imported);
          if (origin === undefined) return { errors: [{ text: `${relative(root, path)} imports ${imported} from 'popwire', which ${relative(root, index)} does not re-export by name` }] };
          lines.push(`export { ${origin[1]} as ${imported} } from ${JSON.stringify(origin[0])};`);
        }
      }
      return { contents: lines.join('\n'), loader: 'ts', resolveDir: `${CLIENT}/src` };
    });
  },
};

function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const version = (dir) => JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')).version;

function typeCheckAndCompile() {
  const tsc = spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-b', 'packages/client', 'packages/service'], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error(`tsc -b failed (exit ${tsc.status ?? tsc.signal})`);
}

/**
 * Built beside dist/bundle, then put in its place by two renames: the tests of several people run
 * the bin while one of them builds, and a bundle half written (or removed to start afresh, since
 * chunk names change with their content) would fail their runs.
 */
async function bundleCli() {
  const next = await mkdtemp(`${BUNDLE_DIR}-next-`);
  try {
    await buildBundleInto(next);
    const old = `${next.replace('-next-', '-old-')}`;
    await rename(BUNDLE_DIR, old).catch((error) => {
      if (error.code !== 'ENOENT') throw error;
    });
    // Another build may have put its bundle there in between: as fresh as this one, it stays.
    await rename(next, BUNDLE_DIR).catch((error) => {
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    });
    await rm(old, { recursive: true, force: true });
  } finally {
    await rm(next, { recursive: true, force: true });
  }
}

/** The same code at the same depth below dist/ as in dist/bundle: paths computed from import.meta.url do not depend on the folder's name. */
async function buildBundleInto(outdir) {
  await build({
    absWorkingDir: root,
    entryPoints: { popwire: `${SERVICE}/src/cli/main.ts` },
    outdir,
    bundle: true,
    // Each dynamic import() of our own modules becomes a chunk loaded when it runs.
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.11',
    // The library from its sources, so that the source maps lead to its .ts files too.
    alias: { popwire: `${CLIENT}/src/index.ts` },
    // The library is bundled: `popwire --version` names the release that runs, not whichever
    // one npm installed beside the service (see cli/program.ts).
    define: { POPWIRE_BUNDLED_VERSIONS: JSON.stringify({ service: version(SERVICE), library: version(CLIENT) }) },
    // CommonJS packages bundled into an ES module still call require() for Node's own modules.
    banner: { js: "import { createRequire as __popwireCreateRequire } from 'node:module'; const require = __popwireCreateRequire(import.meta.url);" },
    // Stack traces name the .ts files and lines (bin/popwire.js turns source maps on). The
    // sources themselves are not copied into the maps: the package ships src/.
    sourcemap: 'linked',
    sourcesContent: false,
    // Not minified: a trace read without the maps still names every function.
    minify: false,
    legalComments: 'inline',
    logLevel: 'warning',
    plugins: [libraryByName, requiredExternals, externals, moduleUrlAsCompiled],
  });
}

function buildConsole() {
  const args = [`${SERVICE}/scripts/build-console.mjs`, ...(process.argv.includes('--bundle-only') ? [] : ['--check'])];
  const build = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) throw new Error(`build-console.mjs failed (exit ${build.status ?? build.signal})`);
}

const STEPS = [
  ['tsc -b packages/client packages/service', typeCheckAndCompile],
  ['bundle of the popwire command (packages/service/dist/bundle)', bundleCli],
  ['the web console (packages/service/dist/web)', buildConsole],
];

const bundleOnly = process.argv.includes('--bundle-only');
for (const [name, step] of STEPS) {
  if (bundleOnly && step === typeCheckAndCompile) continue;
  try {
    await step();
  } catch (error) {
    console.error(`build: ${name}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
