#!/usr/bin/env node
/**
 * `npm run bench [-- name… [--option=value…]]`: build dist/ when stale, then run
 * the named benchmarks one after another (default: every `bench/<name>.mjs`,
 * in name order). A benchmark is a plain ESM file that imports the compiled
 * service from dist/ and prints its figures; `--options` are passed to each.
 * Exit code: non-zero when any benchmark failed to run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
try {
  execFileSync(process.execPath, ['scripts/build-if-stale.mjs'], { stdio: 'inherit' });
} catch {
  process.stderr.write('bench: the build failed (see above); nothing was measured\n');
  process.exit(1);
}

const available = readdirSync('bench', { withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith('.mjs') && !e.name.startsWith('_'))
  .map((e) => e.name.slice(0, -'.mjs'.length))
  .sort();
const args = process.argv.slice(2);
const options = args.filter((a) => a.startsWith('--'));
const names = args.filter((a) => !a.startsWith('--'));
const selected = names.length > 0 ? names : available;
const unknown = selected.filter((n) => !existsSync(join('bench', `${n}.mjs`)));
if (unknown.length > 0) {
  process.stderr.write(`bench: no such benchmark: ${unknown.join(', ')} (available: ${available.join(', ') || 'none'})\n`);
  process.exit(2);
}
if (selected.length === 0) {
  process.stderr.write('bench: no benchmarks under bench/\n');
  process.exit(2);
}

const failed = [];
for (const name of selected) {
  process.stderr.write(`bench: ${name}\n`);
  const r = spawnSync(process.execPath, [join('bench', `${name}.mjs`), ...options], { stdio: 'inherit' });
  if (r.status !== 0) failed.push(`${name} (${r.signal ?? `exit ${r.status}`})`);
}
if (failed.length > 0) {
  process.stderr.write(`bench: failed: ${failed.join(', ')}\n`);
  process.exit(1);
}
