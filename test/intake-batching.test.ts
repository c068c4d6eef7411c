/**
 * Group commit of the intake (src/queue/enqueue.ts) against a real database:
 * concurrent requests share statements, identical signatures are ledgered and
 * queued once, a twin committed by another process turns into a replay, a
 * failed statement fails its whole batch and leaves nothing behind, and
 * shutdown answers what was already submitted.
 *
 * To make batching deterministic, a test holds a lock the statement needs, so
 * requests pile up behind it; it waits for a state (never for a time), then
 * lets go.
 */
import t from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type PgBoss from 'pg-boss';
import { signedHeaders, signedPost } from '../src/auth/signed-client.js';
import { isDatabaseUnavailable } from '../src/http/errors.js';
import { IntakeEnqueuer, type IntakeOutcome, type IntakeRequest } from '../src/queue/enqueue.js';
import { buildIntakeStatements } from '../src/queue/intake-statement.js';
import { startStack, testTask, type Stack } from './support/stack.js';
import { scrapeMetrics } from './support/metrics.js';

const secret = randomBytes(24).toString('hex');
const creds = { accessKeyId: 'fn', secret };

let stack: Stack;
let direct: pg.Pool;
t.before(async () => {
  stack = await startStack({
    tasks: [testTask('photos')],
    senders: [{ accessKeyId: 'fn', secrets: [secret], tasks: ['photos'], source: 'config' }],
  });
  direct = new pg.Pool({ connectionString: stack.db.url, max: 4 });
});
t.teardown(async () => {
  await direct.end();
  await stack.close();
});

const event = (key: string) =>
  JSON.stringify({ Records: [{ eventVersion: '2.1', eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'photos-src' }, object: { key, size: 1 } } }] });

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  // A state to reach, not a time to wait: the file's tap timeout bounds it.
  while (!(await condition())) await new Promise((r) => setTimeout(r, 5));
  t.comment(`reached: ${what}`);
}

/** Holds EXCLUSIVE on bb_intake_ledger: intake statements block before writing anything. */
async function lockLedger(): Promise<{ release(): Promise<void> }> {
  const client = await direct.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE bb_intake_ledger IN EXCLUSIVE MODE');
  return {
    async release() {
      await client.query('COMMIT');
      client.release();
    },
  };
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await direct.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params);
  return rows[0]!.n;
}
const jobsWithKeyPrefix = (prefix: string) => count(`pgboss.job WHERE name = 'bb-replicate' AND data->>'key' LIKE $1`, [`${prefix}%`]);
const ledgerRowsOf = (requestIds: string[]) => count('bb_intake_ledger WHERE request_id = ANY($1)', [requestIds]);

/** An intake request as the route builds it, for driving an enqueuer directly. */
function intakeRequest(key: string, signatureHash: Buffer = randomBytes(32)): IntakeRequest {
  const requestId = randomUUID();
  return {
    jobs: [{ taskId: 'photos', key, trigger: 'event', kind: 'created' }],
    entry: { requestId, sender: 'fn', taskId: 'photos', format: 's3', ignored: 0, signatureHash },
    answer: (c) => ({ requestId, format: 's3', accepted: c.accepted, duplicates: c.duplicates, ignored: 0, jobs: [{ taskId: 'photos', key }] }),
  };
}

async function metricValue(name: string): Promise<number> {
  return (await scrapeMetrics(stack.url))(name);
}

t.test('50 concurrent signed requests: all 202, written by a few statements, 50 jobs and 50 ledger rows', async (t) => {
  const before = stack.enqueuer.stats();
  const metricBatchesBefore = await metricValue('bb_intake_batch_requests_count{outcome="committed"}');
  const lock = await lockLedger();
  const answers = Array.from({ length: 50 }, (_, i) => signedPost(`${stack.url}/sync`, event(`c50/${i}`), creds));
  await until('all 50 requests are inside the enqueuer', () => {
    const s = stack.enqueuer.stats();
    return s.waiting + s.inFlight === 50;
  });
  await lock.release();
  const results = await Promise.all(answers);
  t.same(results.map((r) => r.status), Array(50).fill(202), 'every request accepted');
  t.ok(results.every((r) => (r.body as { accepted: number }).accepted === 1), 'each queued its key');
  t.equal(await jobsWithKeyPrefix('c50/'), 50, '50 jobs');
  const ids = results.map((r) => (r.body as { requestId: string }).requestId);
  t.equal(new Set(ids).size, 50, '50 distinct request ids');
  t.equal(await ledgerRowsOf(ids), 50, '50 ledger rows');
  const after = stack.enqueuer.stats();
  const batches = after.batches - before.batches;
  t.equal(after.requests - before.requests, 50, 'the statements carried the 50 requests');
  // At most two statements run at once, so the other requests wait and share the next ones.
  t.ok(batches >= 1 && batches <= 3, `50 requests in ${batches} statements`);
  t.ok(after.maxBatch > 1, `largest batch ${after.maxBatch} requests`);
  t.equal(after.failedBatches, before.failedBatches, 'no statement failed');
  t.equal(await metricValue('bb_intake_batch_requests_count{outcome="committed"}'), metricBatchesBefore + batches, '/metrics counts the statements');
});

