/**
 * Scan schedules: a rate task scans again and again (one firing per period
 * across processes), a cron task gets a pg-boss schedule whose firings become
 * scans, a once task scans exactly once across restarts, paused tasks are left
 * alone, and a firing while a scan is active is recorded as skipped.
 * In-memory listers stand in for the buckets: what matters here is when scans run.
 */
import t from 'tap';
import { createLogger } from '../src/logger.js';
import { ScanRunner } from '../src/scan/runner.js';
import { ScanService } from '../src/scan/scans.js';
import { cronQueueName, parseEvery, ScanScheduler } from '../src/scan/scheduler.js';
import { ScanWorkers } from '../src/scan/worker.js';
import type { ScanRecord } from '../src/scan/scan-repo.js';
import { startStack, testTask, type Stack } from './support/stack.js';
import { eventually } from './support/service.js';
import { FakeStores, numbered, slowed } from './support/fake-stores.js';
import { FakeLister } from './support/fake-lister.js';

const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');

let stack: Stack;
let scans: ScanService;
let workers: ScanWorkers;
const stores = new FakeStores();
const schedulers: ScanScheduler[] = [];

function scheduler(): ScanScheduler {
  const s = new ScanScheduler({ pool: stack.pool, boss: stack.boss, tasks: stack.tasks, scans, log }, { tickMs: 150, syncMs: 60_000, cronPollingIntervalSeconds: 0.5 });
  schedulers.push(s);
  return s;
}

t.before(async () => {
  stack = await startStack({
    tasks: [
      testTask('rate-task', { schedule: { mode: 'rate', every: '1s' } }),
      testTask('cron-task', { schedule: { mode: 'cron', expression: '*/5 * * * *' } }),
      testTask('once-task', { schedule: { mode: 'once' } }),
      testTask('paused-rate', { schedule: { mode: 'rate', every: '1s' } }),
      testTask('busy-rate', { schedule: { mode: 'rate', every: '1s' } }),
      testTask('plain', {}),
    ],
  });
  await stack.pool.query(`UPDATE bb_tasks SET paused = true WHERE id = 'paused-rate'`);
  await stack.tasks.load();
  for (const id of ['rate-task', 'cron-task', 'once-task', 'paused-rate', 'plain']) stores.set(id, numbered(50), numbered(45));
  // Slow enough that the next firing finds it still running.
  stores.set('busy-rate', slowed(new FakeLister('busy-src', numbered(20)), () => 400), new FakeLister('busy-dst', numbered(20)));
  scans = new ScanService(stack.pool, stack.boss, stack.tasks, log);
  const runner = new ScanRunner({ pool: stack.pool, boss: stack.boss, tasks: stack.tasks, stores, log, options: { progressIntervalMs: 100, pageSize: 5 } });
  workers = new ScanWorkers(stack.boss, runner, log, { concurrency: 4, pollingIntervalSeconds: 0.5 });
  await workers.start();
});

t.teardown(async () => {
  for (const s of schedulers) await s.stop();
  await workers?.stop();
  await stack?.close();
});

async function scansOf(taskId: string): Promise<ScanRecord[]> {
  return scans.list(taskId, { limit: 200 });
}

t.test('rate periods parse', async (t) => {
  t.equal(parseEvery('15m'), 900);
  t.equal(parseEvery('36h'), 129600);
  t.equal(parseEvery('1s'), 1);
  t.throws(() => parseEvery('15 minutes'));
});

t.test('a rate task scans, then scans again every period; paused tasks do not', async (t) => {
  const s = scheduler();
  await s.start();
  const done = await eventually(async () => {
    const list = (await scansOf('rate-task')).filter((x) => x.state === 'completed');
    return list.length >= 3 ? list : undefined;
  }, 20_000, 'three completed rate scans');
  t.ok(done.every((x) => x.trigger === 'schedule'));
  t.equal(done[0]!.counters.missing, 5, 'each is a full scan (50 source keys, 45 on the destination)');
  t.equal((await scansOf('paused-rate')).length, 0, 'a paused task gets no scheduled scans');
  const { rows } = await stack.pool.query(`SELECT rate_seconds, next_run_at > now() - interval '2 seconds' AS current FROM bb_scan_schedules WHERE task_id = 'rate-task'`);
  t.same(rows, [{ rate_seconds: 1, current: true }]);
});

