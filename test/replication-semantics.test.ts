/**
 * What reconcile decides, through the real workers: deletes only when the
 * task allows them and the source is really gone (a stale removal event never
 * deletes a newer object, a missing source bucket never looks like "deleted"),
 * the compare modes, archived sources (recorded, or restored and copied
 * later), the status row's fields, the per-task copy cap and the worker
 * concurrency, a busy key not blocking the queue, and orphaned uploads.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { enqueueReplications } from '../src/queue/enqueue.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, s3Endpoint, startReplication, type ReplicationHarness } from './support/replication.js';
import { startS3Server, type S3Server } from './support/s3-server.js';

const KIB = 1024;
const PART = 100 * KIB;
const OPTIONS = { multipartThresholdBytes: 256 * KIB, partSizeBytes: PART, partConcurrency: 2 };
const CONCURRENCY = 2;

let s3: S3Server;
let oss: OssServer;
let s3c: S3Client;
let h: ReplicationHarness;
let capProxy: FaultProxy;
let holProxy: FaultProxy;

t.before(async () => {
  s3 = await startS3Server({ buckets: ['semsrc', 'semsize', 'semnone', 'archdst', 'restdst'], minPartSize: PART });
  oss = await startOssServer({ buckets: ['semdst', 'semkeep', 'archsrc', 'capdst', 'holdst', 'semdst2'], minPartSize: PART, restoreDelayMs: 800 });
  capProxy = await startFaultProxy({ target: oss.endpoint });
  holProxy = await startFaultProxy({ target: oss.endpoint });
  s3c = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const S3 = (b: string) => s3Endpoint(s3.endpoint, b);
  const O = (b: string, endpoint = oss.endpoint) => ossEndpoint(endpoint, b);
  h = await startReplication({
    env: { T_S3_AK: s3.accessKeyId, T_S3_SK: s3.secretAccessKey, T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    concurrency: CONCURRENCY,
    restoreRecheckSeconds: 1,
    tasks: [
      { id: 'del', source: S3('semsrc'), destination: O('semdst'), options: { ...OPTIONS, deletes: true } },
      { id: 'keep', source: S3('semsrc'), destination: O('semkeep'), options: OPTIONS },
      { id: 'size', source: S3('semsrc'), destination: S3('semsize'), options: { ...OPTIONS, compare: 'size' } },
      { id: 'none', source: S3('semsrc'), destination: S3('semnone'), options: { ...OPTIONS, compare: 'none' } },
      { id: 'arch', source: O('archsrc'), destination: S3('archdst'), options: OPTIONS },
      { id: 'restore', source: O('archsrc'), destination: S3('restdst'), options: { ...OPTIONS, restoreArchived: true } },
      { id: 'cap1', source: S3('semsrc'), destination: O('capdst', capProxy.endpoint), options: { ...OPTIONS, maxConcurrentCopies: 1 } },
      { id: 'cap3', source: S3('semsrc'), destination: O('capdst', capProxy.endpoint), options: { ...OPTIONS, maxConcurrentCopies: 3 } },
      { id: 'hol', source: S3('semsrc'), destination: O('holdst', holProxy.endpoint), options: OPTIONS },
      { id: 'nobucket', source: S3('no-such-bucket'), destination: O('semdst2'), options: { ...OPTIONS, deletes: true } },
    ],
  });
});

t.teardown(async () => {
  await h?.close();
  s3c?.destroy();
  await capProxy?.close();
  await holProxy?.close();
  await s3?.close();
  await oss?.close();
});

async function putS3(bucket: string, key: string, body: Buffer): Promise<void> {
  await s3c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }));
}

async function getS3(bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const r = await s3c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  } catch {
    return undefined;
  }
}

async function deleteS3(bucket: string, key: string): Promise<void> {
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  await s3c.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

t.test('deletes', async (t) => {
  t.test('a removal event that arrives after a newer put deletes nothing: the destination gets the newer object', async (t) => {
    const key = 'del/replaced.txt';
    const old = Buffer.from('version 1');
    const newer = Buffer.from('version 2, longer');
    await putS3('semsrc', key, old);
    await h.enqueue('del', key);
    await h.settled('del', key);
    await putS3('semsrc', key, newer);
    // The removal of version 1 is delivered late, after the put of version 2.
    await h.enqueue('del', key, 'removed');
    const row = await h.settled('del', key, (r) => r.status !== 'completed' || r.sourceEtag !== null);
    t.equal(row.status, 'completed');
    t.ok(oss.getObject('semdst', key)?.body.equals(newer), 'destination holds the newer object');
    // And once more, now in sync: still nothing deleted.
    await h.enqueue('del', key, 'removed');
    const again = await h.settled('del', key, (r) => r.status === 'in_sync');
    t.equal(again.status, 'in_sync');
    t.ok(oss.getObject('semdst', key));
  });
  t.test('the source is gone and the task allows deletes: the destination copy is deleted', async (t) => {
    const key = 'del/gone.txt';
    await putS3('semsrc', key, Buffer.from('bye'));
    await h.enqueue('del', key);
    await h.settled('del', key);
    t.ok(oss.getObject('semdst', key));
    await deleteS3('semsrc', key);
    await h.enqueue('del', key, 'removed');
    const row = await h.settled('del', key, (r) => r.status === 'deleted');
    t.equal(row.status, 'deleted');
    t.equal(oss.getObject('semdst', key), undefined, 'deleted on the destination');
  });
  t.test('the source is gone but the task does not allow deletes: source_missing, the copy stays', async (t) => {
    const key = 'del/kept.txt';
    await putS3('semsrc', key, Buffer.from('keep me'));
    await h.enqueue('keep', key);
    await h.settled('keep', key);
    await deleteS3('semsrc', key);
    await h.enqueue('keep', key, 'removed');
    const row = await h.settled('keep', key, (r) => r.status === 'source_missing');
    t.equal(row.status, 'source_missing');
    t.ok(oss.getObject('semkeep', key), 'destination copy kept');
  });
  t.test('a missing source bucket is an error, never "every key was deleted"', async (t) => {
    const key = 'any.txt';
    await oss.client('semdst2').put(key, Buffer.from('precious'));
    await h.enqueue('nobucket', key, 'removed');
    const row = await h.settled('nobucket', key);
    t.equal(row.status, 'failed');
    t.equal(row.attempts, 1, 'permanent: not retried');
    t.equal(row.lastErrorCode, 'NoSuchBucket');
    t.ok(oss.getObject('semdst2', key), 'nothing deleted');
  });
});

t.test('compare modes', async (t) => {
  const key = 'compare/same-size.bin';
  const a = randomBytes(1000);
  const b = randomBytes(1000);
  await putS3('semsrc', key, a);
  for (const task of ['size', 'none']) {
    await h.enqueue(task, key);
    t.equal((await h.settled(task, key)).status, 'completed', `${task}: first copy`);
  }
  await putS3('semsrc', key, b);
  await h.enqueue('size', key);
  t.equal((await h.settled('size', key, (r) => r.status === 'in_sync')).status, 'in_sync', 'size: same size is equal');
  t.ok((await getS3('semsize', key))?.equals(a), 'size: old bytes left alone');
  await h.enqueue('none', key);
  t.equal((await h.settled('none', key, (r) => r.status === 'completed' && r.attempts === 1)).status, 'completed');
  t.ok((await getS3('semnone', key))?.equals(b), 'none: always copied');
  await h.enqueue('none', key);
  const row = await h.settled('none', key, (r) => r.status === 'completed');
  t.equal(row.status, 'completed', 'none: copied even when unchanged');
});

t.test('archived sources', async (t) => {
  const key = 'cold/archive.bin';
  const body = randomBytes(3 * PART);
  await oss.client('archsrc').put(key, body, { headers: { 'x-oss-storage-class': 'Archive' } });
  const restores = () => oss.requests.filter((r) => r.method === 'POST' && 'restore' in r.query && r.key === key).length;

  t.test('without restoreArchived: recorded archived, nothing copied, no restore requested', async (t) => {
    await h.enqueue('arch', key);
    const row = await h.settled('arch', key);
    t.equal(row.status, 'archived');
    t.equal(await getS3('archdst', key), undefined);
    t.equal(restores(), 0);
  });
  t.test('with restoreArchived: a restore is requested, the key is retried later and copied once readable', async (t) => {
    await h.enqueue('restore', key);
    // The first reconcile records archived and queues the key again (its re-check job is still queued then).
    let first;
    for (let i = 0; i < 200 && !first; i++) {
      first = await h.status('restore', key);
      if (!first) await new Promise((r) => setTimeout(r, 50));
    }
    t.equal(first?.status, 'archived', 'first recorded archived');
    const row = await h.settled('restore', key, (r) => r.status === 'completed', 30_000);
    t.equal(row.status, 'completed');
    t.equal(restores(), 1, 'one restore request');
    t.ok((await getS3('restdst', key))?.equals(body), 'copied after the restore');
    const head = await s3c.send(new HeadObjectCommand({ Bucket: 'restdst', Key: key }));
    t.equal(head.StorageClass, 'GLACIER', 'OSS Archive maps to S3 GLACIER');
  });
});

t.test('a new object is read with one GET (its answer is the head); an existing copy is checked with HEAD unless a copy is expected', async (t) => {
  const key = 'reads/new-object.bin';
  const body = randomBytes(40 * KIB);
  await oss.client('archsrc').put(key, body, { headers: { 'Content-Type': 'application/x-new', 'x-oss-meta-origin': 'oss' } });
  const sourceRequests = () => oss.requests.filter((r) => r.bucket === 'archsrc' && r.key === key).map((r) => r.method);
  const before = sourceRequests().length;
  await h.enqueue('arch', key);
  const first = await h.settled('arch', key);
  t.equal(first.status, 'completed');
  t.same(sourceRequests().slice(before), ['GET'], 'the copy read the source with a single GET and no HEAD');
  t.ok((await getS3('archdst', key))?.equals(body), 'bytes copied');
  const head = await s3c.send(new HeadObjectCommand({ Bucket: 'archdst', Key: key }));
  t.equal(head.ContentType, 'application/x-new', 'headers taken from the GET answer');
  t.equal(head.Metadata?.['origin'], 'oss', 'user metadata taken from the GET answer');
  t.equal(first.sourceCrc64, oss.getObject('archsrc', key)?.crc64, 'the source CRC-64 from the GET answer is recorded');

  // A job that does not expect a copy (an operator's retry) HEADs the destination first, then the source.
  const mid = sourceRequests().length;
  await enqueueReplications(h.boss, h.pool, [{ taskId: 'arch', key, trigger: 'retry' }]);
  const second = await h.settled('arch', key, (r) => r.status === 'in_sync' && r.updatedAt > first.updatedAt);
  t.equal(second.status, 'in_sync');
  t.same(sourceRequests().slice(mid), ['HEAD'], 'with a copy on the destination, the source is only HEADed');

  // An event says the source changed: its GET went out with the destination HEAD, and is dropped unread.
  const late = sourceRequests().length;
  await h.enqueue('arch', key);
  const third = await h.settled('arch', key, (r) => r.status === 'in_sync' && r.updatedAt > second.updatedAt);
  t.equal(third.status, 'in_sync');
  t.same(sourceRequests().slice(late), ['GET'], 'a duplicate event opened the source once; nothing was copied');
});

t.test('the status row records what happened', async (t) => {
  const key = 'status/fields.bin';
  const body = randomBytes(3 * PART + 10);
  await putS3('semsrc', key, body);
  await h.enqueue('keep', key);
  const row = await h.settled('keep', key);
  t.equal(row.status, 'completed');
  t.equal(row.attempts, 1);
  t.equal(row.bytes, body.length);
  t.match(row.sourceEtag, /^[0-9a-f]{32}$/, 'source ETag');
  t.match(row.sourceCrc64, /^\d+$/, 'CRC-64 of the bytes (the S3 source has none of its own)');
  t.equal(row.sourceCrc64, oss.getObject('semkeep', key)?.crc64, 'equal to the destination CRC-64');
  t.equal(row.destinationEtag?.toUpperCase(), oss.getObject('semkeep', key)?.etag, 'destination ETag');
  t.type(row.durationMs, 'number');
  t.ok(row.completedAt instanceof Date);
  t.ok(row.firstSeenAt instanceof Date && row.updatedAt instanceof Date);
  t.equal(row.lastErrorCode, null);
});

t.test('per-task copy cap and worker concurrency', async (t) => {
  let inFlight = 0;
  const max: Record<string, number> = {};
  let maxTotal = 0;
  const current: Record<string, number> = {};
  capProxy.add({
    match: { method: 'PUT', test: (i) => /^\/cap\//.test(i.path) },
    action: {
      type: 'hook',
      hook: async (info) => {
        const task = /^\/cap\/(cap\d)\//.exec(info.path)![1]!;
        inFlight++;
        current[task] = (current[task] ?? 0) + 1;
        max[task] = Math.max(max[task] ?? 0, current[task]!);
        maxTotal = Math.max(maxTotal, inFlight);
        await new Promise((r) => setTimeout(r, 150));
        inFlight--;
        current[task]!--;
      },
    },
  });
  const keys = (task: string) => Array.from({ length: 5 }, (_, i) => `cap/${task}/k${i}.txt`);
  for (const task of ['cap1', 'cap3']) for (const key of keys(task)) await putS3('semsrc', key, Buffer.from(key));
  await h.enqueue('cap1', keys('cap1'));
  await h.enqueue('cap3', keys('cap3'));
  for (const task of ['cap1', 'cap3']) {
    for (const key of keys(task)) t.equal((await h.settled(task, key)).status, 'completed');
  }
  t.equal(max.cap1, 1, 'cap 1: one copy at a time');
  t.ok((max.cap3 ?? 0) <= 3, `cap 3: at most 3 at a time (saw ${max.cap3})`);
  t.ok(maxTotal <= CONCURRENCY, `worker concurrency ${CONCURRENCY}: at most that many at once (saw ${maxTotal})`);
  capProxy.clear();
});

t.test('a key whose copy is running, with another event for it queued, does not hold up other keys', async (t) => {
  const busy = 'hol/busy.bin';
  await putS3('semsrc', busy, randomBytes(1000));
  const others = Array.from({ length: 6 }, (_, i) => `hol/other-${i}.txt`);
  for (const k of others) await putS3('semsrc', k, Buffer.from(k));
  const stall = holProxy.add({ match: { method: 'PUT', path: `/${busy}` }, nth: 1, action: { type: 'stall' } });
  await h.enqueue('hol', busy);
  for (let i = 0; i < 100 && stall.fired === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(stall.fired, 1, 'the busy key is mid-copy');
  // A second event for the busy key: queued behind the running one (one active job per key).
  t.equal((await h.enqueue('hol', busy)).length, 1, 'second job queued');
  await h.enqueue('hol', others);
  for (const k of others) t.equal((await h.settled('hol', k, undefined, 20_000)).status, 'completed', `${k} done while the busy key is stuck`);
  t.equal((await h.status('hol', busy)), undefined, 'busy key still running');
  holProxy.release();
  const row = await h.settled('hol', busy, (r) => r.status === 'in_sync');
  t.equal(row.status, 'in_sync', 'the queued job ran after the first one and found it in sync');
});

t.test('a recorded multipart upload for a key that will not be copied is aborted (no orphans)', async (t) => {
  const key = 'orphan/was-big.bin';
  await putS3('semsrc', key, randomBytes(2 * PART)); // exists for the first copy...
  await h.enqueue('keep', key);
  await h.settled('keep', key);
  // ...a crashed attempt left an upload for it, then the source went away.
  const store = oss.client('semkeep');
  const { uploadId } = await store.initMultipartUpload(key);
  await h.uploads.insert({ uploadId, taskId: 'keep', key, destination: 'oss:semkeep', sourceEtag: 'gone', size: 1, partSize: PART });
  t.equal(oss.pendingUploads('semkeep'), 1);
  await deleteS3('semsrc', key);
  await h.enqueue('keep', key, 'removed');
  const row = await h.settled('keep', key, (r) => r.status === 'source_missing');
  t.equal(row.status, 'source_missing');
  t.equal(oss.pendingUploads('semkeep'), 0, 'upload aborted');
  t.equal(await h.uploads.find('keep', key), undefined, 'record removed');
});