t.test('identical signatures in flight together: one 202, the others its answer (200 replayed), one job, one ledger row', async (t) => {
  const before = stack.enqueuer.stats();
  const body = event('twin/http');
  const u = new URL(`${stack.url}/sync`);
  const { host: _host, ...headers } = signedHeaders('POST', u, body, creds);
  const lock = await lockLedger();
  const other = signedPost(`${stack.url}/sync`, event('twin/other'), creds);
  const copies = Array.from({ length: 5 }, () => fetch(u, { method: 'POST', headers, body }));
  await until('the 6 requests are inside the enqueuer', () => {
    const s = stack.enqueuer.stats();
    return s.waiting + s.inFlight === 2 && s.twins - before.twins === 4;
  });
  await lock.release();
  const answers = await Promise.all(copies.map(async (pending) => {
    const r = await pending;
    return { status: r.status, body: (await r.json()) as { requestId: string; replayed?: boolean; accepted: number } };
  }));
  t.same(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 202]);
  const first = answers.find((a) => a.status === 202)!;
  for (const a of answers.filter((x) => x.status === 200)) {
    t.equal(a.body.replayed, true, 'marked replayed');
    t.equal(a.body.requestId, first.body.requestId, "the first one's answer");
    t.equal(a.body.accepted, 1, 'with its counts');
  }
  t.equal((await other).status, 202, 'a different request alongside is unaffected');
  t.equal(await jobsWithKeyPrefix('twin/http'), 1, 'one job');
  t.equal(await ledgerRowsOf([first.body.requestId]), 1, 'one ledger row');
  t.equal(await count('bb_intake_ledger WHERE response->>$1 = $2', ['requestId', first.body.requestId]), 1);
});

t.test('one batch holding two identical signatures: only one is ledgered and queued, the other gets its answer', async (t) => {
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool);
  t.teardown(() => enqueuer.close());
  const sig = randomBytes(32);
  // Submitted in one turn of the event loop: one batch.
  const a = intakeRequest('same-batch/twin', sig);
  const b = intakeRequest('same-batch/twin', sig);
  const c = intakeRequest('same-batch/other');
  const [ra, rb, rc] = await Promise.all([enqueuer.submit(a), enqueuer.submit(b), enqueuer.submit(c)]);
  const stats = enqueuer.stats();
  t.equal(stats.batches, 1, 'one statement');
  t.equal(stats.requests, 2, 'carrying the two distinct signatures');
  t.equal(stats.twins, 1, 'the copy joined the first');
  t.same(ra, { replayed: false, accepted: 1, duplicates: 0, response: a.answer({ accepted: 1, duplicates: 0 }) }, 'the first is accepted');
  t.same(rb, { replayed: true, response: ra.response }, "the copy gets the first one's answer");
  t.equal(rc.replayed, false);
  t.equal(await jobsWithKeyPrefix('same-batch/twin'), 1, 'one job for the twins');
  t.equal(await ledgerRowsOf([a.entry.requestId, b.entry.requestId]), 1, 'one ledger row for the twins');
  t.equal(await ledgerRowsOf([b.entry.requestId]), 0, "the copy's request id was never ledgered");
});