t.test('a firing while the previous scan is active is recorded as skipped', async (t) => {
  const skipped = await eventually(async () => {
    const list = await scansOf('busy-rate');
    const sk = list.find((x) => x.state === 'skipped');
    return sk ? { sk, list } : undefined;
  }, 20_000, 'a skipped busy-rate scan');
  t.ok(skipped.list.some((x) => x.id === skipped.sk.skippedFor), 'it names the active scan');
  const { rows } = await stack.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM bb_scans WHERE task_id = 'busy-rate' AND state IN ('queued', 'running')`);
  t.ok(rows[0]!.n <= 1, 'never two active scans of one task');
});

t.test('a due rate schedule fires once even when two processes tick at the same moment', async (t) => {
  await schedulers[0]!.stop(); // the rate test's scheduler: these two stand for two processes
  const a = scheduler();
  const b = scheduler();
  await stack.pool.query(`UPDATE bb_scan_schedules SET next_run_at = now() + interval '1 hour' WHERE task_id <> 'rate-task'`);
  await stack.pool.query(`UPDATE bb_scan_schedules SET next_run_at = now() - interval '1 second' WHERE task_id = 'rate-task'`);
  const [fa, fb] = await Promise.all([a.tick(), b.tick()]);
  t.equal([...fa, ...fb].filter((id) => id === 'rate-task').length, 1, 'exactly one of the two fired it');
});

t.test('a cron task gets a pg-boss schedule; its firings become scans; it is removed with the schedule', async (t) => {
  const s = scheduler();
  await s.sync();
  const schedule = (await stack.boss.getSchedules()).find((x) => x.name === cronQueueName('cron-task'));
  t.ok(schedule, 'registered');
  t.equal(schedule!.cron, '*/5 * * * *');
  t.equal((schedule as unknown as { timezone: string }).timezone, 'UTC');
  t.same(schedule!.data, { taskId: 'cron-task' });
  // What pg-boss's timekeeper does at the minute: put a job in the schedule's queue.
  await stack.boss.send(cronQueueName('cron-task'), { taskId: 'cron-task' });
  const done = await eventually(async () => (await scansOf('cron-task')).find((x) => x.state === 'completed'), 20_000, 'the cron scan');
  t.equal(done.trigger, 'schedule');

  await stack.pool.query(`UPDATE bb_tasks SET definition = jsonb_set(definition, '{schedule}', '{"mode":"none"}') WHERE id = 'cron-task'`);
  await s.sync();
  t.notOk((await stack.boss.getSchedules()).some((x) => x.name === cronQueueName('cron-task')), 'unscheduled when the task no longer has a cron schedule');
  t.equal(await stack.boss.getQueue(cronQueueName('cron-task')), null, 'and its queue is gone');
});

t.test('a once task scans exactly once, across syncs and restarts', async (t) => {
  const first = scheduler();
  await first.sync();
  await first.sync();
  await first.stop();
  const restarted = scheduler();
  await restarted.sync();
  const done = await eventually(async () => {
    const list = await scansOf('once-task');
    return list.length === 1 && list[0]!.state === 'completed' ? list : undefined;
  }, 20_000, 'the once scan');
  t.equal(done[0]!.trigger, 'once');
  await restarted.sync();
  t.equal((await scansOf('once-task')).length, 1, 'still one');
  const { rows } = await stack.pool.query(`SELECT once_scan_id FROM bb_scan_schedules WHERE task_id = 'once-task'`);
  t.equal(rows[0].once_scan_id, done[0]!.id, 'the mark names the scan');
});
