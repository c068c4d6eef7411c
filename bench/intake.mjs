#!/usr/bin/env node
/**
 * bench/intake — how many signed single-event `POST /sync` requests per second
 * the real service accepts (202 = durably queued), with p50/p99 latency, at
 * several concurrencies on a fresh embedded PostgreSQL; and, in the same run,
 * the client's own ceiling (same generator against a trivial 202 server) and
 * the raw single-row INSERT rate of that database at the same concurrency.
 *
 * Run: `npm run bench -- intake` (builds dist/ first), or `node bench/intake.mjs`
 * after a build. Options (flag or env):
 *   --duration=S     BENCH_DURATION_S   measured seconds per phase      (10)
 *   --warmup=S       BENCH_WARMUP_S     uncounted seconds before each   (2)
 *   --concurrency=L  BENCH_CONCURRENCY  comma list                      (1,16,64)
 *   --phases=L       BENCH_PHASES       ceiling,intake,insert           (all)
 *   --max-requests=N BENCH_MAX_REQUESTS pre-signed requests per phase   (150000)
 *   --cpu-prof=DIR   BENCH_CPU_PROF     run the service with --cpu-prof into DIR
 *   --pg-stat-statements=1  BENCH_PG_STAT_STATEMENTS  load pg_stat_statements and record
 *                    the top statements of each intake window (adds a few % to PostgreSQL)
 *   --out=DIR        BENCH_OUT          where the JSON result goes      (bench/results)
 * The service's group commit (src/queue/enqueue.ts) is reported per phase as
 * statements and requests per statement, from its /metrics histogram
 * bb_intake_batch_requests.
 * Writes bench/results/intake-<timestamp>.json. Exit code 1 only when the run
 * itself fails or its accounting does not add up (202s ≠ committed jobs).
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../dist/db/embedded.js';
import { cpuSampler, machineBusyCores, parentOf } from './intake/cpu.mjs';
import { keepAliveAgent, poster, presign, s3EventBody } from './intake/http-client.mjs';
import { rateOf, runClosedLoop } from './intake/loop.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TARGET = { concurrency: 64, acceptedPerSecond: 2000, ratioOfRawInsert: 0.5 };

// ---------------------------------------------------------------- options
function option(name, envName, fallback) {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (flag) return flag.slice(name.length + 3);
  return process.env[envName] ?? fallback;
}
const opts = {
  durationMs: Number(option('duration', 'BENCH_DURATION_S', '10')) * 1000,
  warmupMs: Number(option('warmup', 'BENCH_WARMUP_S', '2')) * 1000,
  concurrencies: option('concurrency', 'BENCH_CONCURRENCY', '1,16,64').split(',').map(Number),
  phases: new Set(option('phases', 'BENCH_PHASES', 'ceiling,intake,insert').split(',')),
  maxRequests: Number(option('max-requests', 'BENCH_MAX_REQUESTS', '150000')),
  cpuProfDir: option('cpu-prof', 'BENCH_CPU_PROF', ''),
  pgStatStatements: ['1', 'true', 'yes'].includes(option('pg-stat-statements', 'BENCH_PG_STAT_STATEMENTS', '0')),
  outDir: resolve(ROOT, option('out', 'BENCH_OUT', 'bench/results')),
};
for (const [k, v] of Object.entries({ durationMs: opts.durationMs, warmupMs: opts.warmupMs, maxRequests: opts.maxRequests })) {
  if (!Number.isFinite(v) || v < 0) throw new Error(`bench/intake: bad ${k}`);
}
if (opts.concurrencies.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('bench/intake: bad --concurrency');

const log = (m) => process.stderr.write(`[intake] ${m}\n`);

// ---------------------------------------------------------------- cleanup
const cleanups = [];
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const fn = cleanups.pop();
      try {
        await fn();
      } catch (err) {
        log(`cleanup step failed: ${err.message}`);
      }
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  });
}

/** Start a child and give back a stop() that sends SIGTERM (SIGKILL after 15 s). */
function startChild(args, env, label) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = [];
  const lines = { warnOrWorse: 0, examples: [] };
  const keep = (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      // pino levels: 40 warn, 50 error, 60 fatal
      const m = /"level":(\d+)/.exec(line);
      if (m && Number(m[1]) >= 40) {
        lines.warnOrWorse++;
        if (lines.examples.length < 5) lines.examples.push(line.slice(0, 500));
      }
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  };
  cleanups.push(stop);
  return { child, tail, lines, exited, stop, label };
}

