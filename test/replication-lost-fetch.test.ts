/**
 * A fetch that commits but whose answer never reaches the worker (the
 * connection is cut between COMMIT and the rows) leaves its jobs 'active'
 * under the lease of a live worker. The lease sweep only hands back jobs of
 * dead workers, so before the fix those jobs sat there until pg-boss expired
 * them hours later (chaos-db caught it intermittently once wake-ups made a
 * fetch follow every enqueue). The worker now treats a failed fetch as "leases
 * unsure" and, before its next fetch, hands back every job leased to it that
 * it does not know of (replication-worker.ts reclaimUnknownLeases).
 *
 * Reproduced deterministically against the real database: the test itself
 * runs the worker's own fetch statement under the worker's id in the same
 * transaction that queues the job (a committed fetch nobody heard the answer
 * of), then makes the worker's next fetches fail for a moment by renaming the
 * lease table.
 */
import t from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import { QUEUES, replicateSingletonKey } from '../src/queue/boss.js';
import { FETCH_SQL, fetchSql, REQUEUE_SQL } from '../src/queue/replication-worker.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication, type ReplicationHarness } from './support/replication.js';

const SRC = 'lost-src';
const DST = 'lost-dst';
const TASK = 'lost';

let oss: OssServer;
let h: ReplicationHarness;

t.before(async () => {
  oss = await startOssServer({ buckets: [SRC, DST] });
  h = await startReplication({
    tasks: [{ id: TASK, source: ossEndpoint(oss.endpoint, SRC), destination: ossEndpoint(oss.endpoint, DST) }],
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    pollIntervalMs: 50,
  });
});
t.teardown(async () => {
  await h.close();
  await oss.close();
});

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  // A state to reach, not a time to wait: the file's tap timeout bounds it.
  while (!(await condition())) await new Promise((r) => setTimeout(r, 20));
  t.comment(`reached: ${what}`);
}

