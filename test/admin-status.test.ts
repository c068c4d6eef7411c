/**
 * Status and repair through the admin API, over a real database and queue:
 * aggregate status (counts, bytes, jobs, lag, last success/failure, 5-minute
 * throughput), per-object records with keyset pagination and tamper-checked
 * cursors, one object by URL-encoded key, retries, the intake ledger, and the
 * queue gauges on /metrics.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { signedPost } from '../src/auth/signed-client.js';
import { CursorCodec } from '../src/http/cursor.js';
import { registerQueueGauges } from '../src/metrics.js';
import { QUEUES } from '../src/queue/boss.js';
import { enqueueReplications } from '../src/queue/enqueue.js';
import { startStack, testTask, type Stack } from './support/stack.js';

const secret1 = randomBytes(24).toString('hex');
const secret2 = randomBytes(24).toString('hex');

let stack: Stack;
t.before(async () => {
  stack = await startStack({
    tasks: [testTask('st', { source: { ...(testTask('st').source as object), prefixes: ['in/'] } }), testTask('empty'), testTask('many')],
    senders: [
      { accessKeyId: 'fn-1', secrets: [secret1], tasks: ['st', 'empty'], source: 'config' },
      { accessKeyId: 'fn-2', secrets: [secret2], tasks: ['empty'], source: 'config' },
    ],
  });
});
t.teardown(() => stack.close());

async function row(key: string, status: string, o: { bytes?: number; completedAgo?: number; updatedAgo?: number; attempts?: number; code?: string; message?: string } = {}) {
  await stack.pool.query(
    `INSERT INTO bb_object_status (task_id, key, status, attempts, bytes, last_error_code, last_error_message, updated_at, completed_at, source_etag)
     VALUES ('st', $1, $2, $3, $4, $5, $6, now() - make_interval(secs => $7), CASE WHEN $8::float8 IS NULL THEN NULL ELSE now() - make_interval(secs => $8) END, 'etag-1')`,
    [key, status, o.attempts ?? 1, o.bytes ?? null, o.code ?? null, o.message ?? null, o.updatedAgo ?? 0, o.completedAgo ?? null],
  );
}

t.test('status of a task with nothing recorded: zeros and nulls', async (t) => {
  const res = await stack.admin('GET', '/admin/tasks/empty/status');
  t.equal(res.status, 200);
  t.same(res.body, {
    taskId: 'empty',
    paused: false,
    objects: { pending: 0, completed: 0, in_sync: 0, deleted: 0, source_missing: 0, archived: 0, failed: 0, total: 0 },
    bytesReplicated: 0,
    jobs: { queued: 0, active: 0, retrying: 0, deadLettered: 0 },
    lagSeconds: 0,
    oldestUnreplicatedAt: null,
    lastSuccess: null,
    lastFailure: null,
    throughput: { windowSeconds: 300, objects: 0, bytes: 0, objectsPerSecond: 0, bytesPerSecond: 0 },
  });
});

t.test('status: counts, bytes, jobs, lag, last success and failure, 5-minute throughput', async (t) => {
  await row('in/a.bin', 'completed', { bytes: 100, completedAgo: 10, updatedAgo: 10 });
  await row('in/b.bin', 'completed', { bytes: 200, completedAgo: 30, updatedAgo: 30 });
  await row('in/old.bin', 'completed', { bytes: 1000, completedAgo: 900, updatedAgo: 900 });
  await row('in/same.bin', 'in_sync', { bytes: 0, completedAgo: 5, updatedAgo: 5 });
  await row('in/dir/f 1+ü.bin', 'failed', { attempts: 7, code: 'AccessDenied', message: 'destination refused the write', updatedAgo: 60 });
  await row('in/f2.bin', 'failed', { attempts: 1, code: 'NoSuchBucket', message: 'gone', updatedAgo: 3 });
  await row('in/p.bin', 'pending', { attempts: 2, code: 'SlowDown', message: 'throttled', updatedAgo: 120 });
  // Jobs: one queued (first queued 10 minutes ago, e.g. re-sent while paused), one retrying, one running, one dead-lettered.
  await enqueueReplications(stack.boss, stack.pool, [
    { taskId: 'st', key: 'in/q1', trigger: 'event', queuedAt: new Date(Date.now() - 600_000).toISOString() },
    { taskId: 'st', key: 'in/q2', trigger: 'event' },
    { taskId: 'st', key: 'in/q3', trigger: 'event' },
  ]);
  await stack.pool.query(`UPDATE pgboss.job SET state = 'retry' WHERE data->>'key' = 'in/q2'`);
  await stack.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now() WHERE data->>'key' = 'in/q3'`);
  await stack.boss.send(QUEUES.replicateDead, { taskId: 'st', key: 'in/dead', trigger: 'event' });

  const res = await stack.admin('GET', '/admin/tasks/st/status');
  t.equal(res.status, 200);
  const s = res.body;
  t.same(s.objects, { pending: 1, completed: 3, in_sync: 1, deleted: 0, source_missing: 0, archived: 0, failed: 2, total: 7 });
  t.equal(s.bytesReplicated, 1300, 'bytes of completed objects');
  t.same(s.jobs, { queued: 1, active: 1, retrying: 1, deadLettered: 1 });
  t.ok(s.lagSeconds >= 599 && s.lagSeconds < 620, `lag counts from the first enqueue (${s.lagSeconds})`);
  t.ok(Math.abs(Date.parse(s.oldestUnreplicatedAt) - (Date.now() - 600_000)) < 20_000);
  t.match(s.lastSuccess, { key: 'in/same.bin', status: 'in_sync' });
  t.same(s.lastFailure, { key: 'in/f2.bin', status: 'failed', at: s.lastFailure.at, code: 'NoSuchBucket', message: 'gone' });
  t.same(s.throughput, { windowSeconds: 300, objects: 3, bytes: 300, objectsPerSecond: 3 / 300, bytesPerSecond: 1 });

  // Without jobs, the oldest pending row sets the lag.
  await stack.pool.query(`DELETE FROM pgboss.job WHERE name = $1 AND data->>'taskId' = 'st'`, [QUEUES.replicate]);
  const lag = (await stack.admin('GET', '/admin/tasks/st/status')).body.lagSeconds;
  t.ok(lag >= 119 && lag < 140, `pending row lag (${lag})`);
});

t.test('objects: keyset pages in key order, filters, signed cursors', async (t) => {
  const all: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const q: string = `/admin/tasks/st/objects?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await stack.admin('GET', q);
    t.equal(res.status, 200, JSON.stringify(res.body));
    t.ok(res.body.items.length <= 2);
    all.push(...res.body.items.map((i: { key: string }) => i.key));
    cursor = res.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.same(all, ['in/a.bin', 'in/b.bin', 'in/dir/f 1+ü.bin', 'in/f2.bin', 'in/old.bin', 'in/p.bin', 'in/same.bin'], 'every row once, in key order');
  t.equal(pages, 4);

  const failed = await stack.admin('GET', '/admin/tasks/st/objects?status=failed');
  t.same(failed.body.items.map((i: { key: string }) => i.key), ['in/dir/f 1+ü.bin', 'in/f2.bin']);
  t.equal(failed.body.nextCursor, null);
  t.match(failed.body.items[0], { status: 'failed', attempts: 7, lastError: { code: 'AccessDenied', message: 'destination refused the write' }, sourceEtag: 'etag-1', completedAt: null });
  const prefixed = await stack.admin('GET', '/admin/tasks/st/objects?prefix=in%2Fdir%2F');
  t.same(prefixed.body.items.map((i: { key: string }) => i.key), ['in/dir/f 1+ü.bin']);
  const likeChars = await stack.admin('GET', '/admin/tasks/st/objects?prefix=in%2F_');
  t.same(likeChars.body.items, [], 'prefix is literal (no LIKE wildcards)');

  const first = await stack.admin('GET', '/admin/tasks/st/objects?limit=1&status=completed');
  const c = first.body.nextCursor as string;
  t.ok(c);
  const second = await stack.admin('GET', `/admin/tasks/st/objects?limit=1&status=completed&cursor=${encodeURIComponent(c)}`);
  t.same(second.body.items.map((i: { key: string }) => i.key), ['in/b.bin']);

  const [payload, tag] = c.split('.') as [string, string];
  const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), p: 'in/z' })).toString('base64url');
  const flipped = `${tag.slice(0, -2)}${tag.endsWith('AA') ? 'AB' : 'AA'}`;
  const bad: [string, string][] = [
    ['payload altered', `${forgedPayload}.${tag}`],
    ['signature altered', `${payload}.${flipped}`],
    ['no signature', payload],
    ['garbage', 'zzz'],
    ['other filters', c], // sent with status=failed: issued for status=completed
  ];
  for (const [name, cur] of bad) {
    const q = name === 'other filters' ? 'status=failed' : 'status=completed';
    const res = await stack.admin('GET', `/admin/tasks/st/objects?limit=1&${q}&cursor=${encodeURIComponent(cur)}`);
    t.equal(res.status, 400, `${name}: status`);
    t.equal(res.body.error.code, 'INVALID_CURSOR', `${name}: code`);
  }
  const otherTask = await stack.admin('GET', `/admin/tasks/empty/objects?limit=1&status=completed&cursor=${encodeURIComponent(c)}`);
  t.equal(otherTask.body.error.code, 'INVALID_CURSOR', 'cursor of another task');

  for (const [q, field] of [
    ['limit=0', 'querystring.limit'],
    ['limit=1001', 'querystring.limit'],
    ['limit=ten', 'querystring.limit'],
    ['status=done', 'querystring.status'],
    ['colour=red', 'querystring'],
  ] as const) {
    const res = await stack.admin('GET', `/admin/tasks/st/objects?${q}`);
    t.equal(res.status, 400, q);
    t.equal(res.body.error.code, 'VALIDATION_FAILED', q);
    t.match(res.body.error.field, field, q);
  }
});

t.test('cursors: accepted by every process sharing BB_MASTER_KEY, refused by others', async (t) => {
  const key = randomBytes(32);
  const a = CursorCodec.create(key);
  const b = CursorCodec.create(key);
  const c = a.encode('objects', { task: 't', status: null }, 'k/1');
  t.equal(b.decode(c, 'objects', { task: 't', status: null }, 'string'), 'k/1');
  t.throws(() => CursorCodec.create(randomBytes(32)).decode(c, 'objects', { task: 't', status: null }, 'string'), { code: 'INVALID_CURSOR' });
  t.throws(() => CursorCodec.create().decode(c, 'objects', { task: 't', status: null }, 'string'), { code: 'INVALID_CURSOR' }, 'per-process key');
  t.throws(() => b.decode(c, 'intake', { task: 't', status: null }, 'string'), { code: 'INVALID_CURSOR' }, 'another list');
  t.throws(() => b.decode(c, 'objects', { task: 't', status: null }, 'number'), { code: 'INVALID_CURSOR' }, 'position type');
});

t.test('one object by URL-encoded key: record with attempts and last error, and its job', async (t) => {
  const key = 'in/dir/f 1+ü.bin';
  const res = await stack.admin('GET', `/admin/tasks/st/objects/${encodeURIComponent(key)}`);
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.match(res.body, { taskId: 'st', key, status: 'failed', record: { key, attempts: 7, lastError: { code: 'AccessDenied' } }, job: null });
  await stack.admin('POST', `/admin/tasks/st/objects/${encodeURIComponent('in/new/x.bin')}/retry`);
  const queued = await stack.admin('GET', `/admin/tasks/st/objects/${encodeURIComponent('in/new/x.bin')}`);
  t.equal(queued.status, 200);
  t.match(queued.body, { status: null, record: null, job: { state: 'created', retryCount: 0 } });
  const missing = await stack.admin('GET', `/admin/tasks/st/objects/${encodeURIComponent('in/none')}`);
  t.equal(missing.status, 404);
  t.equal(missing.body.error.code, 'NOT_FOUND');
  const long = await stack.admin('GET', `/admin/tasks/st/objects/${encodeURIComponent(`in/${'é'.repeat(500)}`)}`);
  t.equal(long.status, 404, 'a 1,000-character key is routed (404: no record), not cut off');
  const tooLong = await stack.admin('GET', `/admin/tasks/st/objects/${'k'.repeat(1025)}`);
  t.equal(tooLong.status, 400);
  t.equal(tooLong.body.error.code, 'VALIDATION_FAILED');
});

t.test('retry one key: queued with trigger retry; duplicates; out-of-scope keys refused', async (t) => {
  await stack.pool.query('DELETE FROM pgboss.job WHERE name = $1', [QUEUES.replicate]);
  const key = 'in/dir/f 1+ü.bin';
  const first = await stack.admin('POST', `/admin/tasks/st/objects/${encodeURIComponent(key)}/retry`);
  t.equal(first.status, 202);
  t.same(first.body, { queued: 1, duplicates: 0 });
  const again = await stack.admin('POST', `/admin/tasks/st/objects/${encodeURIComponent(key)}/retry`);
  t.same(again.body, { queued: 0, duplicates: 1 });
  const { rows } = await stack.pool.query<{ data: { key: string; trigger: string } }>('SELECT data FROM pgboss.job WHERE name = $1', [QUEUES.replicate]);
  t.same(rows.map((r) => [r.data.key, r.data.trigger]), [[key, 'retry']]);
  const out = await stack.admin('POST', `/admin/tasks/st/objects/${encodeURIComponent('elsewhere/x')}/retry`);
  t.equal(out.status, 400);
  t.equal(out.body.error.code, 'KEY_OUT_OF_SCOPE');
  const readOnly = await stack.admin('POST', `/admin/tasks/st/objects/x/retry`, undefined, await stack.token(['bb:read']));
  t.equal(readOnly.status, 403);
});

t.test('retry-failed re-queues every failed key, in batches, and says how many', async (t) => {
  await stack.pool.query('DELETE FROM pgboss.job WHERE name = $1', [QUEUES.replicate]);
  await stack.pool.query(
    `INSERT INTO bb_object_status (task_id, key, status, attempts) SELECT 'many', 'k/' || lpad(i::text, 5, '0'), 'failed', 1 FROM generate_series(1, 1203) i`,
  );
  await stack.pool.query(`INSERT INTO bb_object_status (task_id, key, status) VALUES ('many', 'ok/1', 'completed')`);
  await enqueueReplications(stack.boss, stack.pool, [{ taskId: 'many', key: 'k/00007', trigger: 'event' }]);
  const res = await stack.admin('POST', '/admin/tasks/many/retry-failed');
  t.equal(res.status, 202);
  t.same(res.body, { failed: 1203, queued: 1202, duplicates: 1 });
  const { rows } = await stack.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND data->>'taskId' = 'many' AND data->>'trigger' = 'retry'`, [QUEUES.replicate]);
  t.equal(rows[0]!.n, 1202);
  t.same((await stack.admin('POST', '/admin/tasks/empty/retry-failed')).body, { failed: 0, queued: 0, duplicates: 0 });
});

t.test('intake ledger: newest first, filters, keyset pages, tamper-checked cursors', async (t) => {
  const post = (creds: { accessKeyId: string; secret: string }, task: string, key: string) =>
    signedPost(`${stack.url}/sync?task=${task}`, JSON.stringify({ key, size: 1 }), creds);
  const r1 = await post({ accessKeyId: 'fn-1', secret: secret1 }, 'st', 'in/l1');
  const r2 = await post({ accessKeyId: 'fn-1', secret: secret1 }, 'empty', 'l2');
  const r3 = await post({ accessKeyId: 'fn-2', secret: secret2 }, 'empty', 'l3');
  t.same([r1.status, r2.status, r3.status], [202, 202, 202]);
  const ids = [r1, r2, r3].map((r) => (r.body as { requestId: string }).requestId);

  const all = await stack.admin('GET', '/admin/intake');
  t.equal(all.status, 200);
  t.same(all.body.items.map((i: { requestId: string }) => i.requestId), [...ids].reverse());
  t.match(all.body.items[0], { sender: 'fn-2', taskId: 'empty', format: 'dth', accepted: 1, duplicates: 0, ignored: 0 });
  t.equal(all.body.nextCursor, null);
  t.same((await stack.admin('GET', '/admin/intake?sender=fn-1')).body.items.map((i: { requestId: string }) => i.requestId), [ids[1], ids[0]]);
  t.same((await stack.admin('GET', '/admin/intake?task=empty')).body.items.map((i: { requestId: string }) => i.requestId), [ids[2], ids[1]]);
  t.same((await stack.admin('GET', '/admin/intake?sender=fn-2&task=st')).body.items, []);

  const p1 = await stack.admin('GET', '/admin/intake?limit=1&task=empty');
  t.equal(p1.body.items[0].requestId, ids[2]);
  const p2 = await stack.admin('GET', `/admin/intake?limit=1&task=empty&cursor=${encodeURIComponent(p1.body.nextCursor)}`);
  t.equal(p2.body.items[0].requestId, ids[1]);
  t.equal(p2.body.nextCursor, null, 'no rows left for this filter');
  const mixed = await stack.admin('GET', `/admin/intake?limit=1&sender=fn-1&cursor=${encodeURIComponent(p1.body.nextCursor)}`);
  t.equal(mixed.status, 400);
  t.equal(mixed.body.error.code, 'INVALID_CURSOR');
  const tampered = await stack.admin('GET', `/admin/intake?limit=1&task=empty&cursor=${encodeURIComponent(`x${p1.body.nextCursor}`)}`);
  t.equal(tampered.body.error.code, 'INVALID_CURSOR');
  const objectsCursor = (await stack.admin('GET', '/admin/tasks/st/objects?limit=1')).body.nextCursor;
  t.equal((await stack.admin('GET', `/admin/intake?cursor=${encodeURIComponent(objectsCursor)}`)).body.error.code, 'INVALID_CURSOR', 'a cursor of another list');
});

t.test('/metrics: job gauges by task and state, replication lag per task', async (t) => {
  await stack.pool.query('DELETE FROM pgboss.job WHERE name = $1', [QUEUES.replicate]);
  await enqueueReplications(stack.boss, stack.pool, [
    { taskId: 'st', key: 'in/m1', trigger: 'event', queuedAt: new Date(Date.now() - 300_000).toISOString() },
    { taskId: 'st', key: 'in/m2', trigger: 'event' },
  ]);
  await stack.pool.query(`UPDATE pgboss.job SET state = 'active' WHERE data->>'key' = 'in/m2'`);
  const res = await fetch(`${stack.url}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  t.match(text, /^bb_queue_jobs\{task="st",state="queued"\} 1$/m);
  t.match(text, /^bb_queue_jobs\{task="st",state="active"\} 1$/m);
  t.match(text, /^bb_queue_jobs\{task="st",state="failed"\} 1$/m, 'dead-lettered');
  t.match(text, /^bb_queue_jobs\{task="empty",state="queued"\} 0$/m, 'every task has a series');
  const lag = Number(/^bb_replication_lag_seconds\{task="st"\} ([\d.]+)$/m.exec(text)?.[1]);
  t.ok(lag >= 299 && lag < 320, `lag of st (${lag})`);
  t.match(text, /^bb_replication_lag_seconds\{task="empty"\} 0$/m);
  t.match(text, /^bb_notifications_total\{/m, 'existing metrics still there');
});

t.test('queue gauges: one snapshot per cache interval; a failing database leaves the series out', async (t) => {
  const registry = new Registry();
  let calls = 0;
  let fail = false;
  registerQueueGauges(
    registry,
    {
      snapshot: async () => {
        calls++;
        if (fail) throw new Error('db down');
        return { jobs: [{ task: 'a', state: 'queued', count: 3 }], lag: [{ task: 'a', seconds: 12 }] };
      },
      taskIds: () => ['a', 'b'],
    },
    60_000,
  );
  const first = await registry.metrics();
  await registry.metrics();
  t.equal(calls, 1, 'both gauges and a second scrape share one snapshot');
  t.match(first, /bb_queue_jobs\{task="a",state="queued"\} 3/);
  t.match(first, /bb_queue_jobs\{task="b",state="active"\} 0/);
  t.match(first, /bb_replication_lag_seconds\{task="a"\} 12/);
  const failing = new Registry();
  fail = true;
  registerQueueGauges(failing, { snapshot: async () => { throw new Error('db down'); }, taskIds: () => ['a'] }, 0);
  const text = await failing.metrics();
  t.notMatch(text, /bb_queue_jobs\{/);
  t.match(text, /# TYPE bb_queue_jobs gauge/);
});