t.test('a signature already in the ledger is a replay: stored answer, nothing queued, its batch-mates unaffected', async (t) => {
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool);
  t.teardown(() => enqueuer.close());
  const first = intakeRequest('ledgered/first');
  const r1 = await enqueuer.submit(first);
  t.equal(r1.replayed, false);
  await direct.query("DELETE FROM pgboss.job WHERE data->>'key' = 'ledgered/first'"); // consumed meanwhile: a replay must not re-queue it
  const again = intakeRequest('ledgered/first', first.entry.signatureHash);
  const mate = intakeRequest('ledgered/mate');
  const [r2, r3] = await Promise.all([enqueuer.submit(again), enqueuer.submit(mate)]);
  t.same(r2, { replayed: true, response: { ...r1.response } }, 'the stored first answer');
  t.equal(r3.replayed, false);
  t.equal(enqueuer.stats().batches, 2);
  t.equal(await jobsWithKeyPrefix('ledgered/first'), 0, 'the replay queued nothing');
  t.equal(await jobsWithKeyPrefix('ledgered/mate'), 1);
});

t.test('keys already queued count as duplicates, also between requests of one batch', async (t) => {
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool);
  t.teardown(() => enqueuer.close());
  const x = intakeRequest('dup/k');
  const y = intakeRequest('dup/k');
  const z = { ...intakeRequest('dup/z'), jobs: ['dup/z', 'dup/z', 'dup/k'].map((key) => ({ taskId: 'photos', key, trigger: 'event' as const })) };
  const [rx, ry, rz] = await Promise.all([enqueuer.submit(x), enqueuer.submit(y), enqueuer.submit(z)]);
  t.equal(enqueuer.stats().batches, 1, 'one statement');
  const counts = (o: IntakeOutcome) => (o.replayed ? [-1, -1] : [o.accepted, o.duplicates]);
  const [cx, cy, cz] = [counts(rx), counts(ry), counts(rz)];
  // Which request of the batch queues the contended key is the database's choice; exactly one does.
  t.equal(cx[0]! + cy[0]! + cz[0]!, 2, 'dup/k and dup/z queued once each');
  t.equal(cx[1]! + cy[1]! + cz[1]!, 3, 'the other three keys are duplicates');
  t.ok(cz[0] === 1 || cz[0] === 2, "dup/z's repeat is always a duplicate");
  t.equal(await jobsWithKeyPrefix('dup/'), 2);
  const stored = await direct.query<{ accepted: number; duplicates: number; r: { accepted: number; duplicates: number } }>(
    'SELECT accepted, duplicates, response AS r FROM bb_intake_ledger WHERE request_id = $1',
    [z.entry.requestId],
  );
  const [accepted, duplicates] = cz as [number, number];
  t.same(stored.rows, [{ accepted, duplicates, r: { ...z.answer({ accepted, duplicates }) } }], 'the ledger stores the counts that were answered');
});

/** Inserts (uncommitted) a ledger row with this signature, as another service process would. */
async function twinInAnotherProcess(signatureHash: Buffer, requestId: string) {
  const client = await direct.connect();
  await client.query('BEGIN');
  await client.query(
    `INSERT INTO bb_intake_ledger (request_id, sender, task_id, format, accepted, duplicates, ignored, signature_hash, response)
     VALUES ($1, 'fn', 'photos', 's3', 1, 0, 0, $2, $3)`,
    [requestId, signatureHash, JSON.stringify({ requestId, accepted: 1, duplicates: 0 })],
  );
  return {
    async end(commit: boolean) {
      await client.query(commit ? 'COMMIT' : 'ROLLBACK');
      client.release();
    },
  };
}

/** The pid of the intake statement once it waits on a lock (its jobs are then written, uncommitted). */
async function blockedStatement(): Promise<number> {
  let pid = 0;
  await until('the intake statement waits on the uncommitted twin', async () => {
    const { rows } = await direct.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%bb_intake_ledger%'`,
    );
    pid = rows[0]?.pid ?? 0;
    return pid !== 0;
  });
  return pid;
}

t.test('a twin committed by another process while the statement runs: replayed with its answer, nothing queued for it', async (t) => {
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool);
  t.teardown(() => enqueuer.close());
  const sig = randomBytes(32);
  const other = await twinInAnotherProcess(sig, 'other-process');
  const mine = intakeRequest('race/twin', sig);
  const mate = intakeRequest('race/mate');
  const outcomes = Promise.all([enqueuer.submit(mine), enqueuer.submit(mate)]);
  await blockedStatement();
  await other.end(true);
  const [rMine, rMate] = await outcomes;
  t.same(rMine, { replayed: true, response: { requestId: 'other-process', accepted: 1, duplicates: 0 } }, "the other process's answer");
  t.equal(rMate.replayed, false, 'its batch-mate is accepted');
  t.equal(enqueuer.stats().retries, 1, 'the statement failed on the signature and ran again');
  t.equal(await jobsWithKeyPrefix('race/twin'), 0, 'nothing queued for the replay');
  t.equal(await jobsWithKeyPrefix('race/mate'), 1);
  t.equal(await ledgerRowsOf([mine.entry.requestId]), 0);
});

