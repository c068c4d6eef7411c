/**
 * Scan wake-ups (src/scan/scan-jobs.ts, src/scan/worker.ts) against a real
 * database: every bb-scan insert announces itself on `bb_scan_ready` in its
 * transaction (a request, a re-queue by the sweep; not a skipped request nor a
 * rolled-back one); scan workers whose fallback poll is 30 s start a scan
 * requested through the admin API of another process (its own pool and
 * pg-boss) within seconds, so only the wake-up can explain it; without a
 * listener the poll still finds it; a scan announced while every slot is busy
 * starts when the slot frees; stop() hands a running scan back and another
 * ScanWorkers, woken by the hand-back, resumes it; stop() while a fetch is in
 * flight puts the job it took back in the queue unstarted; jobs are completed
 * with `{ state }` and failed with the error, as pg-boss's work() did.
 *
 * Timings are never asserted tightly: "started within 5 s" against a 30 s poll.
 * "Nothing was sent" does not wait for a time: a sentinel notification is
 * committed afterwards, and PostgreSQL delivers notifications in commit order.
 */
import t from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type PgBoss from 'pg-boss';
import type { FastifyInstance } from 'fastify';
import { AdminAuth, mintAdminToken } from '../src/auth/admin-jwt.js';
import { createPool, withTransaction } from '../src/db/pool.js';
import { createLogger } from '../src/logger.js';
import { startBoss } from '../src/queue/boss.js';
import { JobWakeups } from '../src/queue/job-wakeups.js';
import { ScanRunner } from '../src/scan/runner.js';
import { insertScanJob, SCAN_READY_CHANNEL, type ScanJobData } from '../src/scan/scan-jobs.js';
import { ScanService } from '../src/scan/scans.js';
import type { ScanRecord } from '../src/scan/scan-repo.js';
import { ScanWorkers } from '../src/scan/worker.js';
import { TaskRegistry } from '../src/tasks/registry.js';
import { buildTestApp } from './support/app.js';
import { FakeLister } from './support/fake-lister.js';
import { FakeStores, numbered, slowed } from './support/fake-stores.js';
import { eventually } from './support/service.js';
import { startStack, testTask, type Stack } from './support/stack.js';

const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');
const LONG_POLL = 30;
const secret = randomBytes(32).toString('hex');

let stack: Stack;
let scans: ScanService;
const stores = new FakeStores();
/** "Another process": its own pool, pg-boss and admin API on the same database. */
let otherPool: pg.Pool;
let otherBoss: PgBoss;
let otherApp: FastifyInstance;
/** A plain LISTEN on the scan channel, to count what is sent. */
let observer: pg.Client;
const observed: string[] = [];

t.before(async () => {
  stack = await startStack({ tasks: ['notify', 'wake', 'poll', 'busy', 'behind', 'resume', 'held', 'throws'].map((id) => testTask(id)) });
  scans = new ScanService(stack.pool, stack.boss, stack.tasks, log);
  stores.set('wake', numbered(50), numbered(40));
  stores.set('poll', numbered(50), numbered(40));
  stores.set('busy', slowed(new FakeLister('busy-src', numbered(400)), () => 60), numbered(400));
  stores.set('behind', numbered(30), numbered(30));
  stores.set('resume', slowed(new FakeLister('resume-src', numbered(3000)), () => 20), numbered(2990));
  stores.set('held', numbered(20), numbered(10));
  otherPool = createPool(stack.db.url, 2);
  otherBoss = await startBoss(stack.db.url, log, undefined, { supervise: false, schedule: false });
  const otherTasks = new TaskRegistry(otherPool);
  await otherTasks.load();
  otherApp = await buildTestApp({
    logger: log,
    pool: otherPool,
    boss: otherBoss,
    enqueuer: stack.enqueuer,
    tasks: otherTasks,
    admin: { auth: new AdminAuth({ secret }) },
    scans: new ScanService(otherPool, otherBoss, otherTasks, log),
  });
  observer = new pg.Client({ connectionString: stack.db.url });
  await observer.connect();
  observer.on('notification', (m) => observed.push(m.payload ?? ''));
  await observer.query(`LISTEN ${SCAN_READY_CHANNEL}`);
});

t.teardown(async () => {
  await observer?.end();
  await otherApp?.close();
  await otherBoss?.stop({ graceful: false, wait: true, timeout: 2_000 });
  await otherPool?.end();
  await stack?.close();
});

