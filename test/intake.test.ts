/**
 * The intake over HTTP against a real database and queue: every format is
 * accepted and routed, every bad input gets its status and code with nothing
 * queued, replays get the first answer, and a database outage answers 503.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { signedPost, signedHeaders } from '../src/auth/signed-client.js';
import { startStack, testTask, type Stack } from './support/stack.js';

const secret = randomBytes(24).toString('hex');
const creds = { accessKeyId: 'fn-1', secret };
const otherCreds = { accessKeyId: 'fn-2', secret: randomBytes(24).toString('hex') };

let stack: Stack;
t.before(async () => {
  stack = await startStack({
    tasks: [
      testTask('photos', { source: { ...testTask('photos').source as object, prefixes: ['img/', 'raw/'] } }),
      testTask('docs'),
      testTask('logs'),
    ],
    senders: [
      { accessKeyId: 'fn-1', secrets: [secret], tasks: ['photos', 'docs'], source: 'config' },
      { accessKeyId: 'fn-2', secrets: [otherCreds.secret], tasks: ['logs'], source: 'config' },
    ],
  });
});
t.teardown(() => stack.close());

interface Accepted {
  accepted: number;
  duplicates: number;
  ignored: number;
  ignoredReasons: { reason: string; count: number }[];
  jobs: { taskId: string; key: string }[];
  format: string;
  replayed?: boolean;
  requestId: string;
}

async function post(body: unknown, path = '/sync', c = creds) {
  const res = await signedPost(`${stack.url}${path}`, typeof body === 'string' ? body : JSON.stringify(body), c);
  return { status: res.status, body: res.body as Accepted & { error: { code: string; message: string } }, text: res.text };
}

function s3Record(bucket: string, key: string, eventName = 'ObjectCreated:Put') {
  return { eventVersion: '2.1', eventSource: 'aws:s3', eventName, s3: { bucket: { name: bucket }, object: { key, size: 1, eTag: 'e', sequencer: '01' } } };
}

async function clearJobs(): Promise<void> {
  await stack.pool.query('DELETE FROM pgboss.job');
}

t.test('every format is accepted and routed to its task with decoded keys', async (t) => {
  await clearJobs();
  const s3 = { Records: [s3Record('photos-src', 'img/a+b%2Bc.jpg')] };
  const cases: [string, unknown, string, string, string][] = [
    ['s3', s3, '/sync', 'photos', 'img/a b+c.jpg'],
    ['s3-sns', { Type: 'Notification', MessageId: 'm', TopicArn: 'arn', Message: JSON.stringify({ Records: [s3Record('photos-src', 'img/sns.jpg')] }) }, '/sync', 'photos', 'img/sns.jpg'],
    ['s3-sqs', { Records: [{ messageId: '1', eventSource: 'aws:sqs', body: JSON.stringify({ Records: [s3Record('photos-src', 'img/sqs.jpg')] }) }] }, '/sync', 'photos', 'img/sqs.jpg'],
    ['eventbridge', { 'detail-type': 'Object Created', source: 'aws.s3', detail: { bucket: { name: 'docs-src' }, object: { key: 'a b+c.txt', size: 3, etag: 'e', sequencer: '1' } } }, '/sync', 'docs', 'a b+c.txt'],
    ['oss', { events: [{ eventName: 'ObjectCreated:PutObject', eventSource: 'acs:oss', eventTime: '2024-01-01T00:00:00Z', region: 'cn-hangzhou', oss: { bucket: { name: 'docs-src' }, object: { key: 'oss/ключ.txt', size: 3, eTag: 'ABC', deltaSize: 3 } } }] }, '/sync', 'docs', 'oss/ключ.txt'],
    ['minio', { EventName: 's3:ObjectCreated:Put', Key: 'docs-src/m%20inio.txt', Records: [s3Record('docs-src', 'm+inio.txt')] }, '/sync', 'docs', 'm inio.txt'],
    ['dth', { key: 'dth/x.bin', size: 10 }, '/sync?task=docs', 'docs', 'dth/x.bin'],
    ['dth-list', [{ key: 'dth/y.bin', size: 1 }, { key: 'dth/z.bin', size: 2 }], '/sync?task=docs', 'docs', 'dth/y.bin'],
    ['oms', { object_keys: ['oms%2Fa%2Bb.txt'] }, '/v2/proj-1/sync-tasks/docs/events', 'docs', 'oms/a+b.txt'],
  ];
  for (const [format, body, path, task, key] of cases) {
    const res = await post(body, path);
    t.equal(res.status, 202, `${format}: ${res.text}`);
    t.equal(res.body.format, format, `${format}: detected`);
    t.ok(res.body.accepted >= 1, `${format}: accepted`);
    t.same(res.body.jobs[0], { taskId: task, key }, `${format}: routed and decoded`);
  }
  const keys = (await stack.jobs()).map((j) => `${j.taskId}:${j.key}`);
  t.ok(keys.includes('photos:img/a b+c.jpg') && keys.includes('docs:oms/a+b.txt') && keys.includes('docs:dth/z.bin'), 'jobs are in the queue');
});

t.test('removal events queue a reconcile like any other; s3:TestEvent is answered and ignored', async (t) => {
  await clearJobs();
  const removed = await post({ Records: [s3Record('photos-src', 'img/gone.jpg', 'ObjectRemoved:Delete')] });
  t.equal(removed.status, 202);
  t.equal(removed.body.accepted, 1);
  const test = await post({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: '2024-01-01T00:00:00Z', Bucket: 'photos-src', RequestId: 'r', HostId: 'h' });
  t.equal(test.status, 202, test.text);
  t.equal(test.body.accepted, 0);
  t.equal(test.body.ignored, 1);
  t.same((await stack.jobs()).map((j) => j.key), ['img/gone.jpg']);
});

t.test('keys outside the prefixes and buckets of no task are ignored with a reason', async (t) => {
  await clearJobs();
  const res = await post({ Records: [s3Record('photos-src', 'img/in.jpg'), s3Record('photos-src', 'other/out.jpg'), s3Record('unknown-bucket', 'x')] });
  t.equal(res.status, 202);
  t.equal(res.body.accepted, 1);
  t.equal(res.body.ignored, 2);
  t.same(
    res.body.ignoredReasons.map((r) => r.reason).sort(),
    ['no task of this sender has source bucket unknown-bucket', 'outside the task prefixes'],
  );
  t.same((await stack.jobs()).map((j) => j.key), ['img/in.jpg']);
});

t.test('keys already queued count as duplicates, in one request and across requests', async (t) => {
  await clearJobs();
  const first = await post({ Records: [s3Record('photos-src', 'img/d.jpg'), s3Record('photos-src', 'img/d.jpg'), s3Record('photos-src', 'img/e.jpg')] });
  t.equal(first.status, 202);
  t.equal(first.body.accepted, 2);
  t.equal(first.body.duplicates, 1);
  const second = await post({ Records: [s3Record('photos-src', 'img/d.jpg')] });
  t.equal(second.body.accepted, 0);
  t.equal(second.body.duplicates, 1);
  t.equal(await stack.jobCount(), 2);
});

t.test('a replayed request gets the first answer (200, replayed) and queues nothing new', async (t) => {
  await clearJobs();
  const body = JSON.stringify({ Records: [s3Record('photos-src', 'img/replay.jpg')] });
  const u = new URL(`${stack.url}/sync`);
  const { host: _host, ...headers } = signedHeaders('POST', u, body, creds);
  const first = await fetch(u, { method: 'POST', headers, body });
  t.equal(first.status, 202);
  const firstBody = (await first.json()) as Accepted;
  await clearJobs(); // even if the job was consumed meanwhile, a replay must not re-queue it
  const again = await fetch(u, { method: 'POST', headers, body });
  t.equal(again.status, 200);
  const againBody = (await again.json()) as Accepted;
  t.equal(againBody.replayed, true);
  t.equal(againBody.requestId, firstBody.requestId, 'same answer as the first time');
  t.equal(againBody.accepted, firstBody.accepted);
  t.equal(await stack.jobCount(), 0, 'nothing queued by the replay');
  // Concurrent replays of a fresh request: exactly one is accepted.
  const body2 = JSON.stringify({ Records: [s3Record('photos-src', 'img/race.jpg')] });
  const { host: _h2, ...headers2 } = signedHeaders('POST', u, body2, creds);
  const answers = await Promise.all(Array.from({ length: 8 }, () => fetch(u, { method: 'POST', headers: headers2, body: body2 })));
  t.same(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 200, 200, 202]);
  t.equal(await stack.jobCount(), 1);
});

t.test('routing errors: TASK_REQUIRED, TASK_FORBIDDEN, TASK_NOT_FOUND', async (t) => {
  await clearJobs();
  const noBucket = await post({ key: 'x', size: 1 });
  t.equal(noBucket.status, 400);
  t.equal(noBucket.body.error.code, 'TASK_REQUIRED');
  const forbidden = await post({ key: 'x', size: 1 }, '/sync?task=logs');
  t.equal(forbidden.status, 403);
  t.equal(forbidden.body.error.code, 'TASK_FORBIDDEN');
  const omsForbidden = await post({ object_keys: ['a'] }, '/v2/p/sync-tasks/docs/events', otherCreds);
  t.equal(omsForbidden.status, 403);
  t.equal(omsForbidden.body.error.code, 'TASK_FORBIDDEN');
  t.equal(await stack.jobCount(), 0);
});

t.test('bad input: exact status and code, nothing queued, nothing accepted earlier lost', async (t) => {
  await clearJobs();
  const kept = await post({ Records: [s3Record('photos-src', 'img/kept.jpg')] });
  t.equal(kept.status, 202);
  const manyKeys = { object_keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) };
  const cases: [string, unknown, string, number, string][] = [
    ['malformed JSON', '{"Records": [', '/sync', 400, 'INVALID_JSON'],
    ['empty body', '', '/sync', 400, 'INVALID_JSON'],
    ['valid JSON of no known format', { hello: 'world' }, '/sync', 400, 'UNSUPPORTED_FORMAT'],
    ['a JSON string', '"just a string"', '/sync', 400, 'UNSUPPORTED_FORMAT'],
    ['known format, no events', { Records: [] }, '/sync', 400, 'NO_EVENTS'],
    ['OMS with no keys', { object_keys: [] }, '/v2/p/sync-tasks/docs/events', 400, 'NO_EVENTS'],
    ['more than 1,000 keys', manyKeys, '/v2/p/sync-tasks/docs/events', 400, 'TOO_MANY_KEYS'],
    ['empty key', { object_keys: [''] }, '/v2/p/sync-tasks/docs/events', 400, 'INVALID_KEY'],
    ['key over 1,024 bytes', { object_keys: ['é'.repeat(513)] }, '/v2/p/sync-tasks/docs/events', 400, 'INVALID_KEY'],
    ['invalid percent-encoding', { object_keys: ['bad%zzkey'] }, '/v2/p/sync-tasks/docs/events', 400, 'INVALID_KEY'],
    ['truncated percent-encoding', { object_keys: ['bad%4'] }, '/v2/p/sync-tasks/docs/events', 400, 'INVALID_KEY'],
    ['percent-encoding of invalid UTF-8', { object_keys: ['bad%ff%fe'] }, '/v2/p/sync-tasks/docs/events', 400, 'INVALID_KEY'],
  ];
  for (const [name, body, path, status, code] of cases) {
    const res = await post(body, path);
    t.equal(res.status, status, `${name}: status (${res.text.slice(0, 200)})`);
    t.equal(res.body?.error?.code, code, `${name}: code`);
  }
  const big = await post(JSON.stringify({ Records: [s3Record('photos-src', 'img/big.jpg')], pad: 'x'.repeat(1024 * 1024) }));
  t.equal(big.status, 413);
  t.equal(big.body.error.code, 'BODY_TOO_LARGE');
  t.same((await stack.jobs()).map((j) => j.key), ['img/kept.jpg'], 'only the earlier accepted job is queued');
});

t.test('expired X-Sdk-Date: 401 REQUEST_EXPIRED', async (t) => {
  const body = JSON.stringify({ Records: [s3Record('photos-src', 'img/old.jpg')] });
  const res = await signedPost(`${stack.url}/sync`, body, creds, { date: new Date(Date.now() - 16 * 60_000) });
  t.equal(res.status, 401);
  t.equal((res.body as { error: { code: string } }).error.code, 'REQUEST_EXPIRED');
});

t.test('every accepted request is in the intake ledger', async (t) => {
  const res = await post({ Records: [s3Record('photos-src', 'img/ledger.jpg')] });
  const { rows } = await stack.pool.query('SELECT sender, task_id, format, accepted, duplicates, ignored FROM bb_intake_ledger WHERE request_id = $1', [
    res.body.requestId,
  ]);
  t.same(rows, [{ sender: 'fn-1', task_id: 'photos', format: 's3', accepted: 1, duplicates: 0, ignored: 0 }]);
});
