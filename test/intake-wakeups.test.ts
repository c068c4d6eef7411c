/**
 * The intake's throttled wake-up notifications (IntakeEnqueuer, "Wake-ups", in
 * src/queue/enqueue.ts) against a real database: a burst of requests sends far
 * fewer notifications than it runs statements, at most one per window, and the
 * last one arrives when every job of the burst is visible; an isolated request
 * is announced by its own statement (the leading edge); a request within the
 * window of a previous notify is announced by a trailing notify at the end of
 * the window, after its statement committed; close() sends a trailing notify
 * that is still due at once; a failed trailing notify is logged and the intake
 * carries on.
 *
 * A plain LISTEN client records each notification with its arrival time and,
 * at once, how many of the test's jobs a fresh query on another connection can
 * see then: a worker woken by that notification would see no more. "Which
 * notifications were sent" is read without waiting for a time: the test waits
 * until the enqueuer has no trailing notify due, then commits a sentinel
 * notification; PostgreSQL delivers notifications in commit order, so once the
 * sentinel has arrived, everything sent before it has too. Timing assertions
 * are lower bounds only (a timer never fires early for the enqueuer, by its own
 * check) or bounds computed from the measured elapsed time.
 */
import t from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { createLogger } from '../src/logger.js';
import { IntakeEnqueuer, type IntakeOutcome, type IntakeRequest } from '../src/queue/enqueue.js';
import { NOTIFY_REPLICATE_READY_SQL, REPLICATE_READY_CHANNEL } from '../src/queue/job-wakeups.js';
import { startStack, testTask, type Stack } from './support/stack.js';

let stack: Stack;
let direct: pg.Pool;
let observer: pg.Client;
/** Counts jobs when a notification arrives: its own connection, so the count is not queued behind other queries. */
let counter: pg.Client;

interface Seen {
  /** performance.now() when the notification was received. */
  at: number;
  payload: string;
  /** Jobs whose key starts with the current test's prefix, as a query sent on arrival saw them. */
  jobs: Promise<number>;
}
const seen: Seen[] = [];
let prefix = '';

