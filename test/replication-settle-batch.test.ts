/**
 * Group commit of successful replication jobs (src/queue/settle-batcher.ts)
 * and the dispatcher's larger fetches (src/queue/replication-worker.ts).
 *
 * First against the batcher alone, on a real database with jobs fetched and
 * leased by the worker's own fetch statement: what a batch writes (compared
 * row by row with the single-job statement it replaces), same-key outcomes,
 * a lost lease, a statement killed mid-way, the database cut under a waiting
 * batch, a row that makes its batch fail (with the failure metrics it
 * reports), and the statement's plans. A
 * trigger on pgboss.job records every committed transition to 'completed',
 * so "completed exactly once" is observed, not inferred.
 *
 * Then through the real workers (OSS test servers): many concurrent successes
 * are settled in fewer statements than jobs (counted at the pool: every
 * statement the worker sends is seen, and on GET /metrics: the jobs per
 * statement histogram), fetches take several jobs each, and
 * shutdown waits for outcomes being written while a handed-back job stays
 * uncompleted. Nothing here asserts a duration.
 */
import t from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { QUEUES } from '../src/queue/boss.js';
import { enqueueReplications } from '../src/queue/enqueue.js';
import { FETCH_SQL, readyTarget } from '../src/queue/replication-worker.js';
import { SETTLE_SQL, SETTLE_STATEMENT_NAME, SettleBatcher, type SettleBatcherOptions, type SettleResult, type SuccessOutcome } from '../src/queue/settle-batcher.js';
import type { StatusUpdate } from '../src/db/object-status-repo.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication, type ReplicationHarness } from './support/replication.js';
import { startStack, testTask, type Stack } from './support/stack.js';
import { startTcpProxy, viaProxy } from './support/tcp-proxy.js';
import { scrapeMetrics } from './support/metrics.js';

const TASK = 'batch';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const SETTLE_SERIES = [
  'bb_settle_batch_jobs_count{outcome="committed"}',
  'bb_settle_batch_jobs_sum{outcome="committed"}',
  'bb_settle_batch_jobs_count{outcome="failed"}',
  'bb_settle_batch_jobs_sum{outcome="failed"}',
  'bb_settle_batch_failures_total{action="retry"}',
  'bb_settle_batch_failures_total{action="split"}',
  'bb_settle_batch_failures_total{action="give_up"}',
] as const;
type SettleSeries = (typeof SETTLE_SERIES)[number];

/** The settle series on GET /metrics now, as deltas from `since` (absolute without). */
async function settleMetrics(since?: Record<SettleSeries, number>): Promise<Record<SettleSeries, number>> {
  const value = await scrapeMetrics(stack.url);
  return Object.fromEntries(SETTLE_SERIES.map((name) => [name, value(name) - (since?.[name] ?? 0)])) as Record<SettleSeries, number>;
}

// ------------------------------------------------------------------ the batcher alone

let stack: Stack;
let direct: pg.Pool;

t.before(async () => {
  stack = await startStack({ tasks: [testTask(TASK), testTask('ref')], senders: [] });
  direct = new pg.Pool({ connectionString: stack.db.url, max: 6 });
  direct.on('error', () => {}); // a connection whose backend a test terminates
  // Every committed transition of a job to 'completed' leaves a row here (a rolled-back statement's rows go with it).
  await direct.query(`
    CREATE TABLE test_completions (job_id uuid NOT NULL);
    CREATE FUNCTION test_record_completion() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO test_completions (job_id) VALUES (NEW.id); RETURN NULL; END $$;
    CREATE TRIGGER test_record_completion AFTER UPDATE ON pgboss.job
      FOR EACH ROW WHEN (NEW.state = 'completed' AND OLD.state IS DISTINCT FROM 'completed')
      EXECUTE FUNCTION test_record_completion();`);
});
t.teardown(async () => {
  await direct?.end();
  await stack?.close();
});

interface Leased {
  id: string;
  key: string;
}

/** Queue `n` keys and fetch + lease them as a worker would (the worker's own statement). */
async function leaseJobs(prefix: string, n: number, workerId: string): Promise<Leased[]> {
  const keys = Array.from({ length: n }, (_, i) => `${prefix}/${String(i).padStart(3, '0')}`);
  await enqueueReplications(stack.boss, stack.pool, keys.map((key) => ({ taskId: TASK, key, trigger: 'event', kind: 'created' })));
  await direct.query(`INSERT INTO bb_workers (id, host, pid) VALUES ($1, 'settle-test', 1) ON CONFLICT (id) DO NOTHING`, [workerId]);
  const { rows } = await direct.query<{ id: string; data: { key: string } }>({ text: FETCH_SQL, values: [workerId, [], n] });
  if (rows.length !== n || rows.some((r) => !r.data.key.startsWith(`${prefix}/`))) throw new Error(`leased ${rows.length} jobs, expected ${n} of ${prefix}`);
  return rows.map((r) => ({ id: r.id, key: r.data.key })).sort((a, b) => a.key.localeCompare(b.key));
}