function runner(): ScanRunner {
  return new ScanRunner({ pool: stack.pool, boss: stack.boss, tasks: stack.tasks, stores, log, options: { progressIntervalMs: 50, pageSize: 10, chunkSize: 20 } });
}

/** Commit a sentinel notification and wait for it; return what the observer saw before it (and clear the list). */
async function drainObserved(): Promise<string[]> {
  const sentinel = `sentinel-${randomUUID()}`;
  await otherPool.query('SELECT pg_notify($1, $2)', [SCAN_READY_CHANNEL, sentinel]);
  await eventually(async () => (observed.includes(sentinel) ? true : undefined), 10_000, 'the sentinel notification');
  const before = observed.splice(0, observed.indexOf(sentinel));
  observed.splice(0, 1);
  return before;
}

/**
 * The scan workers' pg-boss with its fetches counted (so a test can wait
 * until the dispatcher has fetched and is asleep for its poll) and, while
 * `hold` is set, every fetch that took a job kept from returning until it is
 * released: a fetch in flight, on demand.
 */
function instrumented(boss: PgBoss) {
  const fetches = { started: 0, finished: 0 };
  let hold: { promise: Promise<void>; release: () => void } | undefined;
  let held = 0;
  const wrapped = Object.create(boss) as PgBoss;
  const fetch = async (name: string, options: PgBoss.FetchOptions): Promise<PgBoss.Job<ScanJobData>[]> => {
    fetches.started++;
    try {
      const jobs = await boss.fetch<ScanJobData>(name, options);
      if (hold && jobs.length > 0) {
        held++;
        await hold.promise;
      }
      return jobs;
    } finally {
      fetches.finished++;
    }
  };
  (wrapped as unknown as { fetch: typeof fetch }).fetch = fetch;
  return {
    boss: wrapped,
    fetches,
    held: () => held,
    hold() {
      let release!: () => void;
      const promise = new Promise<void>((r) => (release = r));
      hold = { promise, release };
    },
    release() {
      hold?.release();
      hold = undefined;
    },
    /** The dispatcher has fetched at least `n` times and has no fetch running: it sleeps until woken or polled. */
    async asleep(n: number): Promise<void> {
      await eventually(async () => (fetches.started >= n && fetches.started === fetches.finished ? true : undefined), 10_000, 'the dispatcher asleep');
      await new Promise((r) => setImmediate(r));
    },
  };
}

async function finished(taskId: string, id: string, timeoutMs = 20_000): Promise<ScanRecord> {
  return eventually(async () => {
    const s = await scans.get(taskId, id);
    return s && s.state !== 'queued' && s.state !== 'running' ? s : undefined;
  }, timeoutMs, `scan ${id} of ${taskId} to finish`);
}

async function job(id: string): Promise<{ state: string; output: unknown } | undefined> {
  const { rows } = await stack.pool.query<{ state: string; output: unknown }>(`SELECT state, output FROM pgboss.job WHERE name = 'bb-scan' AND id = $1`, [id]);
  return rows[0];
}

const ms = (a: Date, b: Date) => b.getTime() - a.getTime();

t.test('every bb-scan insert notifies in its transaction; a skipped or rolled-back one does not', async (t) => {
  await drainObserved();
  const first = await scans.request('notify', undefined, 'api');
  t.equal(first.started, true);
  t.same(await drainObserved(), [''], 'a queued request: one notification, empty payload');
  const skipped = await scans.request('notify', undefined, 'api');
  t.equal(skipped.started, false);
  t.same(await drainObserved(), [], 'a skipped request: none (no job)');
  await t.rejects(
    withTransaction(stack.pool, async (client) => {
      await insertScanJob(stack.boss, client, randomUUID(), first.scan.id);
      throw new Error('rolled back');
    }),
    /rolled back/,
  );
  t.same(await drainObserved(), [], 'a rolled-back insert: none');
  // The sweep re-queues a queued scan whose job is gone, with a new job.
  const sweeper = new ScanService(stack.pool, stack.boss, stack.tasks, log, { staleAfterSeconds: 1 });
  await stack.pool.query(`DELETE FROM pgboss.job WHERE id = $1`, [first.scan.jobId]);
  await stack.pool.query(`UPDATE bb_scans SET created_at = now() - interval '10 seconds' WHERE id = $1`, [first.scan.id]);
  t.equal((await sweeper.sweep()).requeued, 1);
  t.same(await drainObserved(), [''], 'a re-queue by the sweep: one');
  await scans.cancel('notify', first.scan.id);
});

