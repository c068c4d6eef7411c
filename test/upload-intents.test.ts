/**
 * Upload intents (src/queue/upload-intents.ts): a multipart upload whose create
 * was interrupted is found and aborted, however the cleanup's own requests
 * fare, and a recorded upload is never touched.
 *
 * Each test puts one fault exactly where test/chaos-network.test.ts hits it by
 * chance (about 1 run in 15 left one upload open and unrecorded):
 *  - the create's answer is cut, then the next attempt's listing is refused
 *    (503): the copy goes ahead and records a new upload, which must not
 *    erase the intent of the first (the chaos flake; migrations/009);
 *  - the abort of a listed upload answers NoSuchUpload (the id was damaged
 *    in transit), or a byte of the listing is flipped in a key (the upload
 *    drops out of the answer): neither may be read as "nothing left";
 *  - a recorded upload that cannot be resumed fails to abort, and the new
 *    upload's record replaces it (so it becomes unrecorded, still open);
 *  - the S3 SDK retries a create whose answer was lost, making a second upload;
 *  - a destination that keeps refusing to list: follow-ups stop at the bound;
 *  - a key whose copy fails for good while the intent stands: a follow-up still comes.
 * Real PostgreSQL, the OSS test server and s3rver, behind the fault proxy.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { MAX_FAILED_SWEEPS, UploadIntents } from '../src/queue/upload-intents.js';
import { StorageError } from '../src/storage/errors.js';
import { OssStore } from '../src/storage/oss-store.js';
import { S3Store } from '../src/storage/s3-store.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication, type ReplicationHarness } from './support/replication.js';
import { startS3Server, type S3Server } from './support/s3-server.js';

const KIB = 1024;
const PART = 100 * KIB;
const TASK = 'ui';
const log = pino({ level: 'silent' });

let oss: OssServer;
let dstProxy: FaultProxy;
let h: ReplicationHarness;
/** The destination as the workers see it (through the fault proxy), for driving a sweep directly. */
let dst: OssStore;
let intents: UploadIntents;

t.before(async () => {
  oss = await startOssServer({ buckets: ['ui-src', 'ui-dst'], minPartSize: PART });
  dstProxy = await startFaultProxy({ target: oss.endpoint });
  h = await startReplication({
    tasks: [
      {
        id: TASK,
        source: ossEndpoint(oss.endpoint, 'ui-src'),
        destination: ossEndpoint(dstProxy.endpoint, 'ui-dst'),
        options: { multipartThresholdBytes: 3 * PART, partSizeBytes: PART, partConcurrency: 2 },
      },
    ],
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    retryLimit: 5,
    retryDelaySeconds: 0,
  });
  dst = new OssStore({ bucket: 'ui-dst', region: 'oss-cn-hangzhou', endpoint: dstProxy.endpoint, credentials: { accessKeyId: oss.accessKeyId, accessKeySecret: oss.accessKeySecret } });
  intents = new UploadIntents(h.pool);
});

t.teardown(async () => {
  await dst?.close();
  await h?.close();
  await dstProxy?.close();
  await oss?.close();
});

/** Upload ids open on the destination for `key`, read on the server itself (never through the proxy). */
async function openUploads(key: string): Promise<string[]> {
  const res = await oss.client('ui-dst').listUploads({ prefix: key, 'max-uploads': 1000 } as never);
  return (res.uploads as unknown as { name: string; uploadId: string }[]).filter((u) => u.name === key).map((u) => u.uploadId);
}

/** The raw ListMultipartUploads answer for `key`, exactly as the store's request gets it. */
async function listingBody(key: string): Promise<Buffer> {
  const res = await oss.client('ui-dst').listUploads({ prefix: key, 'max-uploads': '1000' } as never);
  return (res.res as unknown as { data: Buffer }).data;
}

async function intent(key: string): Promise<{ held: boolean; failed_sweeps: number } | undefined> {
  const { rows } = await h.pool.query<{ held: boolean; failed_sweeps: number }>('SELECT held, failed_sweeps FROM bb_upload_intents WHERE task_id = $1 AND key = $2', [TASK, key]);
  return rows[0];
}

/** An upload made on the server behind BucketBridge's back (as a create whose answer was lost), and the intent saying so. */
async function lostCreate(key: string): Promise<string> {
  const { uploadId } = await oss.client('ui-dst').initMultipartUpload(key);
  await h.pool.query('INSERT INTO bb_upload_intents (task_id, key) VALUES ($1, $2)', [TASK, key]);
  return uploadId;
}