function success(job: Leased, status?: Partial<StatusUpdate>): SuccessOutcome {
  return {
    jobId: job.id,
    taskId: TASK,
    key: job.key,
    output: { status: status?.status ?? 'completed', key: job.key },
    ...(status ? { status: { taskId: TASK, key: job.key, status: 'completed', ...status } } : {}),
  };
}

function batcher(workerId: string, options: Partial<SettleBatcherOptions> = {}, pool: pg.Pool = direct): SettleBatcher {
  return new SettleBatcher(pool, { queue: QUEUES.replicate, workerId, lingerMs: 0, ...options });
}

async function jobRows(ids: string[]): Promise<Map<string, { state: string; output: unknown; completedOn: Date | null; completions: number; leases: number }>> {
  const { rows } = await direct.query<{ id: string; state: string; output: unknown; completedOn: Date | null; completions: number; leases: number }>(
    `SELECT j.id, j.state, j.output, j.completed_on AS "completedOn",
            (SELECT count(*)::int FROM test_completions c WHERE c.job_id = j.id) AS completions,
            (SELECT count(*)::int FROM bb_job_leases l WHERE l.job_id = j.id) AS leases
       FROM pgboss.job j WHERE j.name = $1 AND j.id = ANY($2::uuid[])`,
    [QUEUES.replicate, ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

async function statusRow(taskId: string, key: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await direct.query(
    `SELECT status, attempts, bytes::float8 AS bytes, source_etag, source_crc64, destination_etag, duration_ms, last_error_code, last_error_message,
            completed_at, updated_at FROM bb_object_status WHERE task_id = $1 AND key = $2`,
    [taskId, key],
  );
  return rows[0] as Record<string, unknown> | undefined;
}

/**
 * The upsert the single-job success statement ran before this change (git
 * show 4ed07c6:src/db/object-status-repo.ts, statusUpsert), kept verbatim as
 * the reference a batch must reproduce row by row.
 */
const REFERENCE_UPSERT = `INSERT INTO bb_object_status AS s (task_id, key, status, attempts, bytes, source_etag, source_crc64, destination_etag,
         duration_ms, last_error_code, last_error_message, completed_at)
       VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11::boolean THEN now() END)
       ON CONFLICT (task_id, key) DO UPDATE SET
         status = EXCLUDED.status,
         attempts = CASE WHEN s.status = 'pending' THEN s.attempts + 1 ELSE 1 END,
         bytes = COALESCE(EXCLUDED.bytes, s.bytes),
         source_etag = COALESCE(EXCLUDED.source_etag, s.source_etag),
         source_crc64 = COALESCE(EXCLUDED.source_crc64, s.source_crc64),
         destination_etag = COALESCE(EXCLUDED.destination_etag, s.destination_etag),
         duration_ms = EXCLUDED.duration_ms,
         last_error_code = CASE WHEN $11::boolean THEN s.last_error_code ELSE EXCLUDED.last_error_code END,
         last_error_message = CASE WHEN $11::boolean THEN s.last_error_message ELSE EXCLUDED.last_error_message END,
         updated_at = now(),
         completed_at = CASE WHEN $11::boolean THEN now() ELSE s.completed_at END`;
const REFERENCE_SUCCESS = new Set(['completed', 'in_sync', 'deleted', 'source_missing']);

t.test('a batch of successes is one statement that writes every row as the single-job statement did', async (t) => {
  const worker = randomUUID();
  const jobs = await leaseJobs('sem', 14, worker);
  // Prior rows and outcomes covering the upsert's branches; each is also applied to task 'ref' with the reference statement.
  const cases: { prior?: Record<string, unknown>; update?: Partial<StatusUpdate> }[] = [
    { update: { status: 'completed', bytes: 1024, sourceEtag: 'S1', destinationEtag: 'D1', durationMs: 12 } },
    { prior: { status: 'pending', attempts: 2, last_error_code: 'SlowDown', last_error_message: 'slow' }, update: { status: 'completed', bytes: 10, sourceCrc64: '123', durationMs: 3 } },
    { prior: { status: 'completed', attempts: 1, bytes: 5, source_etag: 'OLD', destination_etag: 'OLDD' }, update: { status: 'in_sync', durationMs: 1 } },
    { prior: { status: 'failed', attempts: 4, last_error_code: 'AccessDenied', last_error_message: 'no' }, update: { status: 'source_missing', durationMs: 2 } },
    { prior: { status: 'pending', attempts: 1, last_error_code: 'X', last_error_message: 'x' }, update: { status: 'archived', durationMs: 4 } },
    { prior: { status: 'completed', attempts: 1, bytes: 7 }, update: { status: 'deleted', durationMs: 5 } },
    {}, // no status row: a completion only (task gone, task paused)
  ];
  const outcomes: SuccessOutcome[] = [];
  for (const [i, job] of jobs.entries()) {
    const c = cases[i % cases.length]!;
    for (const taskId of [TASK, 'ref']) {
      if (c.prior) {
        const p = c.prior;
        await direct.query(
          `INSERT INTO bb_object_status (task_id, key, status, attempts, bytes, source_etag, destination_etag, last_error_code, last_error_message, completed_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $3 = 'pending' THEN NULL ELSE now() - interval '1 hour' END, now() - interval '1 hour')`,
          [taskId, job.key, p.status, p.attempts, p.bytes ?? null, p.source_etag ?? null, p.destination_etag ?? null, p.last_error_code ?? null, p.last_error_message ?? null],
        );
      }
    }
    outcomes.push(success(job, c.update));
    if (c.update) {
      const u = { taskId: 'ref', key: job.key, status: 'completed' as const, ...c.update };
      await direct.query(REFERENCE_UPSERT, [
        u.taskId, u.key, u.status, u.bytes ?? null, u.sourceEtag ?? null, u.sourceCrc64 ?? null, u.destinationEtag ?? null,
        u.durationMs ?? null, u.errorCode ?? null, u.errorMessage ?? null, REFERENCE_SUCCESS.has(u.status),
      ]);
    }
  }
  const b = batcher(worker, { maxInFlight: 1 });
  const results = await Promise.all(outcomes.map((o) => b.submit(o)));
  t.same(results, outcomes.map(() => 'completed'), 'every job completed');
  const stats = b.stats();
  t.equal(stats.statements, 1, `${outcomes.length} outcomes submitted together: one statement`);
  t.equal(stats.outcomes, outcomes.length);
  for (const [i, job] of jobs.entries()) {
    const c = cases[i % cases.length]!;
    const got = await statusRow(TASK, job.key);
    const ref = await statusRow('ref', job.key);
    if (!c.update) {
      t.equal(got, undefined, `${job.key}: no status row`);
      continue;
    }
    const strip = (r: Record<string, unknown> | undefined) => {
      const { completed_at, updated_at, ...rest } = r ?? {};
      const recent = (d: unknown) => d instanceof Date && Date.now() - d.getTime() < 10 * 60_000;
      return { ...rest, completedRecently: recent(completed_at), completedAtSet: completed_at !== null, updatedRecently: recent(updated_at) };
    };
    t.same(strip(got), strip(ref), `${job.key} (${c.prior?.status ?? 'new'} → ${c.update.status}): same row as the single-job statement`);
  }
  const rows = await jobRows(jobs.map((j) => j.id));
  for (const [i, job] of jobs.entries()) {
    const r = rows.get(job.id)!;
    t.equal(r.state, 'completed', `${job.key}: job completed`);
    t.same(r.output, outcomes[i]!.output, `${job.key}: its own output`);
    t.equal(r.completions, 1, `${job.key}: completed once`);
    t.equal(r.leases, 0, `${job.key}: lease dropped`);
  }
});

t.test('two outcomes of one key never share a statement, nor run in two at once; the later one is written last', async (t) => {
  const worker = randomUUID();
  const [a, b2, c] = await leaseJobs('same', 3, worker);
  // A spy pool: which keys each statement carried, and which statements overlapped.
  const running = new Set<string[]>();
  const overlaps: string[] = [];
  const spy = {
    query: async (config: pg.QueryConfig) => {
      const keys = (config.values![5] as string[]).slice(); // $6: the keys
      for (const other of running) for (const k of keys) if (other.includes(k)) overlaps.push(k);
      running.add(keys);
      try {
        return await direct.query(config);
      } finally {
        running.delete(keys);
      }
    },
  } as unknown as pg.Pool;
  const batches: string[][] = [];
  const settler = batcher(worker, { maxInFlight: 2, onStatement: (batch, ok) => ok && batches.push(batch.map((o) => o.key)) }, spy);
  // Outcomes for a's key from jobs that are not ours (a stale duplicate, as after a lease was swept and
  // the job ran elsewhere): written in arrival order, each in a later statement than the one before.
  const stale1 = { ...success(a!, { bytes: 2 }), jobId: randomUUID() };
  const stale2 = { ...success(a!, { bytes: 3 }), jobId: randomUUID() };
  const results = await Promise.all([
    settler.submit(success(a!, { bytes: 1 })),
    settler.submit(stale1),
    settler.submit(success(b2!, { bytes: 1 })),
    settler.submit(stale2),
    settler.submit(success(c!, { bytes: 1 })),
  ]);
  t.same(results, ['completed', 'lease-lost', 'completed', 'lease-lost', 'completed']);
  t.ok(batches.length >= 3, `${batches.length} statements for 3 outcomes of one key`);
  for (const batch of batches) t.equal(new Set(batch).size, batch.length, `statement [${batch.join(', ')}]: each key once`);
  t.same(overlaps, [], 'no two statements with a common key ran at once');
  t.ok(settler.stats().deferred >= 2, 'the later outcomes of the key were deferred');
  t.equal((await statusRow(TASK, a!.key))?.bytes, 3, 'the last outcome of the key is the one recorded');
  const rows = await jobRows([a!.id, b2!.id, c!.id]);
  for (const r of rows.values()) t.equal(r.completions, 1, 'each real job completed once');
});

t.test('a job whose lease was lost is left alone; the others in its statement complete', async (t) => {
  const worker = randomUUID();
  const jobs = await leaseJobs('lost', 5, worker);
  const lost = jobs[2]!;
  // As the sweep does when it takes this process for dead.
  await direct.query('DELETE FROM bb_job_leases WHERE job_id = $1', [lost.id]);
  const settler = batcher(worker);
  const results = await Promise.all(jobs.map((j) => settler.submit(success(j, { bytes: 1 }))));
  t.same(results, jobs.map((j) => (j === lost ? 'lease-lost' : 'completed')));
  t.equal(settler.stats().statements, 1, 'one statement');
  t.equal(settler.stats().leaseLost, 1);
  const rows = await jobRows(jobs.map((j) => j.id));
  for (const j of jobs) {
    const r = rows.get(j.id)!;
    if (j === lost) {
      t.equal(r.state, 'active', 'the lost job is not completed by us');
      t.equal(r.completions, 0);
    } else {
      t.equal(r.state, 'completed', `${j.key} completed`);
      t.equal(r.completions, 1);
      t.equal(r.leases, 0);
    }
  }
  // As the single-job statement did: the status row records what the copy did, lease or not.
  t.equal((await statusRow(TASK, lost.key))?.status, 'completed');
});

t.test('a statement killed mid-way is run again whole: nothing lost, every job completed once, no row written twice', async (t) => {
  const worker = randomUUID();
  const jobs = await leaseJobs('kill', 10, worker);
  // Each key had one failed attempt: a second application of an outcome would show as attempts 3.
  await direct.query(`INSERT INTO bb_object_status (task_id, key, status, attempts) SELECT $1, k, 'pending', 1 FROM unnest($2::text[]) k`, [
    TASK,
    jobs.map((j) => j.key),
  ]);
  // Hold one job's lease row locked: the statement blocks on it, mid-way, with its other rows already written.
  const blocker = await direct.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query('SELECT 1 FROM bb_job_leases WHERE job_id = $1 FOR UPDATE', [jobs[7]!.id]);
    const settler = batcher(worker);
    const all = Promise.all(jobs.map((j) => settler.submit(success(j, { bytes: 64 }))));
    let pid = 0;
    await until('the settle statement waiting on the lock', async () => {
      // pg_stat_activity keeps the first 1 KiB of a statement: match its opening.
      const { rows } = await direct.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND position('WITH input AS (' IN query) > 0 AND pid <> pg_backend_pid()`,
      );
      pid = rows[0]?.pid ?? 0;
      return pid !== 0;
    });
    await direct.query('SELECT pg_terminate_backend($1)', [pid]);
    await until('the failure to be seen', () => settler.stats().failedStatements >= 1);
    await blocker.query('ROLLBACK');
    const results = await all;
    t.same(results, jobs.map(() => 'completed'), 'every outcome committed on the retry');
    const stats = settler.stats();
    t.equal(stats.failedStatements, 1, 'one statement failed');
    t.equal(stats.retries, 1, 'and ran again');
    t.equal(stats.statements, 1, 'one statement committed, holding all outcomes');
  } finally {
    await blocker.query('ROLLBACK').catch(() => undefined);
    blocker.release();
  }
  const rows = await jobRows(jobs.map((j) => j.id));
  for (const j of jobs) {
    const r = rows.get(j.id)!;
    t.equal(r.state, 'completed', `${j.key} completed`);
    t.equal(r.completions, 1, `${j.key} completed exactly once`);
    t.equal(r.leases, 0);
    const s = await statusRow(TASK, j.key);
    t.match(s, { status: 'completed', attempts: 2, bytes: 64 }, `${j.key}: the killed statement wrote nothing`);
  }
});

t.test('the database cut under a waiting batch: retried until it is back; after stop() a failure is final', async (t) => {
  const port = Number(new URL(stack.db.url).port);
  const proxy = await startTcpProxy(port);
  const viaCut = new pg.Pool({ connectionString: viaProxy(stack.db.url, proxy), max: 2, connectionTimeoutMillis: 2_000 });
  viaCut.on('error', () => {});
  try {
    const worker = randomUUID();
    const jobs = await leaseJobs('cut', 12, worker);
    const settler = batcher(worker, {}, viaCut);
    // Warm a connection (and the prepared statement on it), then cut: the open connection dies too.
    t.equal(await settler.submit(success(jobs[0]!, { bytes: 1 })), 'completed');
    await proxy.cut();
    const all = Promise.all(jobs.slice(1).map((j) => settler.submit(success(j, { bytes: 1 }))));
    await until('two failed attempts', () => settler.stats().failedStatements >= 2);
    t.equal((await jobRows([jobs[1]!.id])).get(jobs[1]!.id)?.state, 'active', 'nothing completed while the database is away');
    await proxy.restore();
    const results = await all;
    t.same(results, jobs.slice(1).map(() => 'completed'), 'all written once it is back');
    t.ok(settler.stats().retries >= 2, `${settler.stats().retries} retries`);
    const rows = await jobRows(jobs.map((j) => j.id));
    for (const j of jobs) t.match(rows.get(j.id), { state: 'completed', completions: 1, leases: 0 }, `${j.key} completed once`);

    // Shutdown while the database is away: the batch stops retrying and the outcomes are given up
    // (the jobs stay active under their leases and come back when those are swept).
    const more = await leaseJobs('cut-stop', 3, worker);
    await proxy.cut();
    const pending = more.map((j) => settler.submit(success(j)).then((r): SettleResult | 'rejected' => r, () => 'rejected' as const));
    await until('a failed attempt', () => settler.stats().failedStatements >= 3);
    settler.stop();
    t.same(await Promise.all(pending), ['rejected', 'rejected', 'rejected'], 'given up after stop()');
    const left = await jobRows(more.map((j) => j.id));
    for (const j of more) t.match(left.get(j.id), { state: 'active', completions: 0, leases: 1 }, `${j.key} left active, lease kept`);
  } finally {
    await viaCut.end().catch(() => {});
    await proxy.close();
  }
});

t.test('a row that fails its statement is split off: the other outcomes commit, the bad one alone keeps failing', async (t) => {
  const worker = randomUUID();
  const jobs = await leaseJobs('poison', 6, worker);
  const bad = jobs[3]!;
  const before = await settleMetrics();
  // Reporting into the stack's metrics as the workers do (src/service.ts): read back on its GET /metrics.
  const settler = batcher(worker, { patienceMs: 1_500, onStatement: (batch, ok, next) => stack.metrics.settleBatches.batch(batch.length, ok, next) });
  const results = await Promise.all(
    // duration_ms is an int column: 2^40 is out of range (22003) whenever it is written.
    jobs.map((j) => settler.submit(success(j, { bytes: 1, durationMs: j === bad ? 2 ** 40 : 1 })).catch(() => 'rejected' as const)),
  );
  t.same(results, jobs.map((j) => (j === bad ? 'rejected' : 'completed')));
  const stats = settler.stats();
  t.equal(stats.isolated, 6, 'the batch was split');
  t.equal(stats.gaveUp, 1, 'only the bad outcome was given up (after its patience)');
  t.same(
    await settleMetrics(before),
    {
      'bb_settle_batch_jobs_count{outcome="committed"}': 5,
      'bb_settle_batch_jobs_sum{outcome="committed"}': 5,
      'bb_settle_batch_jobs_count{outcome="failed"}': stats.failedStatements,
      // The batch of 6 once, then the bad outcome alone on every attempt.
      'bb_settle_batch_jobs_sum{outcome="failed"}': 6 + (stats.failedStatements - 1),
      'bb_settle_batch_failures_total{action="retry"}': stats.retries,
      'bb_settle_batch_failures_total{action="split"}': 1,
      'bb_settle_batch_failures_total{action="give_up"}': 1,
    },
    `/metrics: 5 statements of one job committed; ${stats.failedStatements} failed (1 split, ${stats.retries} retried, 1 given up)`,
  );
  t.equal(stats.failedStatements, 2 + stats.retries, 'every failed attempt was split, retried or given up');
  const rows = await jobRows(jobs.map((j) => j.id));
  for (const j of jobs) t.match(rows.get(j.id), j === bad ? { state: 'active', completions: 0 } : { state: 'completed', completions: 1, leases: 0 }, j.key);
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Loops'?: number;
  'Shared Hit Blocks'?: number;
  Plans?: PlanNode[];
}
function* nodes(n: PlanNode): Generator<PlanNode> {
  yield n;
  for (const c of n.Plans ?? []) yield* nodes(c);
}

t.test('the settle statement finds its jobs with one index scan, for a custom and for a generic plan', async (t) => {
  const worker = randomUUID();
  // A queue partition with history: 600 completed jobs beside the 64 being settled.
  const done = await leaseJobs('plan-history', 600, worker);
  await direct.query(`UPDATE pgboss.job SET state = 'completed', completed_on = now() WHERE name = $1 AND id = ANY($2::uuid[])`, [QUEUES.replicate, done.map((j) => j.id)]);
  await direct.query('DELETE FROM bb_job_leases WHERE worker_id = $1', [worker]);
  const jobs = await leaseJobs('plan', 64, worker);
  const client = await direct.connect();
  const arr = (values: unknown[], type: string) => `ARRAY[${values.map((v) => (v === null ? 'NULL' : client.escapeLiteral(String(v)))).join(',')}]::${type}[]`;
  const args = [
    client.escapeLiteral(QUEUES.replicate),
    `'${worker}'::uuid`,
    arr(jobs.map((j) => j.id), 'uuid'),
    arr(jobs.map(() => '{"status":"completed"}'), 'jsonb'),
    arr(jobs.map(() => TASK), 'text'),
    arr(jobs.map((j) => j.key), 'text'),
    arr(jobs.map(() => 'completed'), 'text'),
    arr(jobs.map(() => 100), 'bigint'),
    arr(jobs.map(() => 'etag'), 'text'),
    arr(jobs.map(() => null), 'text'),
    arr(jobs.map(() => 'detag'), 'text'),
    arr(jobs.map(() => 5), 'int'),
    arr(jobs.map(() => null), 'text'),
    arr(jobs.map(() => null), 'text'),
    arr(jobs.map(() => true), 'boolean'),
  ];
  try {
    await client.query(
      `PREPARE bb_settle_plan_test(text, uuid, uuid[], jsonb[], text[], text[], text[], bigint[], text[], text[], text[], int[], text[], text[], boolean[]) AS ${SETTLE_SQL}`,
    );
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      await client.query(`SET plan_cache_mode = ${mode}`);
      await client.query('BEGIN');
      try {
        const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE bb_settle_plan_test(${args.join(', ')})`);
        const plan = rows[0]!['QUERY PLAN'][0].Plan;
        const all = [...nodes(plan)];
        const jobScans = all.filter((n) => /^j[0-9a-f]{20,}$/.test(n['Relation Name'] ?? '') && /Scan/.test(n['Node Type']));
        t.ok(jobScans.length > 0, `${mode}: the job partition is read`);
        for (const s of jobScans) {
          t.equal(s['Node Type'], 'Index Scan', `${mode}: by its index (${s['Index Name']})`);
          t.equal(s['Actual Loops'], 1, `${mode}: once for the whole batch`);
        }
        t.notOk(all.some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'bb_object_status'), `${mode}: no scan of the status table`);
        t.ok((plan['Shared Hit Blocks'] ?? 0) < 64 * 25, `${mode}: ${plan['Shared Hit Blocks']} buffer hits for 64 rows`);
      } finally {
        await client.query('ROLLBACK');
      }
    }
  } finally {
    await client.query('RESET plan_cache_mode').catch(() => undefined);
    await client.query('DEALLOCATE ALL').catch(() => undefined);
    client.release();
  }
});

