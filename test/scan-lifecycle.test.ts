/**
 * A scan's life: cancelled while running, handed back on shutdown and resumed
 * from its position by another runner, re-queued by the sweep when its process
 * vanished (then failed after too many attempts), failed with a clear error
 * when a store lists out of order, and stopped when its task is deleted.
 */
import t from 'tap';
import { createLogger } from '../src/logger.js';
import { ScanRunner } from '../src/scan/runner.js';
import { ScanService } from '../src/scan/scans.js';
import type { ScanRecord } from '../src/scan/scan-repo.js';
import { startStack, testTask, type Stack } from './support/stack.js';
import { eventually } from './support/service.js';
import { FakeStores, numbered, slowed } from './support/fake-stores.js';
import { FakeLister } from './support/fake-lister.js';

const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');

let stack: Stack;
let scans: ScanService;
const stores = new FakeStores();
let delay = 0;

t.before(async () => {
  stack = await startStack({ tasks: ['slow', 'resume', 'swept', 'disorder', 'doomed'].map((id) => testTask(id)) });
  scans = new ScanService(stack.pool, stack.boss, stack.tasks, log, { staleAfterSeconds: 1, maxAttempts: 2 });
  stores.set('slow', slowed(new FakeLister('slow-src', numbered(400)), () => 50), numbered(400));
  stores.set('resume', slowed(new FakeLister('resume-src', numbered(3000)), () => delay), numbered(2990));
  stores.set('doomed', slowed(new FakeLister('doomed-src', numbered(400)), () => 50), numbered(400));
  // UTF-16 order: "\u{1F600}" listed before "\uFF5E", as a store sorting JS strings would.
  stores.set('disorder', new FakeLister('bad', [{ key: 'x/\u{1F600}', size: 1, etag: 'e' }, { key: 'x/\uFF5E', size: 1, etag: 'e' }], { keepOrder: true }), []);
});

t.teardown(async () => {
  await stack?.close();
});

function runner(): ScanRunner {
  return new ScanRunner({ pool: stack.pool, boss: stack.boss, tasks: stack.tasks, stores, log, options: { progressIntervalMs: 50, pageSize: 10, chunkSize: 20, enqueueBatch: 7 } });
}

async function jobsFor(taskId: string): Promise<string[]> {
  const { rows } = await stack.pool.query<{ key: string }>(`SELECT data->>'key' AS key FROM pgboss.job WHERE name = 'bb-replicate' AND data->>'taskId' = $1`, [taskId]);
  return rows.map((r) => r.key).sort();
}

t.test('a running scan stops soon after it is cancelled', async (t) => {
  const { scan } = await scans.request('slow', undefined, 'api');
  const running = runner().run(scan.id);
  await eventually(async () => ((await scans.get('slow', scan.id))?.state === 'running' ? true : undefined), 5_000, 'running');
  await new Promise((r) => setTimeout(r, 200));
  const cancelled = await scans.cancel('slow', scan.id);
  t.equal(cancelled?.cancelled, true);
  const started = Date.now();
  const final = (await running)!;
  t.ok(Date.now() - started < 2_000, 'stopped within a progress interval or two');
  t.equal(final.state, 'cancelled');
  t.ok(final.counters.sourceKeys < 400, `stopped part-way (${final.counters.sourceKeys} of 400 keys)`);
  t.equal((await scans.cancel('slow', scan.id))?.cancelled, false, 'a finished scan cannot be cancelled again');
});

t.test('a scan interrupted by shutdown is handed back and resumed from its position', async (t) => {
  delay = 20;
  const { scan } = await scans.request('resume', undefined, 'api');
  const abort = new AbortController();
  const first = runner().run(scan.id, abort.signal);
  await eventually(async () => {
    const s = await scans.get('resume', scan.id);
    return s && s.counters.sourceKeys >= 600 ? true : undefined;
  }, 10_000, 'some progress');
  abort.abort();
  const handed = (await first)!;
  t.equal(handed.state, 'queued', 'back in the queue');
  t.ok(handed.position, `with a position (${handed.position})`);
  t.ok(handed.counters.sourceKeys > 0 && handed.counters.sourceKeys < 3000);
  const { rows } = await stack.pool.query(`SELECT state FROM pgboss.job WHERE name = 'bb-scan' AND id = $1`, [handed.jobId]);
  t.same(rows, [{ state: 'created' }], 'with a new bb-scan job');
  delay = 0;
  const resumed = (await runner().run(scan.id))!;
  t.equal(resumed.state, 'completed');
  t.equal(resumed.attempts, 2);
  t.equal(resumed.counters.sourceKeys, 3000, 'every key counted once across the two runs');
  t.equal(resumed.counters.destinationKeys, 2990);
  t.equal(resumed.counters.missing, 10);
  t.equal(resumed.counters.jobsQueued, 10);
  t.same(await jobsFor('resume'), numbered(3000).slice(2990).map((o) => o.key), 'the missing keys, queued once');
});