async function get(port, path) {
  return await new Promise((res) => {
    const r = http.get({ host: '127.0.0.1', port, path, agent: false }, (resp) => {
      resp.resume();
      resp.on('end', () => res(resp.statusCode));
    });
    r.on('error', () => res(0));
    r.setTimeout(2_000, () => r.destroy());
  });
}

/** The service's group-commit histogram (bb_intake_batch_requests) from /metrics, or undefined. */
async function batchCounters(port) {
  const text = await new Promise((res) => {
    const r = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (resp) => {
      const chunks = [];
      resp.on('data', (c) => chunks.push(c));
      resp.on('end', () => res(resp.statusCode === 200 ? Buffer.concat(chunks).toString('utf8') : ''));
    });
    r.on('error', () => res(''));
    r.setTimeout(5_000, () => r.destroy());
  });
  const value = (name, outcome) => {
    const m = new RegExp(`^${name}\\{outcome="${outcome}"\\} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  if (!text.includes('bb_intake_batch_requests')) return undefined;
  return {
    count: value('bb_intake_batch_requests_count', 'committed'),
    sum: value('bb_intake_batch_requests_sum', 'committed'),
    failed: value('bb_intake_batch_requests_count', 'failed'),
  };
}

async function waitReady(port, proc, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let exitedEarly = false;
  proc.exited.then(() => (exitedEarly = true));
  while (Date.now() < deadline) {
    if (exitedEarly) throw new Error(`${proc.label} exited during start-up:\n${proc.tail.join('\n')}`);
    if ((await get(port, '/readyz')) === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${proc.label} not ready after ${timeoutMs} ms:\n${proc.tail.join('\n')}`);
}

function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim().length > 0;
    // The tree is shared and changes: name the exact intake code that was measured.
    const sha = (f) => {
      try {
        return createHash('sha256').update(readFileSync(join(ROOT, f))).digest('hex').slice(0, 12);
      } catch {
        return null;
      }
    };
    const files = ['src/http/routes/intake.ts', 'src/queue/enqueue.ts', 'src/queue/intake-statement.ts', 'src/auth/sdk-hmac.ts', 'src/http/app.ts'];
    return { commit, dirty, sha256: Object.fromEntries(files.map((f) => [f, sha(f)])) };
  } catch {
    return null;
  }
}

/**
 * Semantics before speed: one request sent twice must give 202 then 200
 * `replayed` with the same requestId, and queue exactly one job.
 */
async function replayCheck(port, label, credentials, admin) {
  const key = `k/replay-${port}-0`; // presign's key for tag replay-<port>, index 0
  const [req] = presign(`http://127.0.0.1:${port}/sync`, 1, `replay-${port}`, credentials);
  const send = () =>
    new Promise((res) => {
      const r = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/sync', headers: req.headers, agent: false }, (resp) => {
        const chunks = [];
        resp.on('data', (c) => chunks.push(c));
        resp.on('end', () => {
          let body;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          res({ status: resp.statusCode, body });
        });
      });
      r.on('error', (err) => res({ status: 0, body: String(err) }));
      r.end(req.body);
    });
  const first = await send();
  const second = await send();
  if (first.status === 202) totals.set('202', (totals.get('202') ?? 0) + 1);
  const jobs = Number(
    (await admin.query(`SELECT count(*) AS n FROM pgboss.job WHERE name = 'bb-replicate' AND data->>'key' = $1`, [key])).rows[0].n,
  );
  const ok =
    first.status === 202 &&
    first.body?.accepted === 1 &&
    second.status === 200 &&
    second.body?.replayed === true &&
    second.body?.requestId === first.body?.requestId &&
    jobs === 1;
  if (!ok) log(`${label}: replay check failed: ${JSON.stringify({ first, second, jobs })}`);
  return { ok, first: first.status, second: second.status, replayed: second.body?.replayed === true, jobsForKey: jobs };
}