const listings = (key: string) => ({ method: 'GET', query: { uploads: true as const, prefix: key } });
const requestsFor = (key: string, from: number) =>
  dstProxy.log.slice(from).filter((e) => e.path.includes(key) || e.query.prefix === key).map((e) => `${e.method} ${e.query.uploads !== undefined ? '?uploads' : e.query.uploadId !== undefined ? '?uploadId' : ''} ${e.status ?? 'cut'}`);

t.test('create answer cut, then the next attempt cannot list (503): the new upload is recorded, the intent is kept, the first upload is aborted', async (t) => {
  const key = 'flake/big object.bin';
  const body = randomBytes(5 * PART + 321);
  await oss.client('ui-src').put(key, body);
  // The upload is created; its id never arrives (the chaos test's "reset-mid-body" on the create).
  const cut = dstProxy.add({ match: { method: 'POST', query: { uploads: true }, path: /flake\// }, nth: 1, action: { type: 'reset', afterBytes: 1 } });
  // The next attempt's cleanup is refused (the chaos test's 503 SlowDown on the listing).
  const refused = dstProxy.add({ match: listings(key), nth: 1, action: { type: 'status', status: 503, code: 'SlowDown' } });
  t.teardown(() => (cut.remove(), refused.remove()));
  const from = dstProxy.log.length;
  await h.enqueue(TASK, key);
  const row = await h.settled(TASK, key, undefined, 60_000);
  t.equal(cut.fired, 1, 'the create answer was cut');
  t.equal(refused.fired, 1, 'the first listing was refused');
  t.ok(['completed', 'in_sync'].includes(row.status), `replicated (${row.status})`);
  t.ok(oss.getObject('ui-dst', key)?.body.equals(body), 'byte-identical');
  t.same(await openUploads(key), [], 'no upload left open: the one whose id was lost was aborted');
  t.equal(await intent(key), undefined, 'the intent is gone once a listing showed nothing unrecorded');
  t.equal(await h.uploads.find(TASK, key), undefined, 'nothing left recorded');
  t.comment(requestsFor(key, from).join(', '));
});

t.test('the trigger keeps a held intent: recording an upload made while an earlier doubt stands does not erase it', async (t) => {
  const key = 'held/object.bin';
  const orphan = await lostCreate(key);
  // A cleanup that failed left the intent; the copy goes ahead through the guarded store.
  const guarded = intents.guard(TASK, key, dst);
  const recordedId = await guarded.createMultipartUpload(key);
  await h.uploads.insert({ uploadId: recordedId, taskId: TASK, key, destination: 'oss:ui-dst', sourceEtag: 'x', size: 1, partSize: PART });
  t.same(await intent(key), { held: true, failed_sweeps: 0 }, 'the intent outlives the record of the new upload');
  const r = await intents.sweep(TASK, key, dst, log);
  t.same({ cleared: r.cleared, aborted: r.aborted }, { cleared: true, aborted: 1 }, 'the sweep aborts one upload and clears');
  t.same(await openUploads(key), [recordedId], 'the unrecorded one is gone, the recorded one untouched');
  t.not(recordedId, orphan);
  t.equal(await intent(key), undefined, 'intent removed');
  // Without a standing doubt, recording removes the intent as before (no listing needed).
  await h.uploads.delete(recordedId);
  await oss.client('ui-dst').abortMultipartUpload(key, recordedId);
  const clean = await guarded.createMultipartUpload(key);
  t.same(await intent(key), { held: false, failed_sweeps: 0 }, 'a fresh intent is not held');
  await h.uploads.insert({ uploadId: clean, taskId: TASK, key, destination: 'oss:ui-dst', sourceEtag: 'x', size: 1, partSize: PART });
  t.equal(await intent(key), undefined, 'recorded: intent removed by the trigger');
  await oss.client('ui-dst').abortMultipartUpload(key, clean);
  await h.uploads.delete(clean);
});

t.test('a recorded upload that cannot be resumed and whose abort fails is replaced: the intent is held, a follow-up aborts the old upload', async (t) => {
  const key = 'replaced/big object.bin';
  const body = randomBytes(4 * PART + 99);
  await oss.client('ui-src').put(key, body);
  // Recorded by an attempt at another version of the source: not resumable, so the copy aborts it.
  const { uploadId: old } = await oss.client('ui-dst').initMultipartUpload(key);
  await h.uploads.insert({ uploadId: old, taskId: TASK, key, destination: 'oss:ui-dst', sourceEtag: 'an older version', size: body.length, partSize: PART });
  // That abort fails: the record stays, and the new upload's record replaces it.
  const refused = dstProxy.add({ match: { method: 'DELETE', path: /replaced\//, query: { uploadId: old } }, nth: 1, action: { type: 'status', status: 500, code: 'InternalError' } });
  t.teardown(() => refused.remove());
  const from = dstProxy.log.length;
  await h.enqueue(TASK, key);
  const row = await h.settled(TASK, key, undefined, 60_000);
  t.equal(refused.fired, 1, "the copy's abort of the old upload failed");
  t.ok(['completed', 'in_sync'].includes(row.status), `replicated (${row.status})`);
  t.ok(oss.getObject('ui-dst', key)?.body.equals(body), 'byte-identical');
  t.same(await openUploads(key), [], 'the old upload was aborted (by the follow-up)');
  t.equal(await intent(key), undefined, 'intent removed');
  t.equal(await h.uploads.find(TASK, key), undefined, 'nothing left recorded');
  t.equal((await h.jobs(TASK, key)).length, 2, 'the job and one follow-up');
  t.comment(requestsFor(key, from).join(', '));
});

t.test('the abort of a listed upload answers NoSuchUpload (a damaged id): not "done"; the sweep lists again and aborts the real one', async (t) => {
  // A flipped byte in the listing's id makes the abort name an upload the server does not have. The
  // proxy's flip (xor 0xff) turns the hex id non-ASCII, which this server refuses with 403 (an error:
  // the intent is kept anyway); the answer a real destination gives for a wrong id is NoSuchUpload.
  const key = 'garbled-id/object.bin';
  await lostCreate(key);
  const unknown = dstProxy.add({ match: { method: 'DELETE', path: /garbled-id\//, query: { uploadId: true } }, nth: 1, action: { type: 'status', status: 404, code: 'NoSuchUpload' } });
  t.teardown(() => unknown.remove());
  const from = dstProxy.log.length;
  const r = await intents.sweep(TASK, key, dst, log);
  t.equal(unknown.fired, 1, 'the first abort was answered NoSuchUpload');
  t.same(
    requestsFor(key, from),
    ['GET ?uploads 200', 'DELETE ?uploadId 404', 'GET ?uploads 200', 'DELETE ?uploadId 204', 'GET ?uploads 200'],
    'listed again, the upload still there, aborted; a third listing shows none',
  );
  t.same({ cleared: r.cleared, aborted: r.aborted }, { cleared: true, aborted: 1 }, 'cleared, one upload aborted');
  t.same(await openUploads(key), [], 'no upload left open');
  t.equal(await intent(key), undefined, 'intent removed');
});

t.test('a byte of the listing flipped in the key: the answer is refused, the intent kept, the next sweep aborts the upload', async (t) => {
  const key = 'garbled-key/object.bin';
  await lostCreate(key);
  const listing = await listingBody(key);
  const at = listing.indexOf(`<Key>${key}`);
  t.ok(at > 0, 'the key is in the listing');
  const flip = dstProxy.add({ match: listings(key), nth: 1, action: { type: 'flip-response-byte', offset: at + '<Key>'.length + 3 } });
  t.teardown(() => flip.remove());
  const first = await intents.sweep(TASK, key, dst, log);
  t.equal(flip.fired, 1, 'the listing was damaged');
  t.equal(first.cleared, false, 'not cleared');
  t.ok(first.error instanceof StorageError && first.error.code === 'IntegrityMismatch' && first.error.retryable, 'the damaged listing is refused (retryable)');
  t.same(await intent(key), { held: false, failed_sweeps: 1 }, 'intent kept, one failed sweep counted');
  t.equal((await openUploads(key)).length, 1, 'the upload is still open');
  const second = await intents.sweep(TASK, key, dst, log);
  t.same({ cleared: second.cleared, aborted: second.aborted }, { cleared: true, aborted: 1 }, 'the next sweep aborts it and clears');
  t.same(await openUploads(key), [], 'no upload left open');
  t.equal(await intent(key), undefined, 'intent removed');
});

t.test('a destination that keeps refusing the listing: the copy succeeds, follow-ups retry the sweep and stop at the bound; a later job clears it', async (t) => {
  const key = 'stubborn/big object.bin';
  const body = randomBytes(4 * PART + 7);
  await oss.client('ui-src').put(key, body);
  const cut = dstProxy.add({ match: { method: 'POST', query: { uploads: true }, path: /stubborn\// }, nth: 1, action: { type: 'reset', afterBytes: 1 } });
  const refused = dstProxy.add({ match: listings(key), action: { type: 'status', status: 503, code: 'SlowDown' } });
  t.teardown(() => (cut.remove(), refused.remove()));
  await h.enqueue(TASK, key);
  const row = await h.settled(TASK, key, undefined, 60_000);
  t.ok(['completed', 'in_sync'].includes(row.status), `replicated (${row.status})`);
  t.ok(oss.getObject('ui-dst', key)?.body.equals(body), 'byte-identical');
  t.equal(refused.fired, MAX_FAILED_SWEEPS, `the sweep was tried ${MAX_FAILED_SWEEPS} times (the retry, then follow-ups), then no more`);
  t.same(await intent(key), { held: true, failed_sweeps: MAX_FAILED_SWEEPS }, 'the intent is kept');
  t.equal((await openUploads(key)).length, 1, 'the lost upload is still open (the listing never worked)');
  const jobs = await h.jobs(TASK, key);
  t.equal(jobs.length, MAX_FAILED_SWEEPS, `the key's job and ${MAX_FAILED_SWEEPS - 1} follow-ups`);
  refused.remove();
  await h.enqueue(TASK, key);
  await h.settled(TASK, key, (r) => r.status === 'in_sync', 60_000);
  t.same(await openUploads(key), [], "the key's next job aborts it");
  t.equal(await intent(key), undefined, 'intent removed');
});

t.test('a key that fails for good with its intent unresolved still gets a follow-up: the orphan is aborted, the key copied once the destination lets it', async (t) => {
  const key = 'doomed/big object.bin';
  const body = randomBytes(4 * PART + 5);
  await oss.client('ui-src').put(key, body);
  const orphan = await lostCreate(key);
  // The job's sweep cannot list (503), then its copy's first part is refused for good (403): no retry will sweep.
  const refused = dstProxy.add({ match: listings(key), nth: 1, action: { type: 'status', status: 503, code: 'SlowDown' } });
  const denied = dstProxy.add({ match: { method: 'PUT', path: /doomed\//, query: { uploadId: true } }, nth: 1, action: { type: 'status', status: 403, code: 'AccessDenied' } });
  t.teardown(() => (refused.remove(), denied.remove()));
  const deadBefore = (await h.deadLetters()).length;
  const from = dstProxy.log.length;
  await h.enqueue(TASK, key);
  const row = await h.settled(TASK, key, undefined, 60_000);
  t.equal(refused.fired, 1, "the first job's listing was refused");
  t.equal(denied.fired, 1, 'its part upload was refused with 403');
  const dead = (await h.deadLetters()).slice(deadBefore);
  t.same(dead.map((d) => [d.data.key, d.data.error?.code]), [[key, 'AccessDenied']], 'the first job failed for good (dead-lettered, no retry)');
  const jobs = await h.jobs(TASK, key);
  t.equal(jobs.length, 2, 'the failed job and one follow-up');
  t.equal(row.status, 'completed', 'the follow-up copied the key');
  t.ok(oss.getObject('ui-dst', key)?.body.equals(body), 'byte-identical');
  t.notOk((await openUploads(key)).includes(orphan), 'the orphaned upload was aborted');
  t.same(await openUploads(key), [], 'no upload left open');
  t.equal(await intent(key), undefined, 'intent removed');
  t.equal(await h.uploads.find(TASK, key), undefined, 'nothing left recorded');
  t.comment(requestsFor(key, from).join(', '));
});

t.test('S3: a create whose answer is lost is retried by the SDK into a second upload: reported as a failure, the second aborted', async (t) => {
  let s3: S3Server | undefined;
  let proxy: FaultProxy | undefined;
  let store: S3Store | undefined;
  t.teardown(async () => {
    await store?.close();
    await proxy?.close();
    await s3?.close();
  });
  s3 = await startS3Server({ buckets: ['ui-s3'] });
  proxy = await startFaultProxy({ target: s3.endpoint });
  store = new S3Store({ bucket: 'ui-s3', region: 'us-east-1', endpoint: proxy.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  const cut = proxy.add({ match: { method: 'POST', query: { uploads: true } }, nth: 1, action: { type: 'reset', afterBytes: 1 } });
  const err = await store.createMultipartUpload('retried/object.bin').then(
    (id) => id,
    (e: unknown) => e,
  );
  t.equal(cut.fired, 1, 'the first answer was cut');
  t.ok(err instanceof StorageError && err.retryable, `a retryable failure, not an id (${String(err)})`);
  const seen = proxy.log.map((e) => `${e.method} ${e.query.uploads !== undefined ? '?uploads' : '?uploadId'} ${e.status ?? 'cut'}`);
  t.same(seen, ['POST ?uploads 200', 'POST ?uploads 200', 'DELETE ?uploadId 204'], "the SDK's retry made a second upload, which was aborted");
  // A clean create still returns its id.
  const id = await store.createMultipartUpload('retried/object.bin');
  t.match(id, /\S/, 'a create answered at once returns the id');
  await store.abortMultipartUpload('retried/object.bin', id);
});
