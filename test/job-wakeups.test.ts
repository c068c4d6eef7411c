/**
 * Job wake-ups through LISTEN/NOTIFY (src/queue/job-wakeups.ts) against a real
 * database: a job queued by another connection (its own pool and pg-boss, as
 * another process would) or through the group-commit intake wakes a worker
 * whose poll interval is 10 minutes, so only the wake-up can explain the copy
 * happening within the test's timeout; a rolled-back enqueue sends nothing; the
 * listener comes back after its connection is killed or the database is
 * unreachable for a while (logging once per outage) and wakes the workers
 * again; a storm of notifications makes one wake; close() leaves nothing behind;
 * the service starts its listeners (replicate and scan channels) only where
 * workers run.
 *
 * Negative checks ("nothing was sent") do not wait for a time: a sentinel
 * notification is committed afterwards, and PostgreSQL delivers notifications
 * in commit order, so once the sentinel has arrived anything sent before it
 * would have arrived too.
 */
import t from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import type PgBoss from 'pg-boss';
import { loadEnv } from '../src/config/env.js';
import { validateTask } from '../src/config/validate.js';
import { freePort } from '../src/db/embedded.js';
import { createPool } from '../src/db/pool.js';
import { createLogger } from '../src/logger.js';
import { DEFAULT_QUEUE_SETTINGS, startBoss } from '../src/queue/boss.js';
import { enqueueReplications, IntakeEnqueuer, type IntakeRequest } from '../src/queue/enqueue.js';
import { JobWakeups, REPLICATE_READY_CHANNEL } from '../src/queue/job-wakeups.js';
import { startService } from '../src/service.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase } from './support/postgres.js';
import { ossEndpoint, startReplication, type ReplicationHarness } from './support/replication.js';
import { testTask } from './support/stack.js';
import { startTcpProxy, viaProxy } from './support/tcp-proxy.js';

const TEN_MINUTES = 10 * 60_000;
const SRC = 'wake-src';
const DST = 'wake-dst';

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  // A state to reach, not a time to wait: the file's tap timeout bounds it.
  while (!(await condition())) await new Promise((r) => setTimeout(r, 10));
  t.comment(`reached: ${what}`);
}

/** A pino logger whose lines land in an array. */
function capturingLogger(level = 'debug') {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { level: number; msg: string });
      done();
    },
  });
  return { log: createLogger(level, sink), lines };
}

let oss: OssServer;
let h: ReplicationHarness;
/** "Another process": its own pool and pg-boss on the same database. */
let otherPool: pg.Pool;
let otherBoss: PgBoss;
/** The listener of the workers under test, routed to workers.nudge(). */
let wakeups: JobWakeups;
let wakeLog: ReturnType<typeof capturingLogger>;
/** A plain LISTEN on the channel, to count what is sent. */
let observer: pg.Client;
const observed: string[] = [];
/** Fetches the dispatcher ran (instrumented pool.query of the harness). */
const fetches = { started: 0, finished: 0 };