t.test('the ready list: as many jobs as keep one waiting about half a second, within [1, min(concurrency, 64)]', async (t) => {
  t.equal(readyTarget(16, undefined), 4, 'not measured yet: a quarter of the slots');
  t.equal(readyTarget(16, 80), 16, 'small objects: the concurrency');
  t.equal(readyTarget(256, 10), 64, 'bounded');
  t.equal(readyTarget(16, 2_000), 4, 'two-second copies: 4');
  t.equal(readyTarget(16, 60_000), 1, 'long copies: one');
});

// ------------------------------------------------------------------ through the workers

t.test('through the workers', async (t) => {
  const oss = await startOssServer({ buckets: ['sbsrc', 'sbdst', 'sbsrc2', 'sbdst2'] });
  const dstProxy = await startFaultProxy({ target: oss.endpoint });
  const CONCURRENCY = 8;
  const h: ReplicationHarness = await startReplication({
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    concurrency: CONCURRENCY,
    // The workers report into the stack's metrics: their settle statements are read back on its GET /metrics.
    metrics: stack.metrics,
    tasks: [
      // The bench's shape: the task's copy cap equals the worker concurrency.
      { id: 'many', source: ossEndpoint(oss.endpoint, 'sbsrc'), destination: ossEndpoint(oss.endpoint, 'sbdst'), options: { maxConcurrentCopies: CONCURRENCY } },
      { id: 'stop', source: ossEndpoint(oss.endpoint, 'sbsrc2'), destination: ossEndpoint(dstProxy.endpoint, 'sbdst2') },
    ],
  });
  t.teardown(async () => {
    dstProxy.release();
    await h.close();
    await dstProxy.close();
    await oss.close();
  });
  // Every statement the workers send through the pool, by prepared-statement name; and, for the
  // fetch, the jobs it returned and how many fetches were sent while jobs were still queued.
  const sent = new Map<string, number>();
  const fetchWatch = { rows: 0, queued: 0, whileQueued: 0 };
  const pool = h.pool as unknown as { query: (...args: unknown[]) => Promise<{ rows: unknown[] }> };
  const query = pool.query.bind(h.pool);
  pool.query = async (...args: unknown[]) => {
    const name = (args[0] as { name?: unknown } | undefined)?.name;
    if (typeof name === 'string') sent.set(name, (sent.get(name) ?? 0) + 1);
    const fetch = name === 'bb-replicate-fetch';
    if (fetch && fetchWatch.rows < fetchWatch.queued) fetchWatch.whileQueued++;
    const result = await query(...args);
    if (fetch) fetchWatch.rows += result.rows.length;
    return result;
  };

  t.test('many concurrent successes: fewer settle statements than jobs, fewer fetches than jobs, every row right', async (t) => {
    const N = 160;
    const keys = Array.from({ length: N }, (_, i) => `many/${String(i).padStart(3, '0')}.bin`);
    const bodies = new Map<string, Buffer>();
    for (const key of keys) {
      const body = randomBytes(2048 + Math.floor(Math.random() * 4096));
      bodies.set(key, body);
      await oss.client('sbsrc').put(key, body);
    }
    // Scraped first: no await may separate `before` from `sentBefore` (an idle fetch would count in one only).
    const metricsBefore = await settleMetrics();
    const before = h.workers.stats();
    const sentBefore = { settle: sent.get(SETTLE_STATEMENT_NAME) ?? 0, fetch: sent.get('bb-replicate-fetch') ?? 0 };
    // Fetches sent from the moment the N jobs may be visible until the last of them is fetched.
    Object.assign(fetchWatch, { rows: 0, queued: N, whileQueued: 0 });
    const ids = await h.enqueue('many', keys);
    t.equal(ids.length, N);
    for (const key of keys) await h.settled('many', key);
    const after = h.workers.stats();
    const settleStatements = (sent.get(SETTLE_STATEMENT_NAME) ?? 0) - sentBefore.settle;
    const committed = after.settle.statements - before.settle.statements;
    const outcomes = after.settle.outcomes - before.settle.outcomes;
    const fetches = after.fetches - before.fetches;
    const fetched = after.fetchedJobs - before.fetchedJobs;
    const nonEmpty = fetches - (after.emptyFetches - before.emptyFetches);
    t.comment(
      `${N} jobs: ${settleStatements} settle statements sent (${committed} committed, largest batch ${after.settle.maxBatch}); ` +
        `${fetches} fetches (${fetchWatch.whileQueued} while jobs were queued, ${nonEmpty} returned jobs, ` +
        `${after.starvedFetches - before.starvedFetches} for a starving slot), ${fetched} jobs fetched; ready target ${after.readyTarget}`,
    );
    t.equal(outcomes, N, 'every success went through the batcher');
    t.equal(settleStatements, committed + (after.settle.failedStatements - before.settle.failedStatements), 'the statements the pool saw are the ones counted');
    t.ok(settleStatements < N / 2, `${settleStatements} settle statements for ${N} successes`);
    t.equal(sent.get('bb-replicate-complete-status') ?? 0, 0, 'no single-job settle statement');
    t.equal(fetched, N, 'every job fetched once');
    t.equal(fetchWatch.rows, N, 'the pool saw the same jobs fetched');
    t.equal(sent.get('bb-replicate-fetch')! - sentBefore.fetch, fetches, 'the fetches the pool saw are the ones counted');
    // The code before this change sent 84 fetches while these 160 jobs were queued (82 at concurrency 16):
    // one per finished job, most of them empty (the task at its cap, counting the ready jobs); now ≈ 35.
    t.ok(fetchWatch.whileQueued <= N / 3, `${fetchWatch.whileQueued} fetches while ${N} jobs were queued, at concurrency ${CONCURRENCY}`);
    // GET /metrics (after the checks above, which compare live pool counts with `after`): every job
    // settled is in the histogram once, in as many observations as statements committed.
    await until('/metrics counts every settled job', async () => (await settleMetrics(metricsBefore))['bb_settle_batch_jobs_sum{outcome="committed"}'] >= N);
    const m = await settleMetrics(metricsBefore);
    const failed = after.settle.failedStatements - before.settle.failedStatements;
    t.equal(m['bb_settle_batch_jobs_sum{outcome="committed"}'], N, `/metrics: ${N} jobs settled`);
    t.equal(m['bb_settle_batch_jobs_count{outcome="committed"}'], committed, `/metrics: in ${committed} committed statements`);
    t.equal(m['bb_settle_batch_jobs_count{outcome="failed"}'], failed, `/metrics: ${failed} failed statements`);
    t.equal(
      m['bb_settle_batch_failures_total{action="retry"}'] + m['bb_settle_batch_failures_total{action="split"}'] + m['bb_settle_batch_failures_total{action="give_up"}'],
      failed,
      '/metrics: each failed statement counted once by what followed',
    );

    const { rows: jobs } = await h.pool.query<{ key: string; state: string; output: { status: string }; completed_on: Date | null }>(
      `SELECT data->>'key' AS key, state, output, completed_on FROM pgboss.job WHERE name = $1 AND id = ANY($2::uuid[])`,
      [QUEUES.replicate, ids],
    );
    t.equal(jobs.length, N);
    t.ok(jobs.every((j) => j.state === 'completed' && j.output.status === 'completed' && j.completed_on !== null), 'every job completed with its output');
    const { rows: leases } = await h.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bb_job_leases WHERE job_id = ANY($1::uuid[])', [ids]);
    t.equal(leases[0]!.n, 0, 'no lease left');
    let wrong = 0;
    for (const key of keys) {
      const row = (await h.status('many', key))!;
      const dst = oss.getObject('sbdst', key);
      const src = oss.getObject('sbsrc', key)!;
      const ok =
        row.status === 'completed' &&
        row.attempts === 1 &&
        row.bytes === bodies.get(key)!.length &&
        row.completedAt !== null &&
        row.lastErrorCode === null &&
        dst !== undefined &&
        dst.body.equals(bodies.get(key)!) &&
        row.destinationEtag?.toUpperCase() === dst.etag &&
        (row.sourceEtag === null || row.sourceEtag.toUpperCase() === src.etag);
      if (!ok) {
        wrong++;
        t.fail(`${key}: ${JSON.stringify(row)}`);
      }
    }
    t.equal(wrong, 0, 'every status row right: completed, 1 attempt, bytes, etags, completed_at');
  });

  t.test('shutdown waits for outcomes being written; a handed-back job is never completed', async (t) => {
    const quick = ['stop/a.txt', 'stop/b.txt', 'stop/c.txt'];
    const slow = 'stop/slow.txt';
    for (const key of [...quick, slow]) await oss.client('sbsrc2').put(key, Buffer.from(`body of ${key}`));
    const stall = dstProxy.add({ match: { method: 'PUT', path: `/${slow}` }, nth: 1, action: { type: 'stall' } });
    // One failed attempt on record for a.txt, its row held locked: a.txt's settle statement waits on it.
    await h.pool.query(`INSERT INTO bb_object_status (task_id, key, status, attempts) VALUES ('stop', $1, 'pending', 1)`, [quick[0]]);
    const slowJob = async () => (await h.jobs('stop', slow))[0]!;
    // On the workers' own database (the harness made one).
    const blocker = await h.pool.connect();
    let stopped = false;
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM bb_object_status WHERE task_id = 'stop' AND key = $1 FOR UPDATE`, [quick[0]]);
      await h.enqueue('stop', [...quick, slow]);
      await until('the slow copy stalled and the quick ones copied', () => stall.fired === 1 && quick.every((k) => oss.getObject('sbdst2', k) !== undefined));
      await until("a.txt's outcome being written", () => h.workers.stats().settle.inFlight >= 1);
      const stopping = h.workers.stop(500).then(() => (stopped = true));
      await until('the slow job handed back', async () => (await slowJob()).state !== 'active');
      dstProxy.release(); // let the aborted copy unwind
      await until('no copy running', () => h.workers.activeJobs === 0);
      t.notOk(stopped, 'stop() still waits: an outcome is being written');
      t.equal((await h.jobs('stop', quick[0]!))[0]!.state, 'active', 'a.txt not completed yet');
      await blocker.query('ROLLBACK');
      await stopping;
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
    }
    t.ok(stopped);
    for (const key of quick) {
      t.equal((await h.jobs('stop', key))[0]!.state, 'completed', `${key} completed`);
      t.match(await h.status('stop', key), { status: 'completed' });
    }
    t.equal((await h.status('stop', quick[0]!))?.attempts, 2, 'a.txt: its second attempt recorded');
    const s = await slowJob();
    t.not(s.state, 'completed', `the handed-back job is not completed (${s.state})`);
    t.not((await h.status('stop', slow))?.status, 'completed', 'and no completed status row for it');
    const { rows } = await h.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM bb_job_leases l JOIN pgboss.job j ON j.id = l.job_id AND j.name = $1 WHERE j.singleton_key LIKE 'stop:%' AND j.state = 'completed'`,
      [QUEUES.replicate],
    );
    t.equal(rows[0]!.n, 0, 'no lease left on a completed job');
  });
});