/** Scan workers on the 30 s poll, woken by a listener of their own on the scan channel; both stopped at teardown. */
async function listeningWorkers(t: { teardown(fn: () => Promise<void>): void }, concurrency: number, boss: PgBoss = stack.boss): Promise<{ workers: ScanWorkers; wakeups: JobWakeups }> {
  const workers = new ScanWorkers(boss, runner(), log, { concurrency, pollingIntervalSeconds: LONG_POLL });
  const wakeups = new JobWakeups({ connectionString: stack.db.url, log, channel: SCAN_READY_CHANNEL, onWake: () => workers.nudge() });
  await workers.start();
  await wakeups.start();
  t.teardown(async () => {
    await wakeups.close();
    await workers.stop();
  });
  return { workers, wakeups };
}

t.test('a scan requested through the admin API of another process starts at once, not at the next 30 s poll', async (t) => {
  const inst = instrumented(stack.boss);
  const { wakeups } = await listeningWorkers(t, 2, inst.boss);
  t.ok(wakeups.listening);
  // The fetch at start and the one after LISTEN: then only a wake or the 30 s poll fetches again.
  await inst.asleep(2);
  const before = inst.fetches.started;
  const token = await mintAdminToken({ secret, scopes: ['bb:read', 'bb:write'], ttlSeconds: 600 });
  const res = await otherApp.inject({ method: 'POST', url: '/admin/tasks/wake/scans', headers: { authorization: `Bearer ${token}` } });
  t.equal(res.statusCode, 202, res.body);
  const id = res.json().id as string;
  const done = await finished('wake', id);
  t.equal(done.state, 'completed');
  t.equal(done.counters.missing, 10);
  const wait = ms(done.createdAt, done.startedAt!);
  t.ok(wait < 5_000, `started ${wait} ms after it was recorded (poll: ${LONG_POLL} s)`);
  t.ok(inst.fetches.started > before, 'fetched after the request');
  t.ok(wakeups.stats().notifications >= 1, 'woken by a notification');
  t.same(await job(done.jobId!), { state: 'completed', output: { state: 'completed' } }, 'the job completed with the scan state as output, as work() did');
});

t.test('with no listener the fallback poll still runs the scan', async (t) => {
  const inst = instrumented(stack.boss);
  const workers = new ScanWorkers(inst.boss, runner(), log, { concurrency: 1, pollingIntervalSeconds: 0.5 });
  // A listener that is already closed: nothing nudges these workers.
  const wakeups = new JobWakeups({ connectionString: stack.db.url, log, channel: SCAN_READY_CHANNEL, onWake: () => workers.nudge() });
  await wakeups.start();
  await wakeups.close();
  await workers.start();
  t.teardown(() => workers.stop());
  await inst.asleep(1);
  const { scan } = await scans.request('poll', undefined, 'api');
  const done = await finished('poll', scan.id);
  t.equal(done.state, 'completed');
  t.equal(wakeups.stats().notifications, 0, 'no notification reached the closed listener');
  t.ok(inst.fetches.started >= 2, `found by polling (${inst.fetches.started} fetches)`);
});

t.test('a scan announced while every slot is busy starts as soon as the slot frees', async (t) => {
  const { workers, wakeups } = await listeningWorkers(t, 1);
  const busy = await scans.request('busy', undefined, 'api');
  await eventually(async () => ((await scans.get('busy', busy.scan.id))?.state === 'running' ? true : undefined), 10_000, 'busy running');
  t.equal(workers.activeScans, 1, 'the only slot is taken');
  const seen = wakeups.stats().notifications;
  const behind = await scans.request('behind', undefined, 'api');
  await eventually(async () => (wakeups.stats().notifications > seen ? true : undefined), 10_000, 'the notification of the second scan');
  t.equal((await scans.get('behind', behind.scan.id))?.state, 'queued', 'announced while the slot was busy: still queued');
  const first = await finished('busy', busy.scan.id);
  const second = await finished('behind', behind.scan.id);
  t.equal(first.state, 'completed');
  t.equal(second.state, 'completed');
  const gap = ms(first.finishedAt!, second.startedAt!);
  t.ok(gap < 5_000, `started ${gap} ms after the slot freed (poll: ${LONG_POLL} s)`);
});