t.before(async () => {
  stack = await startStack({ tasks: [testTask('photos')] });
  direct = new pg.Pool({ connectionString: stack.db.url, max: 2 });
  counter = new pg.Client({ connectionString: stack.db.url });
  await counter.connect();
  observer = new pg.Client({ connectionString: stack.db.url });
  await observer.connect();
  observer.on('notification', (m) => {
    if (m.channel !== REPLICATE_READY_CHANNEL) return;
    const at = performance.now();
    const jobs = counter
      .query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'bb-replicate' AND data->>'key' LIKE $1`, [`${prefix}%`])
      .then((r) => r.rows[0]!.n);
    jobs.catch(() => undefined); // awaited by the test that needs it
    seen.push({ at, payload: m.payload ?? '', jobs });
  });
  await observer.query(`LISTEN ${REPLICATE_READY_CHANNEL}`);
});
t.teardown(async () => {
  await observer.end();
  await counter.end();
  await direct.end();
  await stack.close();
});

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  // A state to reach, not a time to wait: the file's tap timeout bounds it.
  while (!(await condition())) await new Promise((r) => setTimeout(r, 5));
  t.comment(`reached: ${what}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Once the enqueuer has no trailing notify due: every notification it sent, in arrival order (and the list is cleared). */
async function sentBy(enqueuer: IntakeEnqueuer): Promise<Seen[]> {
  await until('no trailing notify is due', () => !enqueuer.wakeStats().pending);
  const sentinel = `sentinel-${randomUUID()}`;
  await direct.query('SELECT pg_notify($1, $2)', [REPLICATE_READY_CHANNEL, sentinel]);
  await until('the sentinel notification arrived', () => seen.some((s) => s.payload === sentinel));
  const index = seen.findIndex((s) => s.payload === sentinel);
  const before = seen.splice(0, index + 1);
  before.pop();
  return before;
}

function intakeRequest(key: string): IntakeRequest {
  const requestId = randomUUID();
  return {
    jobs: [{ taskId: 'photos', key, trigger: 'event', kind: 'created' }],
    entry: { requestId, sender: 'fn', taskId: 'photos', format: 's3', ignored: 0, signatureHash: randomBytes(32) },
    answer: (c) => ({ requestId, accepted: c.accepted, duplicates: c.duplicates }),
  };
}

const accepted = (o: IntakeOutcome) => !o.replayed && o.accepted === 1;

t.test('a burst of 400 requests at concurrency 64: far fewer notifications than statements, and the last one after the last commit', async (t) => {
  const W = 20;
  // maxBatch 8: at least 50 statements, so the throttle has something to throttle.
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool, { maxBatch: 8, notifyWindowMs: W });
  t.teardown(() => enqueuer.close());
  prefix = 'burst/';
  const N = 400;
  const outcomes: IntakeOutcome[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < N) outcomes.push(await enqueuer.submit(intakeRequest(`burst/${next++}`)));
    }),
  );
  const allAnswered = performance.now();
  t.equal(outcomes.filter(accepted).length, N, 'every request queued its key');
  const statements = enqueuer.stats().batches;
  const sent = await sentBy(enqueuer);
  const wakes = enqueuer.wakeStats();
  const last = sent[sent.length - 1];
  const elapsed = (last?.at ?? performance.now()) - start;
  t.comment(
    `${N} requests in ${statements} statements over ${(allAnswered - start).toFixed(0)} ms: ${sent.length} notifications ` +
      `(${wakes.inStatement} in a statement, ${wakes.trailing} trailing), last one ${elapsed.toFixed(0)} ms after the first submit`,
  );
  t.ok(statements >= N / 8, `${statements} statements`);
  t.equal(sent.length, wakes.inStatement + wakes.trailing, 'what arrived is what the enqueuer sent');
  t.ok(sent.every((s) => s.payload === ''), 'empty payloads');
  t.equal(wakes.trailingFailed, 0, 'no trailing notify failed');
  t.ok(statements - wakes.inStatement > 0, 'statements inside a window ran without the notify');
  t.ok(sent.length >= 1, 'at least one notification');
  t.ok(sent.length <= statements, `no more notifications (${sent.length}) than statements (${statements})`);
  // Every notify (in a statement or trailing) is issued at least W after the previous one, all of
  // them between the first submit and the last arrival.
  const bound = Math.ceil(elapsed / W) + 2;
  t.ok(sent.length <= bound, `${sent.length} notifications ≤ ${bound}: at most one per ${W} ms window over ${elapsed.toFixed(0)} ms`);
  // No lost wake: a worker woken by the last notification sees every job of the burst.
  t.equal(await last!.jobs, N, 'every job of the burst was visible when the last notification arrived');
});

t.test('an isolated request: exactly one notification, sent by its own statement (the leading edge)', async (t) => {
  const W = 20;
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool, { notifyWindowMs: W });
  t.teardown(() => enqueuer.close());
  prefix = 'single/';
  t.ok(accepted(await enqueuer.submit(intakeRequest('single/a'))), 'queued');
  t.same(enqueuer.wakeStats(), { inStatement: 1, trailing: 0, trailingFailed: 0, pending: false }, 'notified in its statement, nothing due');
  let sent = await sentBy(enqueuer);
  t.equal(sent.length, 1, 'exactly one notification');
  t.equal(await sent[0]!.jobs, 1, 'its job visible when it arrived');

  // Isolated again: more than the window after the last notify (a sleep sets a lower bound only).
  await sleep(3 * W);
  t.ok(accepted(await enqueuer.submit(intakeRequest('single/b'))), 'queued');
  t.same(enqueuer.wakeStats(), { inStatement: 2, trailing: 0, trailingFailed: 0, pending: false }, 'its own statement again');
  sent = await sentBy(enqueuer);
  t.equal(sent.length, 1, 'exactly one notification');
  t.equal(await sent[0]!.jobs, 2, 'both jobs visible when it arrived');
  await enqueuer.close();
  t.same(await sentBy(enqueuer), [], 'close() has nothing more to send');
});

