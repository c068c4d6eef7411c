#!/usr/bin/env node
// `npm start` builds first when dist/ is missing or older than any source file,
// so a fresh clone runs with just `npm install && npm start`.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir) {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const built = existsSync('dist/main.js') ? statSync('dist/main.js').mtimeMs : 0;
const sources = Math.max(newest('src'), statSync('tsconfig.json').mtimeMs, statSync('package.json').mtimeMs);
if (built < sources) {
  process.stderr.write('bucketbridge: building (tsc)…\n');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