t.test('the sweep re-queues a scan whose process vanished, and fails it after too many attempts', async (t) => {
  const { scan } = await scans.request('swept', undefined, 'api');
  // A process claimed it and died: running, heartbeat going stale.
  await stack.pool.query(`UPDATE bb_scans SET state = 'running', attempts = 1, worker = 'gone:1:x', heartbeat_at = now() - interval '10 seconds' WHERE id = $1`, [scan.id]);
  const r1 = await scans.sweep();
  t.equal(r1.requeued, 1);
  let s = (await scans.get('swept', scan.id))!;
  t.equal(s.state, 'queued');
  t.not(s.jobId, scan.jobId, 'with a new job');
  await stack.pool.query(`UPDATE bb_scans SET state = 'running', attempts = 2, worker = 'gone:2:x', heartbeat_at = now() - interval '10 seconds' WHERE id = $1`, [scan.id]);
  const r2 = await scans.sweep();
  t.equal(r2.failed, 1);
  s = (await scans.get('swept', scan.id))!;
  t.equal(s.state, 'failed');
  t.match(s.error, /interrupted 2 times/);
  // A queued scan whose job is gone (the job was deleted under it) is re-queued too.
  const { scan: lost } = await scans.request('swept', undefined, 'api');
  await stack.pool.query(`DELETE FROM pgboss.job WHERE id = $1`, [lost.jobId]);
  await stack.pool.query(`UPDATE bb_scans SET created_at = now() - interval '10 seconds' WHERE id = $1`, [lost.id]);
  t.equal((await scans.sweep()).requeued, 1);
  const again = (await scans.get('swept', lost.id))!;
  const { rows } = await stack.pool.query(`SELECT 1 FROM pgboss.job WHERE id = $1`, [again.jobId]);
  t.equal(rows.length, 1);
  // A queued scan whose job was fetched by a process that died before claiming it.
  const { scan: orphan } = await scans.request('slow', undefined, 'api');
  await stack.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now() - interval '10 seconds' WHERE id = $1`, [orphan.jobId]);
  await stack.pool.query(`UPDATE bb_scans SET created_at = now() - interval '10 seconds' WHERE id = $1`, [orphan.id]);
  t.equal((await scans.sweep()).requeued, 1, 'an orphaned queued scan is re-queued');
  t.not((await scans.get('slow', orphan.id))!.jobId, orphan.jobId);
  await scans.cancel('slow', orphan.id);
});

t.test('a store listing out of UTF-8 order fails the scan with a clear error', async (t) => {
  const { scan } = await scans.request('disorder', undefined, 'api');
  const final = (await runner().run(scan.id))!;
  t.equal(final.state, 'failed');
  t.match(final.error, /source listing of bucket bad returned "x\/～" after "x\/😀": keys are not in UTF-8 binary order/);
  t.same(await jobsFor('disorder'), [], 'nothing queued from a listing that cannot be trusted');
});

t.test('a prefix-list that does not exist fails the scan; deleting the task stops a running scan', async (t) => {
  const { scan } = await scans.request('disorder', { prefixList: { key: 'no/such/list.txt' } }, 'api');
  const failed = (await runner().run(scan.id)) as ScanRecord;
  t.equal(failed.state, 'failed');
  t.match(failed.error, /^prefix list bad\/no\/such\/list.txt does not exist$/);

  const { scan: doomed } = await scans.request('doomed', undefined, 'api');
  const running = runner().run(doomed.id);
  await eventually(async () => ((await scans.get('doomed', doomed.id))?.state === 'running' ? true : undefined), 5_000, 'running');
  await stack.pool.query(`DELETE FROM bb_tasks WHERE id = 'doomed'`);
  t.equal(await running, undefined, 'the runner stops; the scan went with its task');
  t.equal((await stack.pool.query(`SELECT 1 FROM bb_scans WHERE task_id = 'doomed'`)).rowCount, 0);
});