// ---------------------------------------------------------------- phases
const totals = new Map(); // every answer of every intake phase, warm-up included
const bodyChecks = { ok: 0, bad: 0, examples: [] };

async function topStatements(admin) {
  const { rows } = await admin.query(
    `SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 4) AS mean_ms,
            round(total_plan_time::numeric, 1) AS plan_ms, rows, regexp_replace(left(query, 160), '\\s+', ' ', 'g') AS query
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total_exec_time DESC LIMIT 10`,
  );
  return rows.map((r) => ({ ...r, calls: Number(r.calls), rows: Number(r.rows), total_ms: Number(r.total_ms), mean_ms: Number(r.mean_ms), plan_ms: Number(r.plan_ms) }));
}

async function httpPhase({ name, port, requests, cycle, concurrency, pids, admin }) {
  const agent = keepAliveAgent(concurrency);
  const cpu = cpuSampler(pids);
  let statsReset;
  let statsRead;
  const post = poster({
    agent,
    port,
    onSample:
      name !== 'ceiling'
        ? (status, text) => {
            let ok = false;
            try {
              const b = JSON.parse(text);
              ok = status === 202 && b.accepted === 1 && b.duplicates === 0;
            } catch {
              // not JSON
            }
            if (ok) bodyChecks.ok++;
            else {
              bodyChecks.bad++;
              if (bodyChecks.examples.length < 3) bodyChecks.examples.push({ status, text: text.slice(0, 300) });
            }
          }
        : undefined,
  });
  const result = await runClosedLoop({
    concurrency,
    warmupMs: opts.warmupMs,
    durationMs: opts.durationMs,
    maxOps: cycle ? opts.maxRequests : requests.length,
    op: async (i) => {
      const label = await post(requests[cycle ? i % requests.length : i]);
      if (name !== 'ceiling') totals.set(label, (totals.get(label) ?? 0) + 1);
      return label;
    },
    onWindowStart: () => {
      cpu.start();
      if (admin) statsReset = admin.query('SELECT pg_stat_statements_reset()');
    },
    onWindowEnd: () => {
      cpu.stop();
      if (admin) statsRead = statsReset.then(() => topStatements(admin));
    },
  });
  agent.destroy();
  const statements = statsRead ? await statsRead : undefined;
  const ok = result.outcomes['202'] ?? 0;
  return { ...result, acceptedPerSecond: Math.round(rateOf(result, '202')), cpu: cpu.report(ok), ...(statements ? { statements } : {}) };
}

async function insertPhase({ connectionString, concurrency, pids }) {
  const pool = new pg.Pool({ connectionString, max: concurrency, application_name: 'bench-insert' });
  pool.on('error', () => {});
  const end = () => pool.end();
  cleanups.push(end);
  // Open every connection before the clock starts.
  const clients = await Promise.all(Array.from({ length: concurrency }, () => pool.connect()));
  for (const c of clients) c.release();
  const cpu = cpuSampler(pids);
  const tag = `i${concurrency}`;
  const result = await runClosedLoop({
    concurrency,
    warmupMs: opts.warmupMs,
    durationMs: opts.durationMs,
    maxOps: opts.maxRequests,
    op: async (i) => {
      await pool.query('INSERT INTO bench_insert (payload) VALUES ($1)', [s3EventBody(`k/${tag}-${i}`).toString('utf8')]);
      return 'ok';
    },
    onWindowStart: () => cpu.start(),
    onWindowEnd: () => cpu.stop(),
  });
  cleanups.splice(cleanups.indexOf(end), 1);
  await end();
  const ok = result.outcomes.ok ?? 0;
  return { ...result, insertsPerSecond: Math.round(rateOf(result, 'ok')), cpu: cpu.report(ok) };
}