t.before(async () => {
  oss = await startOssServer({ buckets: [SRC, DST] });
  h = await startReplication({
    tasks: [{ id: 'w', source: ossEndpoint(oss.endpoint, SRC), destination: ossEndpoint(oss.endpoint, DST) }],
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    pollIntervalMs: TEN_MINUTES,
  });
  const query = h.pool.query.bind(h.pool) as (...args: unknown[]) => Promise<unknown>;
  (h.pool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = (...args: unknown[]) => {
    const p = query(...args);
    if ((args[0] as { name?: string } | undefined)?.name === 'bb-replicate-fetch') {
      fetches.started++;
      const done = () => void fetches.finished++;
      p.then(done, done);
    }
    return p;
  };
  otherPool = createPool(h.db.url, 2);
  otherBoss = await startBoss(h.db.url, createLogger('silent'), { ...DEFAULT_QUEUE_SETTINGS, retryLimit: 3, retryDelaySeconds: 0 }, { supervise: false, schedule: false });
  wakeLog = capturingLogger();
  wakeups = new JobWakeups({ connectionString: h.db.url, log: wakeLog.log, onWake: () => h.workers.nudge(), reconnectMinMs: 20, reconnectMaxMs: 200 });
  await wakeups.start();
  observer = new pg.Client({ connectionString: h.db.url });
  await observer.connect();
  observer.on('notification', (m) => observed.push(m.payload ?? ''));
  await observer.query(`LISTEN ${REPLICATE_READY_CHANNEL}`);
  // The dispatcher's first fetch ran before the instrumentation: nudge until one is seen to finish.
  await until('a fetch was counted', () => {
    h.workers.nudge();
    return fetches.finished > 0;
  });
});
t.teardown(async () => {
  await wakeups.close();
  await observer.end();
  await otherBoss.stop({ graceful: false, wait: true, timeout: 2_000 });
  await otherPool.end();
  await h.close();
  await oss.close();
});

/** Wait until the dispatcher has no fetch running: it is then asleep for its 10-minute poll. */
async function dispatcherAsleep(): Promise<void> {
  await until('the dispatcher is asleep', () => fetches.started > 0 && fetches.started === fetches.finished && h.workers.activeJobs === 0);
  await new Promise((r) => setImmediate(r));
  t.equal(fetches.started, fetches.finished, 'no fetch is running');
}

/** Commit a sentinel notification and wait for it; return what the observer saw before it (and clear the list). */
async function drainObserved(): Promise<string[]> {
  const sentinel = `sentinel-${randomUUID()}`;
  await otherPool.query('SELECT pg_notify($1, $2)', [REPLICATE_READY_CHANNEL, sentinel]);
  await until('the sentinel notification arrived', () => observed.includes(sentinel));
  const before = observed.splice(0, observed.indexOf(sentinel));
  observed.splice(0, 1);
  return before;
}

async function copied(key: string): Promise<void> {
  await until(`${key} is on the destination`, () => oss.getObject(DST, key) !== undefined);
  const row = await h.settled('w', key);
  t.equal(row.status, 'completed', `${key} completed`);
}

/** Enqueue-to-start of a job, on the database's clock (pg-boss's created_on and started_on). */
async function pickupMs(key: string): Promise<number> {
  const { rows } = await h.pool.query<{ ms: number }>(
    `SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM pgboss.job WHERE name = 'bb-replicate' AND data->>'key' = $1`,
    [key],
  );
  return Number(rows[0]?.ms);
}

function intakeRequest(key: string, signatureHash: Buffer = randomBytes(32)): IntakeRequest {
  const requestId = randomUUID();
  return {
    jobs: [{ taskId: 'w', key, trigger: 'event', kind: 'created' }],
    entry: { requestId, sender: 'fn', taskId: 'w', format: 's3', ignored: 0, signatureHash },
    answer: (c) => ({ requestId, accepted: c.accepted, duplicates: c.duplicates }),
  };
}

t.test('a job queued from another connection wakes a worker whose poll interval is 10 minutes', async (t) => {
  t.ok(wakeups.listening, 'the listener is listening');
  await oss.client(SRC).put('other/a.txt', Buffer.from('queued elsewhere'));
  await dispatcherAsleep();
  const fetchesBefore = fetches.started;
  const r = await enqueueReplications(otherBoss, otherPool, [{ taskId: 'w', key: 'other/a.txt', trigger: 'event', kind: 'created' }]);
  t.equal(r.accepted, 1, 'queued by the other pool');
  await copied('other/a.txt');
  t.same(oss.getObject(DST, 'other/a.txt')?.body.toString(), 'queued elsewhere');
  t.ok(fetches.started > fetchesBefore, 'the dispatcher fetched again before its poll was due');
  t.ok(wakeups.stats().notifications >= 1, 'the listener received the notification');
  t.comment(`enqueue-to-start (pg-boss created_on -> started_on): ${(await pickupMs('other/a.txt')).toFixed(1)} ms`);
  t.same(await drainObserved(), [''], 'one notification, empty payload');

  // A key that is already queued (here a job deferred by an hour) makes the enqueue a duplicate: nothing sent.
  await otherBoss.send('bb-replicate', { taskId: 'w', key: 'other/dup.txt', trigger: 'event' }, { singletonKey: 'w:other/dup.txt', startAfter: 3600 });
  const dup = await enqueueReplications(otherBoss, otherPool, [{ taskId: 'w', key: 'other/dup.txt', trigger: 'event' }]);
  t.equal(dup.duplicates, 1, 'the enqueue of a queued key is a duplicate');
  t.same(await drainObserved(), [], 'an enqueue that queued nothing sends nothing');
  await otherPool.query(`DELETE FROM pgboss.job WHERE name = 'bb-replicate' AND data->>'key' = 'other/dup.txt'`);
});

t.test('the group-commit intake notifies (at most once per window, not per statement or request), and wakes the worker', async (t) => {
  const enqueuer = await IntakeEnqueuer.create(otherBoss, otherPool);
  t.teardown(() => enqueuer.close());
  const keys = Array.from({ length: 12 }, (_, i) => `intake/${i}.txt`);
  for (const key of keys) await oss.client(SRC).put(key, Buffer.from(`body of ${key}`));
  await dispatcherAsleep();
  const before = enqueuer.stats();
  const sig = randomBytes(32);
  const outcomes = await Promise.all(keys.map((key, i) => enqueuer.submit(intakeRequest(key, i === 0 ? sig : undefined))));
  t.ok(outcomes.every((o) => !o.replayed && o.accepted === 1), 'every request queued its key');
  const batches = enqueuer.stats().batches - before.batches;
  t.ok(batches >= 1 && batches < keys.length, `12 requests in ${batches} statements`);
  // Copied before the sentinel below is sent: that one would wake the workers too.
  for (const key of keys) await copied(key);
  // A statement within the enqueuer's notify window is announced by a trailing notify (test/intake-wakeups.test.ts).
  await until('no trailing notify is due', () => !enqueuer.wakeStats().pending);
  const wakes = enqueuer.wakeStats();
  const sent = await drainObserved();
  t.same(sent, Array(wakes.inStatement + wakes.trailing).fill(''), 'the notifications the enqueuer sent, empty payload');
  t.ok(sent.length >= 1 && sent.length <= batches, `${sent.length} notification(s) for ${batches} statement(s) of 12 requests`);
  const picks = await Promise.all(keys.map(pickupMs));
  t.comment(`enqueue-to-start of the intake's jobs: max ${Math.max(...picks).toFixed(1)} ms`);

  // A replay (same signature) queues nothing and sends nothing.
  const replay = await enqueuer.submit(intakeRequest(keys[0]!, sig));
  t.equal(replay.replayed, true, 'the same signature is a replay');
  t.same(await drainObserved(), [], 'a statement that queued no job sends nothing');
});

t.test('a rolled-back enqueue does not notify (a commit-time failure, after the notify ran)', async (t) => {
  // A deferred constraint trigger fails the transaction at COMMIT, i.e. after the job INSERT and the
  // pg_notify have run inside it: the strictest place for "delivered only if it commits".
  await otherPool.query(`
    CREATE FUNCTION bb_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.data->>'key' LIKE 'poison/%' THEN RAISE EXCEPTION 'poisoned key %', NEW.data->>'key'; END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER bb_test_poison AFTER INSERT ON pgboss.job DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION bb_test_poison();`);
  t.teardown(() => otherPool.query('DROP TRIGGER bb_test_poison ON pgboss.job; DROP FUNCTION bb_test_poison();'));
  t.same(await drainObserved(), [], 'nothing pending');

  await t.rejects(
    enqueueReplications(otherBoss, otherPool, [{ taskId: 'w', key: 'poison/a', trigger: 'event' }]),
    /poisoned key/,
    'enqueueReplications fails at commit',
  );
  const enqueuer = await IntakeEnqueuer.create(otherBoss, otherPool);
  t.teardown(() => enqueuer.close());
  await t.rejects(enqueuer.submit(intakeRequest('poison/b')), /poisoned key/, 'the intake statement fails at commit');
  const { rows } = await otherPool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE data->>'key' LIKE 'poison/%'`);
  t.equal(rows[0]!.n, 0, 'nothing was queued');
  t.same(await drainObserved(), [], 'and nothing was sent');

  // Control: the same paths commit and notify once the poison is gone.
  const ok = await enqueueReplications(otherBoss, otherPool, [{ taskId: 'w', key: 'control/a', trigger: 'event' }]);
  t.equal(ok.accepted, 1);
  t.same(await drainObserved(), [''], 'a committed enqueue notifies');
  await h.settled('w', 'control/a');
});

t.test('the listener survives pg_terminate_backend of its connection and still wakes the workers', async (t) => {
  const before = wakeups.stats();
  const warnsBefore = wakeLog.lines.filter((l) => l.level === 40).length;
  const { rows } = await otherPool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'bucketbridge-wakeups'`,
  );
  t.equal(rows.length, 1, 'one listener connection');
  const { rows: killed } = await otherPool.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [rows[0]!.pid]);
  t.equal(killed[0]!.ok, true, 'terminated');
  await until('the listener reconnected', () => wakeups.listening && wakeups.stats().connections === before.connections + 1);
  t.ok(wakeups.stats().failures > before.failures, 'the loss was seen');
  // (a wake may be held back for up to minWakeIntervalMs after the previous one)
  await until('the reconnection woke the workers (jobs may have been queued meanwhile)', () => wakeups.stats().wakes > before.wakes);
  const warns = wakeLog.lines.filter((l) => l.level === 40).slice(warnsBefore);
  t.equal(warns.length, 1, 'one warning for the outage');
  t.match(warns[0]?.msg, /no database connection; workers poll/);
  t.ok(wakeLog.lines.some((l) => l.level === 30 && /is back/.test(l.msg)), 'and one line when it is back');
  const { rows: after } = await otherPool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'bucketbridge-wakeups'`,
  );
  t.equal(after.length, 1, 'one listener connection again');
  t.not(after[0]!.pid, rows[0]!.pid, 'a new one');

  await oss.client(SRC).put('after-kill.txt', Buffer.from('after the reconnect'));
  await dispatcherAsleep();
  const fetchesBefore = fetches.started;
  await enqueueReplications(otherBoss, otherPool, [{ taskId: 'w', key: 'after-kill.txt', trigger: 'event', kind: 'created' }]);
  await copied('after-kill.txt');
  t.ok(fetches.started > fetchesBefore, 'woken by the new connection');
});

t.test('an outage with failed reconnects is logged once; the listener is back when the database is', async (t) => {
  const proxy = await startTcpProxy(Number(new URL(h.db.url).port));
  t.teardown(() => proxy.close());
  const { log, lines } = capturingLogger();
  let wakes = 0;
  const w = new JobWakeups({ connectionString: viaProxy(h.db.url, proxy), log, onWake: () => wakes++, reconnectMinMs: 10, reconnectMaxMs: 50 });
  t.teardown(() => w.close());
  await w.start();
  t.ok(w.listening);
  t.equal(wakes, 1, 'one wake after the first LISTEN');
  await proxy.cut();
  await until('several reconnects failed', () => w.stats().failures >= 4);
  t.notOk(w.listening, 'not listening while the database is unreachable');
  await proxy.restore();
  await until('listening again', () => w.listening);
  t.equal(lines.filter((l) => l.level === 40).length, 1, `one warning for an outage of ${w.stats().failures} failures`);
  t.equal(lines.filter((l) => l.level === 30 && /is back/.test(l.msg)).length, 1, 'one line when it is back');
  t.notOk(lines.some((l) => l.level >= 50), 'nothing at error level');
  await until('a wake after the reconnect', () => wakes === 2);
  await otherPool.query('SELECT pg_notify($1, $2)', [REPLICATE_READY_CHANNEL, '']);
  await until('the notification arrived through the new connection', () => w.stats().notifications === 1);
  const flat = JSON.stringify(lines);
  const password = new URL(h.db.url).password;
  if (password) t.notOk(flat.includes(password), 'no password in the logs');
});

t.test('a storm of notifications makes one wake per interval, not one per notification', async (t) => {
  let wakes = 0;
  const w = new JobWakeups({ connectionString: h.db.url, log: createLogger('silent'), onWake: () => wakes++, minWakeIntervalMs: 60_000 });
  await w.start();
  t.equal(wakes, 1, 'the wake after LISTEN');
  // 1,000 distinct payloads in one transaction (identical ones would be collapsed by PostgreSQL).
  await otherPool.query('SELECT pg_notify($1, i::text) FROM generate_series(1, 1000) i', [REPLICATE_READY_CHANNEL]);
  await until('1,000 notifications received', () => w.stats().notifications === 1000);
  t.equal(wakes, 1, 'all of them joined one pending (trailing) wake');
  await w.close();
  t.equal(wakes, 1, 'close() dropped the pending wake');

  let fast = 0;
  const f = new JobWakeups({ connectionString: h.db.url, log: createLogger('silent'), onWake: () => fast++ });
  t.teardown(() => f.close());
  await f.start();
  await otherPool.query('SELECT pg_notify($1, i::text) FROM generate_series(1, 1000) i', [REPLICATE_READY_CHANNEL]);
  await until('1,000 more received', () => f.stats().notifications === 1000);
  await until('the trailing wake came', () => fast >= 2);
  t.ok(fast <= 10, `${fast} wakes for 1,000 notifications`);
  await drainObserved(); // the observer saw both storms
});

t.test('close() stops it cleanly: no connection, no wake, no reconnect, idempotent', async (t) => {
  const countListeners = async () =>
    (
      await otherPool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'bucketbridge-wakeups'`,
      )
    ).rows[0]!.n;
  const base = await countListeners();
  let wakes = 0;
  const w = new JobWakeups({ connectionString: h.db.url, log: createLogger('silent'), onWake: () => wakes++ });
  await w.start();
  t.equal(await countListeners(), base + 1, 'its connection is open');
  await w.close();
  t.notOk(w.listening);
  await until('its connection is gone', async () => (await countListeners()) === base);
  await drainObserved(); // a committed notification that the closed listener must not see
  t.equal(w.stats().notifications, 0, 'nothing received after close');
  t.equal(wakes, 1, 'only the wake after LISTEN');
  await w.close();
  await w.start();
  t.notOk(w.listening, 'start() after close() does nothing');
  t.equal(await countListeners(), base);

  // Closed in the middle of an outage: the pending reconnect is cancelled.
  const proxy = await startTcpProxy(Number(new URL(h.db.url).port));
  t.teardown(() => proxy.close());
  const o = new JobWakeups({ connectionString: viaProxy(h.db.url, proxy), log: createLogger('silent'), onWake: () => {}, reconnectMinMs: 10, reconnectMaxMs: 20 });
  await o.start();
  await proxy.cut();
  await until('reconnecting', () => o.stats().failures >= 2);
  await o.close();
  await proxy.restore();
  // Negative check: with reconnects every 10-20 ms, a surviving timer would reconnect within this wait.
  await new Promise((r) => setTimeout(r, 500));
  t.equal(o.stats().connections, 1, 'no reconnect after close()');
  t.equal(await countListeners(), base, 'no connection left');

  // A database that cannot be reached at start: start() resolves, the service goes on polling.
  const dead = await startTcpProxy(Number(new URL(h.db.url).port));
  await dead.cut();
  t.teardown(() => dead.close());
  const d = new JobWakeups({ connectionString: viaProxy(h.db.url, dead), log: createLogger('silent'), onWake: () => {}, reconnectMinMs: 10, reconnectMaxMs: 20 });
  await d.start();
  t.notOk(d.listening, 'start() resolved without a connection');
  await d.close();
});

t.test('the service listens only where workers run, and closes the listener on stop', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const listeners = async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'bucketbridge-wakeups'`)).rows[0]!.n;
    } finally {
      await c.end();
    }
  };
  const start = async (workers: boolean) => {
    const config = {
      env: loadEnv({ DATABASE_URL: db.url, PORT: String(await freePort()), BB_WORKERS: String(workers), BB_SHUTDOWN_GRACE_MS: '1000' }),
      file: { tasks: [validateTask(testTask('svc-task'), 'tasks[0]')], senders: [] },
    };
    return startService(config as Parameters<typeof startService>[0], createLogger('silent'));
  };
  const withWorkers = await start(true);
  t.equal(await listeners(), 2, 'a worker process listens (one connection for replicate jobs, one for scans)');
  await withWorkers.stop();
  await until('stop() closed it', async () => (await listeners()) === 0);
  const intakeOnly = await start(false);
  t.equal(await listeners(), 0, 'an intake-only process does not');
  await intakeOnly.stop();
});