t.test('jobs leased by a fetch whose answer was lost are handed back after the next failed fetch and copied', async (t) => {
  const key = 'orphan/one.bin';
  const body = randomBytes(3000);
  await oss.client(SRC).put(key, body);
  const { rows: workers } = await h.pool.query<{ id: string }>('SELECT id FROM bb_workers');
  t.equal(workers.length, 1, 'one worker process');
  const workerId = workers[0]!.id;

  // Queue the job and take it with the worker's own fetch statement and id, in one transaction:
  // committed, leased to the live worker, and never seen by it. Ready a minute ago: the fetch wants start_after < now(), and now() is this transaction's start.
  const jobId = randomUUID();
  const client = await h.pool.connect();
  try {
    await client.query('BEGIN');
    await h.boss.insert(
      [{ id: jobId, name: QUEUES.replicate, data: { taskId: TASK, key, trigger: 'event', kind: 'created' }, singletonKey: replicateSingletonKey(TASK, key), startAfter: new Date(Date.now() - 60_000) }],
      { db: { executeSql: (text, values) => client.query(text, values) } },
    );
    const { rows } = await client.query<{ id: string }>(FETCH_SQL, [workerId, [], 10]);
    t.same(rows.map((r) => r.id), [jobId], 'the lost fetch took the job');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  t.same((await h.jobs(TASK, key)).map((j) => j.state), ['active'], 'active under the live worker, which does not know it');

  // The worker's next fetches fail (as the lost one did, from its point of view).
  const before = h.workers.stats();
  await h.pool.query('ALTER TABLE bb_job_leases RENAME TO bb_job_leases_away');
  try {
    await until('a fetch failed', () => h.workers.stats().failedFetches > before.failedFetches);
  } finally {
    await h.pool.query('ALTER TABLE bb_job_leases_away RENAME TO bb_job_leases');
  }

  const row = await h.settled(TASK, key, undefined, 60_000);
  t.equal(row.status, 'completed', 'handed back, fetched again and copied');
  t.ok(oss.getObject(DST, key)?.body.equals(body), 'the destination holds the bytes');
  t.equal(h.workers.stats().reclaimedJobs - before.reclaimedJobs, 1, 'exactly the orphan was handed back');
  const { rows: after } = await h.pool.query<{ retry_count: number; state: string }>('SELECT retry_count, state FROM pgboss.job WHERE id = $1', [jobId]);
  t.same(after, [{ retry_count: 0, state: 'completed' }], 'it never ran before, so handing it back cost it no retry');
  const { rows: leases } = await h.pool.query('SELECT 1 FROM bb_job_leases');
  t.equal(leases.length, 0, 'no lease left behind');
});

t.test('a failed fetch that lost nothing hands nothing back, and copying goes on', async (t) => {
  const before = h.workers.stats();
  await h.pool.query('ALTER TABLE bb_job_leases RENAME TO bb_job_leases_away');
  try {
    await until('a fetch failed', () => h.workers.stats().failedFetches > before.failedFetches);
  } finally {
    await h.pool.query('ALTER TABLE bb_job_leases_away RENAME TO bb_job_leases');
  }
  const keys = Array.from({ length: 6 }, (_, i) => `after/${i}.bin`);
  for (const k of keys) await oss.client(SRC).put(k, randomBytes(500));
  await h.enqueue(TASK, keys);
  for (const k of keys) t.equal((await h.settled(TASK, k, undefined, 60_000)).status, 'completed', k);
  t.equal(h.workers.stats().reclaimedJobs, before.reclaimedJobs, 'nothing handed back');
});

t.test('jobs fetched but never started go back as they were: no retry spent, ready at once; one with a newer queued twin is superseded', async (t) => {
  // A queue of its own (same policy as bb-replicate), so the live worker fetches none of these.
  const QUEUE = 'bb-return-test';
  await h.boss.createQueue(QUEUE, { name: QUEUE, policy: 'stately', retryLimit: 3, retryDelay: 60 });
  // The live worker's id (leases need a registered worker); it only looks for unknown leases after a failed fetch.
  const { rows: workers } = await h.pool.query<{ id: string }>('SELECT id FROM bb_workers');
  const WORKER = workers[0]!.id;
  const insert = async (key: string): Promise<string> => {
    const id = randomUUID();
    await h.boss.insert([{ id, name: QUEUE, data: { taskId: 'r', key }, singletonKey: replicateSingletonKey('r', key), startAfter: new Date(Date.now() - 60_000) }]);
    return id;
  };
  const plain = await insert('plain');
  const twinned = await insert('twinned');
  const { rows: fetched } = await h.pool.query<{ id: string }>(fetchSql(QUEUE), [WORKER, [], 10]);
  t.same(fetched.map((r) => r.id).sort(), [plain, twinned].sort(), 'both fetched (active, leased)');
  const newer = await insert('twinned'); // queued while the first was held: allowed beside an active one
  const state = async (id: string) =>
    (await h.pool.query<{ state: string; retry_count: number; started: boolean; output: unknown }>(
      'SELECT state, retry_count, started_on IS NOT NULL AS started, output FROM pgboss.job WHERE id = $1',
      [id],
    )).rows[0];

  const { rows } = await h.pool.query<{ requeued: number; superseded: number }>(REQUEUE_SQL, [QUEUE, [plain, twinned], WORKER]);
  t.same(rows, [{ requeued: 1, superseded: 1 }]);
  t.match(await state(plain), { state: 'created', retry_count: 0, started: false }, 'back as it was before the fetch');
  t.match(await state(twinned), { state: 'completed', output: { superseded: String } }, 'superseded by the newer job of its key');
  t.match(await state(newer), { state: 'created' }, 'the newer job is untouched');
  t.equal((await h.pool.query('SELECT 1 FROM bb_job_leases WHERE worker_id = $1', [WORKER])).rowCount, 0, 'the leases are gone');

  const { rows: again } = await h.pool.query<{ id: string; retryCount: number }>(fetchSql(QUEUE), [WORKER, [], 10]);
  t.same(again.map((r) => [r.id, r.retryCount]).sort(), [[newer, 0], [plain, 0]].sort(), 'fetched again at once, still on its first try');
  const { rows: none } = await h.pool.query<{ requeued: number; superseded: number }>(REQUEUE_SQL, [QUEUE, [twinned], WORKER]);
  t.same(none, [{ requeued: 0, superseded: 0 }], 'a job that is not active is left alone');
  await h.pool.query('DELETE FROM bb_job_leases WHERE worker_id = $1 AND job_id = ANY($2::uuid[])', [WORKER, [plain, newer]]);
});