t.test('a request within the window of a previous notify is announced by the trailing notify, after its commit', async (t) => {
  // A long window, so that the second request certainly falls inside it (the test then lasts W).
  const W = 2_000;
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool, { notifyWindowMs: W });
  t.teardown(() => enqueuer.close());
  prefix = 'trailing/';
  const start = performance.now();
  t.ok(accepted(await enqueuer.submit(intakeRequest('trailing/a'))), 'a queued (leading edge)');
  t.ok(accepted(await enqueuer.submit(intakeRequest('trailing/b'))), 'b queued');
  const bCommitted = performance.now();
  t.same(enqueuer.wakeStats(), { inStatement: 1, trailing: 0, trailingFailed: 0, pending: true }, "b's statement did not notify; a trailing notify is due");
  const sent = await sentBy(enqueuer);
  t.same(enqueuer.wakeStats(), { inStatement: 1, trailing: 1, trailingFailed: 0, pending: false });
  t.equal(sent.length, 2, "a's notification and the trailing one");
  const trailing = sent[1]!;
  t.ok(trailing.at >= bCommitted, "the trailing notification arrived after b's statement committed");
  t.ok(trailing.at >= start + W, `at the end of the window (${(trailing.at - start).toFixed(0)} ms after the first submit, W = ${W} ms)`);
  t.equal(await trailing.jobs, 2, "b's job was visible when it arrived");
});

t.test('close() sends a trailing notify that is still due at once, after the statements committed', async (t) => {
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool, { notifyWindowMs: 10 * 60_000 });
  prefix = 'closing/';
  const pending = [enqueuer.submit(intakeRequest('closing/a'))];
  await pending[0];
  // Submitted, then close() in the same turn: close() first lets the statement commit.
  pending.push(enqueuer.submit(intakeRequest('closing/b')), enqueuer.submit(intakeRequest('closing/c')));
  await enqueuer.close();
  t.ok((await Promise.all(pending)).every(accepted), 'all three queued');
  t.same(enqueuer.wakeStats(), { inStatement: 1, trailing: 1, trailingFailed: 0, pending: false }, 'the due notify was sent by close(), not left to its 10-minute window');
  const sent = await sentBy(enqueuer);
  t.equal(sent.length, 2, 'the leading and the trailing notification');
  t.equal(await sent[1]!.jobs, 3, 'every job was visible when the trailing one arrived');
});

t.test('a trailing notify that fails is logged (warn once, then debug) and the intake carries on', async (t) => {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { level: number; msg: string });
      done();
    },
  });
  // The enqueuer only ever calls pool.query: this pool fails the standalone notify, as a database blip between a commit and the notify would.
  const failingPool = {
    query: (...args: unknown[]) =>
      args[0] === NOTIFY_REPLICATE_READY_SQL
        ? Promise.reject(Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' }))
        : (stack.pool.query as (...a: unknown[]) => Promise<unknown>)(...args),
  } as unknown as pg.Pool;
  // Long enough that the requests below that must fall inside a window do, even on a loaded machine.
  const W = 500;
  const enqueuer = await IntakeEnqueuer.create(stack.boss, failingPool, { notifyWindowMs: W, log: createLogger('debug', sink) });
  t.teardown(() => enqueuer.close());
  prefix = 'failing/';
  t.ok(accepted(await enqueuer.submit(intakeRequest('failing/a'))), 'a queued (leading edge: notified in its statement)');
  t.ok(accepted(await enqueuer.submit(intakeRequest('failing/b'))), 'b queued (inside the window: left to the trailing notify)');
  await until('the first trailing notify was tried', () => enqueuer.wakeStats().trailingFailed === 1);
  // Inside the window of that (failed) attempt: quiet again, and its trailing notify fails too.
  t.ok(accepted(await enqueuer.submit(intakeRequest('failing/c'))), 'c queued');
  await until('the second trailing notify was tried', () => enqueuer.wakeStats().trailingFailed === 2);
  t.same(enqueuer.wakeStats(), { inStatement: 1, trailing: 0, trailingFailed: 2, pending: false }, 'both trailing notifies failed, nothing is left due');
  const reports = lines.filter((l) => /trailing job wake-up notify failed/.test(l.msg));
  t.same(reports.map((l) => l.level), [40, 20], 'warn for the first failure, debug for the next');
  t.equal((await sentBy(enqueuer)).length, 1, "only a's notification arrived");
  await sleep(W + 50); // a new window (a sleep is a lower bound)
  t.ok(accepted(await enqueuer.submit(intakeRequest('failing/after'))), 'the intake still commits');
  t.equal((await sentBy(enqueuer)).length, 1, 'and notifies');
  t.equal(enqueuer.wakeStats().inStatement, 2);
});
