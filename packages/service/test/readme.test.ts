/**
 * The README's examples run as written, against a real Dovecot.
 *
 * The convention: a fenced code block whose info string has the word `runnable` after the
 * language is a complete program, and this test runs every one of them:
 *
 *   ```js runnable       plain JavaScript (an ES module), run with `node` as it is
 *   ```ts runnable       TypeScript, run with tsx (the `await using` form)
 *
 * GitHub reads only the first word of the info string, so the reader sees ordinary `js` or `ts`
 * highlighting. Blocks without the marker are fragments (they use names defined elsewhere) and
 * are not run. Each runnable block is written to a fresh folder, where `popwire` and
 * `popwire-service` resolve to this checkout's built packages (as they would from npm), and runs
 * with the environment a user would set for it: POP3_HOST, POP3_PORT, POP3_USER, POP3_PASSWORD,
 * and NODE_EXTRA_CA_CERTS to trust the test server's self-signed certificate (Node's standard
 * way, so the examples need no test-only option). The mailbox is refilled before each block.
 *
 * Build first: npx tsc -b packages/client packages/service
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pop3Client } from 'popwire';
import { startDovecot, type Dovecot } from '../../../support/dovecot.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const README = join(ROOT, 'README.md');
const RUN_TIMEOUT_MS = 60_000;

const MAILBOX = [
  Buffer.from('From: a@example.com\r\nSubject: one\r\n\r\nfirst\r\n'),
  Buffer.from('From: b@example.com\r\nSubject: two\r\n\r\nsecond\r\n'),
];

interface RunnableBlock {
  language: 'js' | 'ts';
  /** 1-based line of the opening fence, to name the block in failures. */
  line: number;
  code: string;
}

/** Every fenced block marked `runnable`, in order. An unknown language with the marker is an error, not a skip. */
function runnableBlocks(markdown: string): RunnableBlock[] {
  const blocks: RunnableBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})\s*(\S+)?(.*)$/.exec(lines[i]!);
    if (open === null) continue;
    const [, fence, language = '', rest = ''] = open;
    const end = lines.findIndex((line, j) => j > i && line.startsWith(fence!) && line.slice(fence!.length).trim() === '');
    if (end === -1) throw new Error(`README line ${i + 1}: code block never closed`);
    if (rest.split(/\s+/).includes('runnable')) {
      if (language !== 'js' && language !== 'ts') throw new Error(`README line ${i + 1}: runnable block in ${language || 'no language'}; only js and ts are run`);
      blocks.push({ language, line: i + 1, code: lines.slice(i + 1, end).join('\n') + '\n' });
    }
    i = end;
  }
  return blocks;
}

interface Result { code: number | null; stdout: string; stderr: string; dir: string }

let dovecot: Dovecot;
let scratch: string;
let caFile: string;

before(async () => {
  dovecot = await startDovecot();
  scratch = await mkdtemp(join(tmpdir(), 'popwire-readme-'));
  caFile = join(scratch, 'ca.pem');
  await writeFile(caFile, dovecot.ca);
});

after(async () => {
  await dovecot?.stop();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

/** A folder whose node_modules has our two packages (built) and tsx, as an installed project would. */
async function project(name: string): Promise<string> {
  const dir = await mkdtemp(join(scratch, `${name}-`));
  await mkdir(join(dir, 'node_modules'));
  await symlink(join(ROOT, 'packages/client'), join(dir, 'node_modules/popwire'));
  await symlink(join(ROOT, 'packages/service'), join(dir, 'node_modules/popwire-service'));
  await symlink(join(ROOT, 'node_modules/tsx'), join(dir, 'node_modules/tsx'));
  return dir;
}

async function run(block: RunnableBlock): Promise<Result> {
  const dir = await project(`block-${block.line}`);
  const file = join(dir, block.language === 'js' ? 'example.mjs' : 'example.mts');
  await writeFile(file, block.code);
  const args = block.language === 'js' ? [file] : ['--import', 'tsx', file];
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    POP3_HOST: 'localhost',
    POP3_PORT: String(dovecot.tlsPort),
    POP3_USER: 'alice',
    POP3_PASSWORD: dovecot.users.alice!.password,
    NODE_EXTRA_CA_CERTS: caFile,
  };
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: dir, env, timeout: RUN_TIMEOUT_MS }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr, dir });
    });
  });
}

const blocks = runnableBlocks(await readFile(README, 'utf8'));

describe('README examples', () => {
  it('the README has runnable examples, plain JavaScript among them', () => {
    assert.ok(blocks.some((block) => block.language === 'js'), 'no ```js runnable block in README.md');
  });

  it('no plain JavaScript block uses `await using`, which Node 20 cannot run', () => {
    for (const block of blocks.filter((b) => b.language === 'js')) {
      assert.doesNotMatch(block.code, /\bawait\s+using\b/, `README line ${block.line}`);
    }
  });

  for (const block of blocks) {
    it(`the ${block.language} example at README line ${block.line} runs against Dovecot and exits 0`, async () => {
      await dovecot.setMailbox('alice', MAILBOX);
      const result = await run(block);
      assert.equal(result.code, 0, `README line ${block.line} failed:\n${result.stderr}${result.stdout}`);
    });
  }

  it('the library example saves every message to a file and deletes message 1 at QUIT', async () => {
    const example = blocks.find((block) => block.language === 'js' && block.code.includes('retrieveMany'));
    assert.ok(example, 'the library example is not marked runnable');
    await dovecot.setMailbox('alice', MAILBOX);
    const result = await run(example);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^2 messages, \d+ octets$/m);
    assert.deepEqual((await readdir(result.dir)).filter((name) => name.endsWith('.eml')).sort(), ['1.eml', '2.eml']);
    assert.deepEqual(await readFile(join(result.dir, '2.eml')), MAILBOX[1]);
    // A new session sees what the server committed at the example's QUIT.
    await using client = await Pop3Client.connect({ host: 'localhost', port: dovecot.tlsPort, ca: dovecot.ca, user: 'alice', password: dovecot.users.alice!.password });
    assert.equal((await client.stat()).count, 1, 'message 1 was not deleted at QUIT');
    assert.deepEqual(await client.retrieve(1), MAILBOX[1]);
  });
});

describe('runnableBlocks', () => {
  it('takes only blocks marked runnable, with their line numbers', () => {
    const markdown = ['# t', '```js runnable', 'a();', '```', '```js', 'b();', '```', '````ts runnable', '```', 'c();', '````', ''].join('\n');
    assert.deepEqual(runnableBlocks(markdown), [
      { language: 'js', line: 2, code: 'a();\n' },
      { language: 'ts', line: 8, code: '```\nc();\n' },
    ]);
  });

  it('refuses a runnable block in a language it cannot run', () => {
    assert.throws(() => runnableBlocks('```sh runnable\nls\n```\n'), /only js and ts/);
  });
});