// ---------------------------------------------------------------- main
async function main() {
  const busyBefore = await machineBusyCores(1000);
  if (busyBefore !== null) {
    log(`machine busy before start: ${busyBefore} of ${cpus().length} cores${busyBefore > 0.3 ? ' — something else is running; figures will be noisy' : ''}`);
  }
  const started = new Date();
  const tmp = mkdtempSync(join(tmpdir(), 'bb-bench-intake-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  // As root, PostgreSQL runs as the `postgres` user, which must traverse into the cluster dir.
  chmodSync(tmp, 0o711);

  log(`embedded PostgreSQL in ${tmp}`);
  let db = await startEmbeddedPostgres({ dataDir: join(tmp, 'pg'), database: 'bench' });
  cleanups.push(() => db.stop());
  if (opts.pgStatStatements) {
    // A preloaded library needs a restart: set it, stop, start the same cluster again.
    const c = new pg.Client({ connectionString: db.connectionString });
    await c.connect();
    await c.query(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
    await c.query(`ALTER SYSTEM SET pg_stat_statements.track_utility = on`);
    await c.query(`ALTER SYSTEM SET pg_stat_statements.track_planning = on`);
    await c.end();
    await db.stop();
    db = await startEmbeddedPostgres({ dataDir: join(tmp, 'pg'), database: 'bench' });
  }
  const admin = new pg.Client({ connectionString: db.connectionString });
  await admin.connect();
  cleanups.push(() => admin.end());
  if (opts.pgStatStatements) await admin.query('CREATE EXTENSION pg_stat_statements');
  const serverVersion = (await admin.query('SHOW server_version')).rows[0].server_version;
  const settings = Object.fromEntries(
    (await admin.query(`SELECT name, setting FROM pg_settings WHERE name IN ('fsync','synchronous_commit','wal_level','shared_buffers','max_connections')`)).rows.map(
      (r) => [r.name, r.setting],
    ),
  );
  const postmaster = parentOf((await admin.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  await admin.query('CREATE TABLE bench_insert (id bigserial, payload jsonb, created_at timestamptz DEFAULT now())');

  // The service, intake only.
  const secret = randomBytes(32).toString('hex');
  const credentials = { accessKeyId: 'bench', secret };
  const configPath = join(tmp, 'bucketbridge.config.json');
  const endpoint = { region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true };
  writeFileSync(
    configPath,
    JSON.stringify({
      tasks: [
        {
          id: 'bench',
          source: { provider: 's3', bucket: 'bench-src', ...endpoint },
          destination: { provider: 's3', bucket: 'bench-dst', ...endpoint },
        },
      ],
      senders: [{ accessKeyId: 'bench', secretEnv: 'BENCH_SENDER_SK', tasks: ['bench'] }],
    }),
  );
  const serviceEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    DATABASE_URL: db.connectionString,
    LOG_LEVEL: 'warn',
    BB_WORKERS: 'false',
    BB_CONFIG: configPath,
    BB_DATA_DIR: join(tmp, 'data'),
    BENCH_SENDER_SK: secret,
  };
  /** The real service, `node dist/main.js`. */
  const launch = async (label) => {
    const port = await freePort();
    const args = [];
    if (opts.cpuProfDir) {
      mkdirSync(resolve(opts.cpuProfDir), { recursive: true });
      args.push('--cpu-prof', `--cpu-prof-dir=${resolve(opts.cpuProfDir)}`);
    }
    args.push('dist/main.js');
    const proc = startChild(args, { ...serviceEnv, PORT: String(port) }, label);
    await waitReady(port, proc);
    // Count only what is logged under load (start-up warnings, e.g. "admin API disabled", are expected).
    proc.lines.warnOrWorse = 0;
    proc.lines.examples.length = 0;
    log(`${label} ready on :${port} (pid ${proc.child.pid})`);
    return { label, port, proc, replay: await replayCheck(port, label, credentials, admin) };
  };
  const services = [await launch('service')];

  // The client-ceiling target.
  const echo = startChild(['bench/intake/echo-server.mjs'], process.env, 'echo server');
  const echoPort = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`echo server did not start:\n${echo.tail.join('\n')}`)), 10_000);
    const check = () => {
      const m = echo.tail.map((l) => /^listening (\d+)/.exec(l)).find(Boolean);
      if (m) {
        clearTimeout(t);
        res(Number(m[1]));
      } else setTimeout(check, 50);
    };
    check();
  });

  const pids = { echo: echo.child.pid, postgres: postmaster };
  const seconds = (opts.warmupMs + opts.durationMs) / 1000;
  const rows = [];
  for (const c of opts.concurrencies) {
    const row = { concurrency: c };
    if (opts.phases.has('ceiling')) {
      // The echo server does not care about uniqueness: cycle a modest pool.
      const pool = presign(`http://127.0.0.1:${echoPort}/sync`, Math.min(20_000, opts.maxRequests), `e${c}`, credentials);
      log(`c=${c} ceiling (trivial 202 server)…`);
      row.ceiling = await httpPhase({ name: 'ceiling', port: echoPort, requests: pool, cycle: true, concurrency: c, pids: { echo: pids.echo } });
      log(`c=${c} ceiling ${row.ceiling.acceptedPerSecond} req/s`);
    }
    for (const svc of opts.phases.has('intake') ? services : []) {
      // Every request unique; enough of them to outrun the client's own ceiling.
      const expected = Math.max(row.ceiling ? row.ceiling.acceptedPerSecond * 1.15 : opts.maxRequests / seconds, 500);
      const n = Math.min(opts.maxRequests, Math.ceil(expected * seconds));
      const t = performance.now();
      const tag = `s-${c}`;
      const requests = presign(`http://127.0.0.1:${svc.port}/sync`, n, tag, credentials);
      log(`c=${c} ${svc.label}: ${n} requests signed in ${Math.round(performance.now() - t)} ms; running…`);
      const batchesBefore = await batchCounters(svc.port);
      const r = await httpPhase({
        name: 'intake',
        port: svc.port,
        requests,
        cycle: false,
        concurrency: c,
        pids: { service: svc.proc.child.pid, postgres: pids.postgres },
        admin: opts.pgStatStatements ? admin : undefined,
      });
      const batchesAfter = await batchCounters(svc.port);
      if (batchesBefore && batchesAfter) {
        // Warm-up included: the histogram cannot be read at the window's edges without a scrape racing the load.
        const statements = batchesAfter.count - batchesBefore.count;
        const carried = batchesAfter.sum - batchesBefore.sum;
        r.batching = { statements, requests: carried, meanBatch: Math.round((carried / Math.max(1, statements)) * 10) / 10, failedStatements: batchesAfter.failed - batchesBefore.failed };
      }
      log(`c=${c} ${svc.label} ${r.acceptedPerSecond} accepted/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms ${JSON.stringify(r.outcomes)}${r.batching ? `, ${r.batching.meanBatch} requests/statement` : ''}`);
      row.intake = r;
    }
    if (opts.phases.has('insert')) {
      log(`c=${c} raw INSERT…`);
      row.insert = await insertPhase({ connectionString: db.connectionString, concurrency: c, pids: { postgres: pids.postgres } });
      log(`c=${c} raw INSERT ${row.insert.insertsPerSecond} tps`);
    }
    if (row.intake && row.insert) row.ratio = Math.round((row.intake.acceptedPerSecond / row.insert.insertsPerSecond) * 1000) / 1000;
    if (row.intake && row.ceiling) row.ofCeiling = Math.round((row.intake.acceptedPerSecond / row.ceiling.acceptedPerSecond) * 1000) / 1000;
    rows.push(row);
  }

  // Accounting: every 202 must be one committed job and one ledger row.
  const jobs = Number((await admin.query(`SELECT count(*) AS n FROM pgboss.job WHERE name = 'bb-replicate'`)).rows[0].n);
  const ledger = Number((await admin.query('SELECT count(*) AS n FROM bb_intake_ledger')).rows[0].n);
  const accepted202 = totals.get('202') ?? 0;
  // Stored answers must carry the counts that were committed.
  const consistentLedger = Number(
    (await admin.query(`SELECT count(*) AS n FROM bb_intake_ledger WHERE accepted = 1 AND duplicates = 0 AND (response->>'accepted')::int = 1 AND (response->>'duplicates')::int = 0`)).rows[0].n,
  );
  const replayChecks = Object.fromEntries(services.map((s) => [s.label, s.replay]));
  const verification = {
    answered202: accepted202,
    jobsCommitted: jobs,
    ledgerRows: ledger,
    ledgerRowsWithOneAcceptedAnswer: consistentLedger,
    replayChecks,
    sampledBodies: { ok: bodyChecks.ok, bad: bodyChecks.bad, examples: bodyChecks.examples },
    allAnswers: Object.fromEntries([...totals.entries()].sort()),
    serviceWarnOrWorseLogLines: services.reduce((n, s) => n + s.proc.lines.warnOrWorse, 0),
    serviceWarnOrWorseExamples: services.flatMap((s) => s.proc.lines.examples.map((l) => `${s.label}: ${l}`)).slice(0, 10),
    ok:
      jobs === accepted202 &&
      ledger === accepted202 &&
      consistentLedger === accepted202 &&
      bodyChecks.bad === 0 &&
      Object.values(replayChecks).every((r) => r.ok),
  };

  const at64 = rows.find((r) => r.concurrency === TARGET.concurrency);
  const target =
    at64?.intake && at64?.insert
      ? {
          ...TARGET,
          measuredAcceptedPerSecond: at64.intake.acceptedPerSecond,
          measuredRatio: at64.ratio,
          acceptedMet: at64.intake.acceptedPerSecond >= TARGET.acceptedPerSecond,
          ratioMet: at64.ratio >= TARGET.ratioOfRawInsert,
        }
      : null;
  if (target) target.met = target.acceptedMet && target.ratioMet;

  const result = {
    bench: 'intake',
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memGiB: Math.round(totalmem() / 2 ** 30),
      os: `${process.platform} ${release()}`,
      node: process.version,
      loadavg1mAtStart: loadavg()[0],
      busyCoresBeforeStart: busyBefore,
    },
    git: gitInfo(),
    postgres: { version: serverVersion, settings, embedded: true },
    options: { durationS: opts.durationMs / 1000, warmupS: opts.warmupMs / 1000, concurrencies: opts.concurrencies, phases: [...opts.phases], maxRequests: opts.maxRequests, pgStatStatements: opts.pgStatStatements, serviceCpuProfile: opts.cpuProfDir || null },
    method: {
      client: 'node:http, keep-alive Agent (maxSockets = concurrency), closed loop, requests pre-signed (SDK-HMAC-SHA256) before each phase, one unique key per request',
      ceiling: 'same client against a trivial node:http server (child process) that reads the body and answers 202',
      service: 'node dist/main.js, BB_WORKERS=false, LOG_LEVEL=warn, fresh embedded PostgreSQL',
      insert: "node pg Pool (max = concurrency), INSERT INTO bench_insert (payload) VALUES ($1), autocommit; bench_insert(id bigserial, payload jsonb, created_at timestamptz default now())",
      cpu: 'CPU ms per completed operation from /proc (client = this process; postgres = postmaster and all its children; other = rest of the machine)',
    },
    rows,
    target,
    verification,
  };
  mkdirSync(opts.outDir, { recursive: true });
  const outFile = join(opts.outDir, `intake-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
  printTable(result, outFile);
  return verification.ok;
}

function printTable(r, outFile) {
  const pad = (v, w) => String(v ?? '–').padStart(w);
  const out = [];
  out.push('');
  out.push(`bench/intake  ${r.startedAt}  node ${r.machine.node}  ${r.machine.cpus} × ${r.machine.cpuModel}  PostgreSQL ${r.postgres.version} (embedded)`);
  out.push(`${r.options.warmupS} s warm-up + ${r.options.durationS} s measured per phase; closed loop, node:http keep-alive`);
  out.push('');
  out.push(' conc | client ceiling req/s | accepted/s |  p50 ms |  p99 ms | non-202          | raw INSERT tps | ins p50 | ins p99 | accepted/INSERT');
  out.push('------+----------------------+------------+---------+---------+------------------+----------------+---------+---------+----------------');
  for (const row of r.rows) {
    const i = row.intake;
    const non202 = i ? Object.entries(i.outcomes).filter(([k]) => k !== '202').map(([k, v]) => `${k}×${v}`).join(' ') || '0' : undefined;
    out.push(
      [
        pad(row.concurrency, 5),
        pad(row.ceiling?.acceptedPerSecond, 20),
        pad(i?.acceptedPerSecond, 10),
        pad(i?.p50Ms?.toFixed(2), 7),
        pad(i?.p99Ms?.toFixed(2), 7),
        String(non202 ?? '–').padEnd(16),
        pad(row.insert?.insertsPerSecond, 14),
        pad(row.insert?.p50Ms?.toFixed(2), 7),
        pad(row.insert?.p99Ms?.toFixed(2), 7),
        pad(row.ratio?.toFixed(2), 14),
      ].join(' | '),
    );
  }
  const batched = r.rows.filter((row) => row.intake?.batching);
  if (batched.length) {
    out.push('');
    out.push(`group commit (requests per statement, warm-up included): ${batched.map((row) => `c=${row.concurrency} ${row.intake.batching.meanBatch} (${row.intake.batching.statements} statements${row.intake.batching.failedStatements ? `, ${row.intake.batching.failedStatements} FAILED` : ''})`).join(', ')}`);
  }
  out.push('');
  out.push('CPU per completed operation, ms (cores busy in brackets; "other" = rest of the machine, not counted in ms/op;');
  out.push('"CPU-bound ≈" = cores ÷ ms/op: the rate this workload alone could reach on this machine):');
  for (const row of r.rows) {
    const phases = [['ceiling', row.ceiling], ['intake', row.intake], ['INSERT', row.insert]];
    for (const [name, phase] of phases) {
      if (!phase?.cpu) continue;
      const parts = Object.entries(phase.cpu.msPerOp).map(([k, v]) => `${k} ${v?.toFixed(3)} (${phase.cpu.cores[k]})`);
      out.push(`  c=${String(row.concurrency).padEnd(3)} ${name.padEnd(26)} ${parts.join('  ')}  → ${phase.cpu.ownMsPerOp} ms/op, CPU-bound ≈ ${phase.cpu.cpuBoundPerSecond}/s  [machine ${phase.cpu.cores.machine ?? '?'}/${phase.cpu.cores.available ?? '?'} cores; steal ${phase.cpu.coresSteal ?? '?'}, irq ${phase.cpu.coresIrq ?? '?'}]`);
    }
  }
  for (const row of r.rows) {
    for (const [name, phase] of [['intake', row.intake]]) {
    if (!phase?.statements) continue;
    const ok = phase.outcomes['202'] ?? 0;
    out.push(`pg_stat_statements, ${name} window c=${row.concurrency} (exec ms per accepted request · mean ms · calls):`);
    for (const st of phase.statements.slice(0, 8)) {
      out.push(`  ${(st.total_ms / Math.max(1, ok)).toFixed(3).padStart(7)}  ${st.mean_ms.toFixed(3).padStart(7)}  ${String(st.calls).padStart(7)}  ${st.query.slice(0, 90)}`);
    }
    }
  }
  out.push('');
  if (r.target) {
    const t = r.target;
    out.push(
      `target at c=${t.concurrency}: ≥ ${t.acceptedPerSecond} accepted/s → ${t.measuredAcceptedPerSecond} (${t.acceptedMet ? 'met' : 'NOT met'}); ` +
        `≥ ${t.ratioOfRawInsert} × raw INSERT → ${t.measuredRatio} (${t.ratioMet ? 'met' : 'NOT met'})`,
    );
  }
  const v = r.verification;
  out.push(
    `accounting: ${v.answered202} answered 202, ${v.jobsCommitted} jobs committed, ${v.ledgerRows} ledger rows (${v.ledgerRowsWithOneAcceptedAnswer} storing accepted=1), ` +
      `replay checks ${Object.entries(v.replayChecks).map(([k, c]) => `${k} ${c.ok ? 'ok' : 'FAILED'}`).join(', ')}, sampled bodies ${v.sampledBodies.ok} ok / ${v.sampledBodies.bad} bad → ${v.ok ? 'consistent' : 'MISMATCH'}`,
  );
  if (v.serviceWarnOrWorseLogLines) {
    out.push(`services logged ${v.serviceWarnOrWorseLogLines} warn/error lines, e.g.:`);
    for (const l of v.serviceWarnOrWorseExamples.slice(0, 3)) out.push(`  ${l.slice(0, 300)}`);
  }
  out.push(`result: ${outFile}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

let ok = false;
try {
  ok = await main();
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
} finally {
  await cleanup();
}
process.exit(ok ? 0 : 1);
