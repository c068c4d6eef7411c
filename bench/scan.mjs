#!/usr/bin/env node
/**
 * bench/scan — how fast a reconciliation scan compares two listings, and that
 * its memory does not grow with the bucket.
 *
 * Phase "synthetic" (the scale run): the scan pipeline (dist/scan/pipeline.js:
 * read-ahead listings → merge-join → comparison → batched sink) over two
 * synthetic buckets of N keys per side (bench/scan/synthetic-store.mjs), each
 * N in a fresh process. Reports keys compared per second, peak RSS, and RSS /
 * heap at 10k, 100k, … keys into the run. A second pass adds a list latency
 * per page (as a real store has) to show listing and comparing overlapping.
 * The status lookup and the job sink are in memory here; phase "real" has both.
 *
 * Phase "real" (the smaller run): the full runner — real s3rver and OSS test
 * server, PostgreSQL status lookups and pg-boss enqueue — over a few thousand
 * keys (bench/scan/real.ts, run with tap's TypeScript loader).
 *
 * Run: `npm run bench -- scan` (builds dist/ first), or `node bench/scan.mjs`
 * after a build. Options (flag or env):
 *   --keys=L          BENCH_SCAN_KEYS          keys per side, comma list   (10000,100000,1000000)
 *   --latency-ms=N    BENCH_SCAN_LATENCY_MS    list latency for pass 2     (20)
 *   --phases=L        BENCH_SCAN_PHASES        synthetic,real              (synthetic,real)
 *   --real-keys=N     BENCH_SCAN_REAL_KEYS     keys per side, OSS → OSS    (20000)
 *   --real-s3-keys=N  BENCH_SCAN_REAL_S3_KEYS  keys per side, S3 → OSS     (2000)
 *   --out=DIR         BENCH_OUT                                           (bench/results)
 * Writes bench/results/scan-<timestamp>.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function option(name, envName, fallback) {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (flag) return flag.slice(name.length + 3);
  return process.env[envName] ?? fallback;
}

const MB = (n) => Math.round((n / 1024 / 1024) * 10) / 10;

// ------------------------------------------------------------------ child: one synthetic run
async function child(n, latencyMs) {
  const { runPipeline } = await import('../dist/scan/pipeline.js');
  const { resolveScope, scopeFromRequest } = await import('../dist/scan/scope.js');
  const { zeroCounters } = await import('../dist/scan/scan-repo.js');
  const { SyntheticStore, expected } = await import('./scan/synthetic-store.mjs');
  const source = new SyntheticStore('source', n, { listLatencyMs: latencyMs });
  const destination = new SyntheticStore('destination', n, { listLatencyMs: latencyMs, headLatencyMs: latencyMs ? 5 : 0 });
  const counters = zeroCounters();
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  const checkpoints = [10_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000].filter((c) => c <= n);
  const at = [];
  let queued = 0;
  const baseline = process.memoryUsage();
  const started = process.hrtime.bigint();
  await runPipeline({
    source,
    destination,
    scope: resolveScope(scopeFromRequest({}), undefined, undefined),
    compare: 'checksum',
    deletes: true,
    sink: async (d) => {
      queued += d.length;
      return { queued: d.length, alreadyQueued: 0 };
    },
    counters,
    shouldStop: () => undefined,
    onPosition: (_p, c) => {
      while (checkpoints.length > 0 && c.sourceKeys >= checkpoints[0]) {
        const m = process.memoryUsage();
        peak = Math.max(peak, m.rss);
        // Live heap: what survives a full collection (the child runs with --expose-gc).
        globalThis.gc?.();
        const live = process.memoryUsage().heapUsed;
        at.push({ keys: checkpoints.shift(), rssMB: MB(m.rss), heapUsedMB: MB(m.heapUsed), liveHeapMB: MB(live), seconds: Number(process.hrtime.bigint() - started) / 1e9 });
      }
    },
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  const want = expected(n);
  const ok =
    counters.missing === want.missing && counters.sizeDiffers === want.size && counters.contentDiffers === want.content && counters.extra === want.extra;
  const union = n + want.extra;
  process.stdout.write(
    `${JSON.stringify({
      keysPerSide: n,
      listLatencyMs: latencyMs,
      seconds,
      keysCompared: union,
      keysPerSecond: Math.round(union / seconds),
      listed: { source: counters.sourceKeys, destination: counters.destinationKeys },
      differences: { missing: counters.missing, size: counters.sizeDiffers, content: counters.contentDiffers, extra: counters.extra },
      expected: want,
      correct: ok,
      queued,
      heads: counters.heads,
      listRequests: counters.listRequests,
      baselineRssMB: MB(baseline.rss),
      peakRssMB: MB(peak),
      at,
    })}\n`,
  );
}

function runChild(args) {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.on('exit', (code) => (code === 0 ? resolvePromise(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`child ${args.join(' ')} exited ${code}`))));
  });
}

function runReal(keys, s3Keys) {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(
      process.execPath,
      ['--import=@tapjs/typescript/import', join(ROOT, 'bench/scan/real.ts'), `--keys=${keys}`, `--s3-keys=${s3Keys}`],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } },
    );
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.on('exit', (code) => (code === 0 ? resolvePromise(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`real run exited ${code}`))));
  });
}

async function main() {
  const childArg = process.argv.find((a) => a.startsWith('--child='));
  if (childArg) {
    await child(Number(childArg.slice(8)), Number(option('latency-ms', 'BENCH_SCAN_LATENCY_MS', '0')));
    return;
  }
  const keys = option('keys', 'BENCH_SCAN_KEYS', '10000,100000,1000000').split(',').map(Number);
  const latency = Number(option('latency-ms', 'BENCH_SCAN_LATENCY_MS', '20'));
  const phases = new Set(option('phases', 'BENCH_SCAN_PHASES', 'synthetic,real').split(','));
  const outDir = resolve(ROOT, option('out', 'BENCH_OUT', 'bench/results'));
  const result = {
    bench: 'scan',
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, loadavg: loadavg() },
    synthetic: [],
    real: undefined,
  };
  if (phases.has('synthetic')) {
    console.log('synthetic listings, pipeline only (in-memory status lookup and sink), one fresh process per run (its RSS after imports: see baselineRssMB)');
    console.log('keys/side  latency  seconds  keys/s     peak RSS  RSS at 10k / 100k / 1M keys   live heap at 10k / 100k / 1M   correct');
    const runs = [...keys.map((n) => [n, 0]), ...(latency > 0 ? [[Math.min(100_000, Math.max(...keys)), latency]] : [])];
    for (const [n, l] of runs) {
      const r = await runChild([`--child=${n}`, `--latency-ms=${l}`]);
      result.synthetic.push(r);
      const pick = (k, f) => r.at.find((a) => a.keys === k)?.[f] ?? '-';
      console.log(
        `${String(n).padStart(9)}  ${String(l).padStart(5)}ms  ${r.seconds.toFixed(2).padStart(7)}  ${String(r.keysPerSecond).padStart(8)}  ${String(r.peakRssMB).padStart(7)} MB  ` +
          `${[10_000, 100_000, 1_000_000].map((k) => pick(k, 'rssMB')).join(' / ').padEnd(27)}  ${[10_000, 100_000, 1_000_000].map((k) => pick(k, 'liveHeapMB')).join(' / ').padEnd(29)}  ${r.correct}`,
      );
    }
    const withLatency = result.synthetic.find((r) => r.listLatencyMs > 0);
    if (withLatency) {
      const bound = Math.round(1000 / (withLatency.listLatencyMs / 1000));
      console.log(`with ${withLatency.listLatencyMs} ms per list request: ${withLatency.keysPerSecond} keys/s; one side's serial listing alone allows at most ${bound} keys/s`);
    }
  }
  if (phases.has('real')) {
    const realKeys = Number(option('real-keys', 'BENCH_SCAN_REAL_KEYS', '20000'));
    const realS3Keys = Number(option('real-s3-keys', 'BENCH_SCAN_REAL_S3_KEYS', '2000'));
    console.log(`\nreal servers (s3rver, OSS test server) and PostgreSQL, full runner: setting up ${realKeys} + ${realS3Keys} keys per side…`);
    result.real = await runReal(realKeys, realS3Keys);
    console.log('task          keys/side  seconds  keys/s   differences  jobs queued  heads  peak RSS');
    for (const r of result.real.runs) {
      console.log(
        `${r.task.padEnd(12)}  ${String(r.keysPerSide).padStart(9)}  ${r.seconds.toFixed(2).padStart(7)}  ${String(r.keysPerSecond).padStart(6)}  ${String(r.differences).padStart(11)}  ${String(r.jobsQueued).padStart(11)}  ${String(r.heads).padStart(5)}  ${r.peakRssMB} MB`,
      );
    }
  }
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `scan-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
  const wrong = result.synthetic.filter((r) => !r.correct);
  if (wrong.length > 0 || (result.real && result.real.runs.some((r) => !r.correct))) {
    console.error('bench/scan: a run found other differences than the fixture has');
    process.exit(1);
  }
}

await main();
