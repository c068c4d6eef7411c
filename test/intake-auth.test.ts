import t from 'tap';
import { randomBytes } from 'node:crypto';
import { signedPost } from '../src/auth/signed-client.js';
import { startStack, testTask, type Stack } from './support/stack.js';

const secret = randomBytes(24).toString('hex');
const creds = { accessKeyId: 'lambda-1', secret };

function s3Event(bucket: string, key: string) {
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        s3: { bucket: { name: bucket }, object: { key, size: 3, eTag: 'abc', sequencer: '01' } },
      },
    ],
  });
}

let stack: Stack;
t.before(async () => {
  stack = await startStack({
    tasks: [testTask('photos')],
    senders: [{ accessKeyId: 'lambda-1', secrets: [secret], tasks: ['photos'], source: 'config' }],
  });
});
t.teardown(() => stack.close());

t.test('a signed S3 event is queued (202) and the job is in pg-boss', async (t) => {
  const res = await signedPost(`${stack.url}/sync`, s3Event('photos-src', 'a/b.jpg'), creds);
  t.equal(res.status, 202, res.text);
  const body = res.body as { accepted: number; duplicates: number; ignored: number; jobs: { taskId: string; key: string }[] };
  t.equal(body.accepted, 1);
  t.equal(body.duplicates, 0);
  t.same(body.jobs, [{ taskId: 'photos', key: 'a/b.jpg' }]);
  t.same(await stack.jobs(), [{ taskId: 'photos', key: 'a/b.jpg', state: 'created' }]);
});

t.test('unsigned, wrongly signed and unknown-key requests get 401 and queue nothing', async (t) => {
  const before = await stack.jobs();
  const body = s3Event('photos-src', 'evil.jpg');

  const unsigned = await fetch(`${stack.url}/sync`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  t.equal(unsigned.status, 401);
  t.same(((await unsigned.json()) as { error: { code: string } }).error.code, 'SIGNATURE_INVALID');

  const wrong = await signedPost(`${stack.url}/sync`, body, { accessKeyId: 'lambda-1', secret: 'not-the-secret' });
  t.equal(wrong.status, 401);
  t.equal((wrong.body as { error: { code: string } }).error.code, 'SIGNATURE_INVALID');

  const unknown = await signedPost(`${stack.url}/sync`, body, { accessKeyId: 'nobody', secret });
  t.equal(unknown.status, 401);
  t.equal((unknown.body as { error: { code: string } }).error.code, 'UNKNOWN_ACCESS_KEY');

  // A body altered after signing: the signature no longer matches.
  const { signedHeaders } = await import('../src/auth/signed-client.js');
  const u = new URL(`${stack.url}/sync`);
  const h = signedHeaders('POST', u, body, creds);
  const { host: _h, ...send } = h;
  const tampered = await fetch(u, { method: 'POST', headers: send, body: body.replace('evil', 'evil2') });
  t.equal(tampered.status, 401);
  t.equal(((await tampered.json()) as { error: { code: string } }).error.code, 'SIGNATURE_INVALID');

  t.same(await stack.jobs(), before, 'nothing queued, nothing accepted earlier was lost');
});

t.test('errors use the one JSON error shape', async (t) => {
  const res = await fetch(`${stack.url}/no-such-route`);
  t.equal(res.status, 404);
  t.same(await res.json(), { error: { code: 'NOT_FOUND', message: 'no route for GET /no-such-route' } });
});

t.test('health and readiness', async (t) => {
  t.equal((await fetch(`${stack.url}/healthz`)).status, 200);
  const ready = await fetch(`${stack.url}/readyz`);
  t.equal(ready.status, 200);
  t.same(((await ready.json()) as { checks: unknown }).checks, { database: 'ok', queue: 'ok' });
});
