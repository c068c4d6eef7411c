#!/usr/bin/env node
/**
 * `npm test`: build, type-check the tests, start ONE PostgreSQL for the whole
 * run (embedded, unless DATABASE_URL names a server whose user may CREATE
 * DATABASE), run tap, and print `tests: N passed, N failed` as the last line.
 * Each test file creates its own database in that server, so files run in
 * parallel without sharing state.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const tsc = ['node_modules/typescript/bin/tsc'];
execFileSync(process.execPath, [...tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' });
execFileSync(process.execPath, [...tsc, '-p', 'tsconfig.test.json'], { stdio: 'inherit' });

const env = { ...process.env };
let embedded;
let dataDir;
if (process.env.DATABASE_URL) {
  env.BB_TEST_ADMIN_URL = process.env.DATABASE_URL;
} else {
  const { startEmbeddedPostgres } = await import('../dist/db/embedded.js');
  dataDir = mkdtempSync(join(tmpdir(), 'bb-test-pg-'));
  embedded = await startEmbeddedPostgres({ dataDir, database: 'postgres' });
  env.BB_TEST_ADMIN_URL = embedded.connectionString;
}
// Test processes must not inherit a DATABASE_URL meant for the admin connection.
delete env.DATABASE_URL;

const args = process.argv.slice(2);
const tap = spawn(process.execPath, ['node_modules/tap/dist/esm/run.mjs', '--reporter=tap', ...args], {
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let passed = 0;
let failed = 0;
let buffer = '';
tap.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  buffer += chunk.toString();
  let nl;
  while ((nl = buffer.indexOf('\n')) !== -1) {
    const line = buffer.slice(0, nl);
    buffer = buffer.slice(nl + 1);
    // Leaf assertions only: subtest and file summaries carry "# time=".
    const m = /^\s*(not ok|ok) \d+/.exec(line);
    if (!m || /# time=/.test(line)) continue;
    if (m[1] === 'ok') passed++;
    else failed++;
  }
});
const code = await new Promise((resolve) => tap.on('close', (c) => resolve(c ?? 1)));
if (embedded) await embedded.stop().catch(() => {});
if (dataDir) rmSync(dataDir, { recursive: true, force: true });
// A crashed file can fail without a failing assertion: never report green then.
if (code !== 0 && failed === 0) failed = 1;
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(code === 0 ? 0 : 1);