t.test('stop() hands a running scan back; another ScanWorkers, woken by the hand-back, resumes it', async (t) => {
  const a = new ScanWorkers(stack.boss, runner(), log, { concurrency: 1, pollingIntervalSeconds: 0.5 });
  await a.start();
  t.teardown(() => a.stop());
  const { scan } = await scans.request('resume', undefined, 'api');
  await eventually(async () => ((await scans.get('resume', scan.id))?.counters.sourceKeys ?? 0) >= 300 || undefined, 20_000, 'some progress');
  // B listens from now on: it has nothing to fetch until A hands the scan back.
  const inst = instrumented(stack.boss);
  const { workers: b } = await listeningWorkers(t, 1, inst.boss);
  await inst.asleep(2);
  t.equal(b.activeScans, 0);
  await drainObserved();
  t.equal(a.activeScans, 1);
  await a.stop();
  t.equal(a.activeScans, 0, 'stop() waited for the scan to be handed back');
  t.same(await drainObserved(), [''], 'the hand-back announced its new job');
  const old = await job(scan.jobId!);
  t.same(old, { state: 'completed', output: { state: 'queued' } }, 'the interrupted job completed with the handed-back state');
  const done = await finished('resume', scan.id);
  t.equal(done.state, 'completed');
  t.equal(done.attempts, 2, 'resumed by B');
  t.not(done.jobId, scan.jobId, 'through the new job');
  t.equal(done.counters.sourceKeys, 3000, 'every key counted once across the two runs');
  t.equal(done.counters.missing, 10);
  const handedBackAt = (await stack.pool.query<{ created_on: Date }>(`SELECT created_on FROM pgboss.job WHERE id = $1`, [done.jobId])).rows[0]!.created_on;
  const resumedAfter = (await stack.pool.query<{ ms: number }>(`SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM pgboss.job WHERE id = $1`, [done.jobId])).rows[0]!.ms;
  t.ok(handedBackAt && resumedAfter < 5_000, `B fetched the new job ${Math.round(resumedAfter)} ms after it was queued (poll: ${LONG_POLL} s)`);
});

t.test('stop() while a fetch is in flight puts the job it took back in the queue, unstarted', async (t) => {
  const inst = instrumented(stack.boss);
  const workers = new ScanWorkers(inst.boss, runner(), log, { concurrency: 1, pollingIntervalSeconds: 0.5 });
  await workers.start();
  t.teardown(() => workers.stop());
  await inst.asleep(1);
  inst.hold();
  const { scan } = await scans.request('held', undefined, 'api');
  await eventually(async () => (inst.held() > 0 ? true : undefined), 10_000, 'a fetch that took the job and has not returned');
  t.equal((await job(scan.jobId!))?.state, 'active', 'the job is taken');
  await drainObserved();
  const stopping = workers.stop();
  inst.release();
  await stopping;
  t.equal(workers.activeScans, 0, 'it did not start the scan');
  const after = (await scans.get('held', scan.id))!;
  t.equal(after.state, 'queued', 'the scan is still queued');
  t.equal(after.attempts, 0, 'never claimed');
  t.equal(after.jobId, scan.jobId, 'with the same job');
  t.equal((await job(scan.jobId!))?.state, 'created', 'which is runnable again');
  t.same(await drainObserved(), [''], 'and announced');
  const next = new ScanWorkers(stack.boss, runner(), log, { concurrency: 1, pollingIntervalSeconds: 0.5 });
  await next.start();
  t.teardown(() => next.stop());
  const done = await finished('held', scan.id);
  t.equal(done.state, 'completed');
  t.equal(done.attempts, 1);
});

t.test('a run that throws fails its job with the error, as work() did', async (t) => {
  const throwing = {
    run: async () => {
      throw new Error('runner exploded');
    },
    handBack: async () => {},
  } as unknown as ScanRunner;
  const workers = new ScanWorkers(stack.boss, throwing, log, { concurrency: 1, pollingIntervalSeconds: 0.5 });
  await workers.start();
  t.teardown(() => workers.stop());
  const { scan } = await scans.request('throws', undefined, 'api');
  const failed = await eventually(async () => {
    const j = await job(scan.jobId!);
    return j?.state === 'failed' ? j : undefined;
  }, 10_000, 'the job to fail');
  t.match(failed.output, { message: 'runner exploded' }, 'the error is the output');
  t.equal(workers.activeScans, 0);
  await scans.cancel('throws', scan.id);
});
