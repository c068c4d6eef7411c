#!/usr/bin/env node
/**
 * bench/chaos — the long versions of the fault tests (test/chaos-*.test.ts),
 * against the real service built in dist/ (`node dist/main.js`, started and
 * killed as a child process), s3rver, the OSS test server and PostgreSQL:
 *
 *   crash    200 objects (20 multipart), SIGKILL twice while copies are in flight
 *   db       a dedicated embedded PostgreSQL really stopped for 60 s and started again
 *            during a stream of signed notifications, copies finishing meanwhile
 *   network  200 objects through ~20% injected faults on both sides (500, 503 SlowDown,
 *            resets, answers cut after their first byte, stalls up to 4 s, flipped bytes),
 *            then objects deleted mid-copy
 *   two      two processes on one database, 300 objects notified to both, one killed
 *
 * Run: `npm run bench -- chaos [--scenarios=crash,db] [--crash-objects=N] …`, or
 * `node bench/chaos.mjs` (builds dist/ first when stale). The scenarios and the
 * test servers are TypeScript (bench/chaos/run.ts, test/support/), run through
 * tap's TypeScript loader as bench/scan does. Options (flag or env):
 *   --scenarios=L          BENCH_CHAOS_SCENARIOS   (crash,db,network,two)
 *   --crash-objects=N      (200)   --crash-kills=N (2)
 *   --db-objects=N         (150)   --db-outage-seconds=N (60)
 *   --net-objects=N        (200)   --net-rate=R (0.2)
 *   --two-objects=N        (300)
 *   --out=DIR              BENCH_OUT               (bench/results)
 * Writes bench/results/chaos-<timestamp>.json and prints a summary; exits 1 when
 * a scenario failed or lost anything.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(ROOT);

function option(name, envName, fallback) {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (flag) return flag.slice(name.length + 3);
  return (envName && process.env[envName]) ?? fallback;
}

execFileSync(process.execPath, ['scripts/build-if-stale.mjs'], { stdio: 'inherit' });

const scenarios = option('scenarios', 'BENCH_CHAOS_SCENARIOS', 'crash,db,network,two').split(',').filter(Boolean);
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('--') && !a.startsWith('--scenarios=') && !a.startsWith('--out='));
const outDir = resolve(ROOT, option('out', 'BENCH_OUT', 'bench/results'));
const at = new Date().toISOString();
const machine = { cpus: cpus().length, model: cpus()[0]?.model, memoryGB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, loadavgAtStart: loadavg() };

const started = Date.now();
const child = spawn(process.execPath, ['--import=@tapjs/typescript/import', join(ROOT, 'bench/chaos/run.ts'), ...scenarios, ...passThrough], {
  cwd: ROOT,
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: join(ROOT, 'tsconfig.test.json') },
});
let out = '';
child.stdout.on('data', (c) => (out += c));
const code = await new Promise((r) => child.on('exit', (c) => r(c ?? 1)));
const last = out.trim().split('\n').pop() ?? '{}';
let results;
try {
  results = JSON.parse(last);
} catch {
  console.error(`bench/chaos: no results (exit ${code})\n${out.slice(-2000)}`);
  process.exit(1);
}

const result = { bench: 'chaos', at, machine: { ...machine, loadavgAtEnd: loadavg() }, seconds: (Date.now() - started) / 1000, results };
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `chaos-${at.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

const lines = ['', '| scenario | objects | faults | retries | losses | seconds |', '|---|---|---|---|---|---|'];
const r = results;
if (r.crash && !r.crash.error) {
  lines.push(`| crash | ${r.crash.objects} (${r.crash.multipart} multipart) | ${r.crash.kills.length} × SIGKILL with ${r.crash.kills.map((k) => k.active).join(' / ')} copies running, ${r.crash.kills.map((k) => k.openUploads).join(' / ')} uploads open | ${r.crash.jobRetries} | ${r.crash.losses} (open uploads after: ${r.crash.openUploadsAfter}) | ${r.crash.seconds.toFixed(0)} |`);
}
if (r.db && !r.db.error) {
  lines.push(`| db | ${r.db.objects} | PostgreSQL down ${r.db.outageSeconds.toFixed(1)} s; ${r.db.answered503} answered 503, ${r.db.otherAnswers.length} other errors | ${r.db.jobRetries} | ${r.db.losses} (accepted not replicated: ${r.db.acceptedNotReplicated}) | ${r.db.seconds.toFixed(0)} |`);
}
if (r.network && !r.network.error) {
  lines.push(`| network | ${r.network.objects} (${r.network.multipart} multipart) | ${r.network.faultsInjected} of ${r.network.requests} requests | ${r.network.jobRetries} (max ${r.network.maxRetriesPerJob}/${r.network.retryLimit}) | ${r.network.losses} (completed while wrong: ${r.network.completedWhileWrong}) | ${r.network.seconds.toFixed(0)} |`);
}
if (r.two && !r.two.error) {
  lines.push(`| two | ${r.two.objects} × 2 notifications | A killed holding ${r.two.heldByAAtKill}; doubles ${r.two.keysWithTwoLeasesOrRunningJobs}, overlapping writes ${r.two.keysWrittenByTwoCopiesAtOnce} | – | ${r.two.losses} | ${r.two.seconds.toFixed(0)} |`);
}
for (const [name, v] of Object.entries(r)) if (v && v.error) lines.push(`| ${name} | FAILED: ${String(v.error).split('\n')[0]} | | | | |`);
console.log(lines.join('\n'));
console.log(`\nwrote ${file}`);
const lost = Object.values(r).some((v) => v && (v.error || v.losses > 0));
process.exit(code !== 0 || lost ? 1 : 0);
