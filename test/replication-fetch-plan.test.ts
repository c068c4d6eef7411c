/**
 * The replication fetch (replication-worker.ts FETCH_SQL) reads the keys that
 * have a running job once per statement, not once per queued job.
 *
 * The regression this guards (bench/README.md, Copy): written as a correlated
 * NOT EXISTS, the busy-key check ran as a probe per queued job that re-read
 * every active job of the queue (1,984 queued × 16 active: 6,119 buffer hits,
 * 40 ms per fetch). That was the custom plan, which is what the service runs
 * (pg_stat_statements in bench/copy: one planning per execution; the queue
 * table is partitioned, so a generic plan never looks cheaper); checked here
 * for a custom and a forced generic plan, 400 queued jobs and 16 running, by
 * the scans of the running jobs in EXPLAIN ANALYZE. Against the old text this
 * test fails for the custom plan (1,234 buffer hits, the probe run 400 times).
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { QUEUES } from '../src/queue/boss.js';
import { enqueueReplications } from '../src/queue/enqueue.js';
import { FETCH_SQL } from '../src/queue/replication-worker.js';
import { startStack, testTask, type Stack } from './support/stack.js';

let stack: Stack;
let direct: pg.Pool;
t.before(async () => {
  stack = await startStack({ tasks: [testTask('photos')], senders: [] });
  direct = new pg.Pool({ connectionString: stack.db.url, max: 2 });
});
t.teardown(async () => {
  await direct.end();
  await stack.close();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Loops'?: number;
  'Actual Rows'?: number;
  'Shared Hit Blocks'?: number;
  Plans?: PlanNode[];
}

function* nodes(n: PlanNode): Generator<PlanNode> {
  yield n;
  for (const c of n.Plans ?? []) yield* nodes(c);
}

t.test('the fetch reads the active jobs once per statement, for a custom and for a generic plan', async (t) => {
  const keys = Array.from({ length: 400 }, (_, i) => `plan/${String(i).padStart(4, '0')}`);
  await enqueueReplications(stack.boss, stack.pool, keys.map((key) => ({ taskId: 'photos', key, trigger: 'event', kind: 'created' })));
  const worker = randomUUID();
  const client = await direct.connect();
  try {
    await client.query(`INSERT INTO bb_workers (id, host, pid) VALUES ($1, 'plan-test', 1)`, [worker]);
    // 16 running jobs, as a worker would have.
    const { rows: running } = await client.query({ text: FETCH_SQL, values: [worker, [], 16] });
    t.equal(running.length, 16, '16 jobs fetched and running');
    await client.query(`PREPARE bb_fetch_plan_test(uuid, text[], int) AS ${FETCH_SQL}`);
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      await client.query(`SET plan_cache_mode = ${mode}`);
      await client.query('BEGIN');
      try {
        const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE bb_fetch_plan_test('${worker}', '{}', 4)`,
        );
        const plan = rows[0]!['QUERY PLAN'][0].Plan;
        const all = [...nodes(plan)];
        // The scan that finds the running jobs: the one returning the 16 active rows.
        const activeScans = all.filter((n) => /Scan/.test(n['Node Type']) && (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1) >= 16 && (n['Actual Rows'] ?? 0) <= 16);
        t.ok(activeScans.length > 0, `${mode}: the scan of the running jobs is in the plan`);
        for (const s of activeScans) t.equal(s['Actual Loops'], 1, `${mode}: ${s['Node Type']} ${s['Index Name'] ?? s['Relation Name'] ?? ''} runs once, not per queued job`);
        t.ok((plan['Shared Hit Blocks'] ?? 0) < 1000, `${mode}: ${plan['Shared Hit Blocks']} buffer hits for 400 queued jobs (per-job probes: > 1,000)`);
        // The queued jobs are read in fetch order from pg-boss's (name, start_after) index and the
        // scan stops at the limit: no node reads the whole queue to sort it (384 queued rows here).
        const widest = Math.max(...all.filter((n) => /Scan/.test(n['Node Type'])).map((n) => (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1)));
        t.ok(widest <= 32, `${mode}: the widest scan reads ${widest} rows for a fetch of 4 among 384 queued (the whole queue, sorted: 384)`);
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

t.test('PostgreSQL keeps one generic plan for the fetch instead of planning every execution', async (t) => {
  // The queue's name is a literal in FETCH_SQL, so a generic plan is made for its partition alone and
  // is as cheap as a custom one. With the name as a parameter the service planned every execution in
  // the copy bench (254 plannings for 254 fetches, 0.65 ms each); in this small database that text
  // gets a generic plan too, so this test guards the behaviour, not that difference (bench/README.md).
  const worker = randomUUID();
  const client = await direct.connect();
  try {
    await client.query(`INSERT INTO bb_workers (id, host, pid) VALUES ($1, 'plan-cache-test', 1)`, [worker]);
    await client.query('BEGIN');
    // Other queues hold jobs too (dead letters, here): a plan that cannot prune to one partition costs more.
    await client.query(`INSERT INTO pgboss.job (name, data) SELECT $1, '{}'::jsonb FROM generate_series(1, 5000)`, [QUEUES.replicateDead]);
    await client.query('ANALYZE pgboss.job');
    for (let i = 0; i < 12; i++) await client.query({ name: 'bb-fetch-cache-test', text: FETCH_SQL, values: [worker, [], 1] });
    const { rows } = await client.query<{ generic_plans: string; custom_plans: string }>(
      `SELECT generic_plans::text, custom_plans::text FROM pg_prepared_statements WHERE name = 'bb-fetch-cache-test'`,
    );
    await client.query('ROLLBACK');
    t.equal(rows.length, 1, 'the statement is prepared on the connection');
    // PostgreSQL tries 5 custom plans, then keeps the generic one when it costs no more.
    t.equal(Number(rows[0]!.custom_plans), 5, 'five custom plans, as PostgreSQL always tries');
    t.equal(Number(rows[0]!.generic_plans), 7, 'then the generic plan for every further execution');
  } finally {
    await client.query('DEALLOCATE ALL').catch(() => undefined);
    client.release();
  }
});
