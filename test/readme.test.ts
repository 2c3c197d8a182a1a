// The README's JavaScript examples, run as a user would: each block is a
// program that asserts its own results and must exit 0 by itself.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
const run = promisify(execFile);

describe('README examples', () => {
  it('has examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
  });

  it.each(blocks.map((code, i) => [i + 1, code]))('example %i runs and exits by itself', async (_n, code) => {
    // Run from the package root so `require('muxnet/…')` resolves to this package.
    const { stderr } = await run(process.execPath, ['-e', code as string], { cwd: root, timeout: 10_000 });
    expect(stderr).toBe('');
  });
});