t.test('a statement that fails midway fails every request of its batch and leaves nothing written', async (t) => {
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool);
  t.teardown(() => enqueuer.close());
  const sig = randomBytes(32);
  const blocker = await twinInAnotherProcess(sig, 'blocker');
  const batch = [intakeRequest('killed/0', sig), ...Array.from({ length: 9 }, (_, i) => intakeRequest(`killed/${i + 1}`))];
  const settled = Promise.allSettled(batch.map((r) => enqueuer.submit(r)));
  const pid = await blockedStatement(); // past the job INSERT, waiting to write the ledger rows
  await direct.query('SELECT pg_terminate_backend($1)', [pid]);
  const results = await settled;
  await blocker.end(false);
  t.same(results.map((r) => r.status), Array(10).fill('rejected'), 'every request of the batch gets the error');
  const errors = results.map((r) => (r as PromiseRejectedResult).reason as { code?: string });
  t.ok(errors.every((e) => e.code === '57P01' && isDatabaseUnavailable(e)), 'the connection error (→ 503 DATABASE_UNAVAILABLE)');
  t.same(enqueuer.stats(), { batches: 0, requests: 0, maxBatch: 0, failedBatches: 1, failedRequests: 10, retries: 0, twins: 0, waiting: 0, inFlight: 0 });
  t.equal(await jobsWithKeyPrefix('killed/'), 0, 'no job of the batch is left');
  t.equal(await ledgerRowsOf(batch.map((r) => r.entry.requestId)), 0, 'no ledger row either');
  // The broken connection was discarded: the next batch prepares the statement on a healthy one.
  const next = await enqueuer.submit(intakeRequest('killed/after'));
  t.equal(next.replayed, false, 'the next batch commits');
});

t.test('close(): requests already submitted are written, later ones get 503 SHUTTING_DOWN', async (t) => {
  const enqueuer = await IntakeEnqueuer.create(stack.boss, stack.pool);
  const batch = Array.from({ length: 10 }, (_, i) => intakeRequest(`closing/${i}`));
  const outcomes = Promise.all(batch.map((r) => enqueuer.submit(r)));
  const closed = enqueuer.close(); // same turn: nothing has been written yet
  await t.rejects(enqueuer.submit(intakeRequest('closing/late')), { statusCode: 503, code: 'SHUTTING_DOWN' });
  await closed;
  const results = await outcomes;
  t.ok(results.every((r) => !r.replayed && r.accepted === 1), 'the pending requests were accepted');
  t.equal(await jobsWithKeyPrefix('closing/'), 10, 'and their jobs committed before close() resolved');
  t.equal(await ledgerRowsOf(batch.map((r) => r.entry.requestId)), 10);
  t.same({ ...enqueuer.stats() }, { batches: 1, requests: 10, maxBatch: 10, failedBatches: 0, failedRequests: 0, retries: 0, twins: 0, waiting: 0, inFlight: 0 });
  await enqueuer.close(); // idempotent
});

