/**
 * docs/architecture.md names the files the code is in; this keeps it honest. Every file it names
 * in backquotes (`sync/session.ts`, `test/sync/faults.test.ts`, `protocol/command.ts`) must be a
 * file of the repository (matched by its path's end, since the document names files relative to
 * the package or folder it is describing), and every function or class it pairs with such a file
 * (`sync/session.ts` `runSession`) must appear in that file. The "In progress" list at its end is
 * not checked: it names work that has not landed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8').split('\n## In progress')[0]!;
const FILES = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter((f) => f !== '' && existsSync(join(ROOT, f)));
const FILE = /^[\w.-]+(?:\/[\w.-]+)*\.(?:ts|mjs|md|sh|json|service)$/;

/** Repository files whose path ends with `name` (at a folder boundary). */
function filesNamed(name: string): string[] {
  const bare = name.replace(/^\.\.\//, '');
  return FILES.filter((f) => f === bare || f.endsWith(`/${bare}`));
}

describe('docs/architecture.md', () => {
  it('names only files that exist', () => {
    const named = [...DOC.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!).filter((t) => FILE.test(t));
    assert.ok(named.length > 50, `only ${named.length} file names found`);
    assert.deepEqual([...new Set(named.filter((name) => filesNamed(name).length === 0))], []);
  });

  it('names functions and classes where the file it pairs them with defines or uses them', () => {
    // `file.ts` `name`: a name right after a file, in the same sentence or table cell.
    const pairs = [...DOC.matchAll(/`([^`\s]+\.ts)` `([A-Za-z_][\w.]*)`/g)].map((m) => [m[1]!, m[2]!] as const);
    assert.ok(pairs.length > 15, `only ${pairs.length} pairs found`);
    const missing = pairs.filter(([file, name]) => {
      const last = name.split('.').at(-1)!;
      return !filesNamed(file).some((f) => readFileSync(join(ROOT, f), 'utf8').includes(last));
    });
    assert.deepEqual(missing.map(([file, name]) => `${file} ${name}`), []);
  });

  it('is what the README links to as the architecture', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.match(readme, /\]\(docs\/architecture\.md\)/);
    assert.doesNotMatch(readme, /shared\/DESIGN\.md/);
  });
});