t.test('the statement is built from the installed pg-boss SQL, and a changed shape fails at startup', async (t) => {
  const { notifying, quiet } = await buildIntakeStatements(stack.boss);
  for (const statement of [notifying, quiet]) t.match(statement.name, /^bb_intake_batch_[0-9a-f]{16}$/, 'a name derived from the text');
  const again = await buildIntakeStatements(stack.boss);
  t.same([again.notifying.name, again.quiet.name], [notifying.name, quiet.name], 'stable');
  t.not(quiet.name, notifying.name, 'two variants, two names');
  // The variants differ only by the wake-up CTE (throttled by the enqueuer, see test/intake-wakeups.test.ts).
  t.match(notifying.text, /pg_notify\('bb_replicate_ready', ''\)/, 'the notifying variant notifies');
  t.notMatch(quiet.text, /pg_notify|\bw AS\b/, 'the quiet one does not');
  t.equal(quiet.text, notifying.text.replace(/,\s*w AS \([^)]*\)[^)]*\) one\)/, '').replace(/\s*CROSS JOIN \(SELECT count\(\*\) FROM w\) wake$/, ''), 'and is otherwise the same text');
  t.same(quiet.bossDefaults, notifying.bossDefaults, 'same parameters');
  // pg-boss's own SQL, altered the ways an upgrade could alter it.
  let real = '';
  await stack.boss.insert([], { db: { executeSql: async (text: string) => ((real = text), { rows: [] }) } });
  const variants: [string, string, RegExp][] = [
    ['no ON CONFLICT', real.replace(/ON CONFLICT DO NOTHING\s*$/, ''), /ON CONFLICT DO NOTHING/],
    ['RETURNING added', `${real.replace(/\s*$/, '')} RETURNING id`, /ON CONFLICT DO NOTHING|RETURNING/],
    ['job list read twice', real.replace('WITH defaults as (', 'WITH defaults as (SELECT $1 AS x), d2 as ('), /\$1/],
    ['other recordset', real.replace('json_to_recordset($1)', 'jsonb_to_recordset($1::jsonb)'), /json_to_recordset/],
  ];
  for (const [name, text, message] of variants) {
    const boss = { insert: (_jobs: unknown, o: { db: PgBoss.Db }) => o.db.executeSql(text, [1, 2, 3, 4, 5, 6]) } as unknown as PgBoss;
    await t.rejects(IntakeEnqueuer.create(boss, stack.pool), { message }, name);
  }
});

t.test('a generic plan made while the ledger is young probes it by its signature index, never scans it', async (t) => {
  // The regression this guards (bench/README.md, Intake): as joins, the ledger lookups were a plan
  // choice, and the generic plan a prepared statement caches after five runs, made while the ledger
  // was young (never analyzed: PostgreSQL assumes 10 pages), hashed the requests and seq-scanned the
  // whole ledger, twice per statement, for the connection's life. The ledger's statistics are reset
  // to that state (PostgreSQL 18's pg_restore_relation_stats) and a generic plan forced.
  const statements = await buildIntakeStatements(stack.boss);
  const client = await direct.connect();
  try {
    await client.query(`SELECT pg_restore_relation_stats('schemaname', 'public', 'relname', 'bb_intake_ledger', 'relpages', 0, 'reltuples', -1::real)`);
    await client.query('SET plan_cache_mode = force_generic_plan');
    for (const [variant, statement] of Object.entries(statements)) {
      const values = ['[]', ...statement.bossDefaults, '[]'];
      await client.query({ name: statement.name, text: statement.text, values }); // prepares it; an empty batch writes nothing
      const args = values.map((v) => (v === null || v === undefined ? 'NULL' : client.escapeLiteral(String(v)))).join(', ');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS off) EXECUTE ${statement.name}(${args})`);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      t.notMatch(plan, /Seq Scan on bb_intake_ledger/, `${variant}: no scan of the ledger`);
      t.match(plan, /Index (Only )?Scan using bb_intake_ledger_signature/, `${variant}: a probe of the signature index`);
    }
  } finally {
    await client.query('ANALYZE bb_intake_ledger').catch(() => undefined);
    client.release();
  }
});

t.test('shutdown while HTTP requests wait for their batch: they are answered 202, a later one 503 SHUTTING_DOWN', async (t) => {
  // Last in this file: it closes the stack's enqueuer.
  const lock = await lockLedger();
  const answers = Array.from({ length: 10 }, (_, i) => signedPost(`${stack.url}/sync`, event(`shutdown/${i}`), creds));
  await until('the 10 requests are inside the enqueuer', () => {
    const s = stack.enqueuer.stats();
    return s.waiting + s.inFlight === 10;
  });
  const closed = stack.enqueuer.close();
  const late = await signedPost(`${stack.url}/sync`, event('shutdown/late'), creds);
  t.equal(late.status, 503, late.text);
  t.equal((late.body as { error: { code: string } }).error.code, 'SHUTTING_DOWN');
  await lock.release();
  await closed;
  t.same((await Promise.all(answers)).map((r) => r.status), Array(10).fill(202), 'the waiting requests are accepted');
  t.equal(await jobsWithKeyPrefix('shutdown/'), 10, 'and committed');
});
