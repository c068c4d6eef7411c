/**
 * Data protection through the real replication workers (test/support/
 * replication.ts: database, pg-boss, task registry, store cache, workers)
 * against s3rver and the OSS test server:
 *  - destination SSE: the headers S3 (seen by a recording proxy) and OSS (its
 *    request log) receive on single and multipart copies;
 *  - SSE-C sources: SOURCE_SSE_C without the key or with a wrong one, copied with it;
 *  - client-side envelope encryption, S3→OSS and OSS→S3, 0 B to multipart:
 *    replicas are ciphertext that decrypts to exactly the source bytes, a
 *    wrong private key is refused, a second reconcile and a scan find them in
 *    sync; plaintext / other-key replicas are re-copied; a bb-cse source is
 *    copied verbatim by a plain task and refused by an encrypting one;
 *  - an unreadable or malformed public key: the key fails, nothing is uploaded;
 *  - a throttled task's transfer rate within ±20% of its limit.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { decryptStream, openEnvelope } from '../src/crypto/envelope.js';
import { keyFingerprint, loadPrivateKey, loadPublicKey } from '../src/crypto/keys.js';
import type { ObjectStatusRow } from '../src/db/object-status-repo.js';
import { createLogger } from '../src/logger.js';
import { StoreCache } from '../src/replication/stores.js';
import { ScanRunner } from '../src/scan/runner.js';
import { ScanService } from '../src/scan/scans.js';
import { OssStore } from '../src/storage/oss-store.js';
import { S3Store } from '../src/storage/s3-store.js';
import type { ObjectStore } from '../src/storage/object-store.js';
import { startOssServer } from './support/oss-server.js';
import { startRecordingProxy, type RecordedRequest } from './support/recording-proxy.js';
import { ossEndpoint, s3Endpoint, startReplication, type ReplicationHarness } from './support/replication.js';
import { startS3Server } from './support/s3-server.js';
import { makeRsaKeyPair } from './support/test-certs.js';

const KIB = 1024;
const MIB = 1024 * KIB;

const dir = mkdtempSync(join(tmpdir(), 'bb-prot-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const keys = makeRsaKeyPair(dir, 'replicas');
const otherKeys = makeRsaKeyPair(dir, 'other');
const doomedKeys = makeRsaKeyPair(dir, 'doomed');
const garbledKeys = makeRsaKeyPair(dir, 'garbled');
const privateKey = loadPrivateKey(keys.privateKeyFile);
const keyId = keyFingerprint(loadPublicKey(keys.publicKeyFile));

const s3 = await startS3Server({ buckets: ['src', 'dst-s3', 'cse-s3'] });
t.teardown(() => s3.close());
const oss = await startOssServer({
  buckets: ['src-oss', 'dst-oss', 'cse-oss', 'ssec-dst', 'slow-dst', 'doomed-dst', 'rekey-dst', 'chain-dst', 'chain2-dst'],
});
t.teardown(() => oss.close());

// S3 SSE-C played by the proxy (s3rver has none): objects under sse-c/ need this key.
const customerKey = randomBytes(32);
const keyMd5 = createHash('md5').update(customerKey).digest('base64');
const s3Proxy = await startRecordingProxy({
  target: s3.endpoint,
  respond: (r: RecordedRequest) => {
    const path = r.url.split('?')[0] ?? '';
    if (!/\/sse-c\//.test(path) || (r.method !== 'GET' && r.method !== 'HEAD')) return undefined;
    const given = r.headers['x-amz-server-side-encryption-customer-key-md5'];
    if (given === undefined) {
      return {
        status: 400,
        headers: { 'content-type': 'application/xml' },
        body: '<Error><Code>InvalidRequest</Code><Message>The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.</Message></Error>',
      };
    }
    if (given !== keyMd5) return { status: 403, headers: { 'content-type': 'application/xml' }, body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' };
    return undefined;
  },
  responseHeaders: (r, status) =>
    status < 300 && r.headers['x-amz-server-side-encryption-customer-key-md5'] === keyMd5
      ? { 'x-amz-server-side-encryption-customer-algorithm': 'AES256', 'x-amz-server-side-encryption-customer-key-md5': keyMd5 }
      : undefined,
});
t.teardown(() => s3Proxy.close());

const env = {
  T_S3_AK: s3.accessKeyId,
  T_S3_SK: s3.secretAccessKey,
  T_OSS_AK: oss.accessKeyId,
  T_OSS_SK: oss.accessKeySecret,
  T_SSEC: customerKey.toString('base64'),
  T_SSEC_WRONG: randomBytes(32).toString('base64'),
};
// Small parts so multipart sizes stay small (OSS's minimum part is 100 KiB; s3rver enforces none here).
const small = { multipartThresholdBytes: 256 * KIB, partSizeBytes: 128 * KIB };
const cse = (file: string) => ({ ...small, clientSideEncryption: { publicKeyFile: file } });
const srcS3 = s3Endpoint(s3Proxy.endpoint, 'src');
const srcOss = ossEndpoint(oss.endpoint, 'src-oss');
const KMS_KEY = 'arn:aws:kms:us-east-1:111122223333:key/0000';
const SLOW_RATE = 512 * KIB;

const tasks = [
  { id: 'sse-oss', source: srcS3, destination: { ...ossEndpoint(oss.endpoint, 'dst-oss'), encryption: { mode: 'KMS', keyId: 'oss-kms-1' } }, options: small },
  { id: 'sse-s3', source: srcOss, destination: { ...s3Endpoint(s3Proxy.endpoint, 'dst-s3'), encryption: { mode: 'aws:kms', keyId: KMS_KEY } }, options: small },
  { id: 'ssec-nokey', source: srcS3, destination: ossEndpoint(oss.endpoint, 'ssec-dst'), options: small },
  { id: 'ssec-wrong', source: { ...srcS3, sseCustomerKeyEnv: 'T_SSEC_WRONG' }, destination: ossEndpoint(oss.endpoint, 'ssec-dst'), options: small },
  { id: 'ssec-key', source: { ...srcS3, sseCustomerKeyEnv: 'T_SSEC' }, destination: ossEndpoint(oss.endpoint, 'ssec-dst'), options: small },
  { id: 'cse-oss', source: srcS3, destination: ossEndpoint(oss.endpoint, 'cse-oss'), options: cse(keys.publicKeyFile) },
  { id: 'cse-s3', source: srcOss, destination: s3Endpoint(s3.endpoint, 'cse-s3'), options: cse(keys.publicKeyFile) },
  // One destination, three tasks: encrypting, encrypting for another key, plain.
  { id: 'rekey-a', source: srcS3, destination: ossEndpoint(oss.endpoint, 'rekey-dst'), options: cse(keys.publicKeyFile) },
  { id: 'rekey-b', source: srcS3, destination: ossEndpoint(oss.endpoint, 'rekey-dst'), options: cse(otherKeys.publicKeyFile) },
  { id: 'rekey-plain', source: srcS3, destination: ossEndpoint(oss.endpoint, 'rekey-dst'), options: small },
  // Encrypted replicas as a source: copied verbatim by a plain task, refused by an encrypting one.
  { id: 'chain', source: ossEndpoint(oss.endpoint, 'cse-oss'), destination: ossEndpoint(oss.endpoint, 'chain-dst'), options: small },
  { id: 'chain-cse', source: ossEndpoint(oss.endpoint, 'cse-oss'), destination: ossEndpoint(oss.endpoint, 'chain2-dst'), options: cse(keys.publicKeyFile) },
  { id: 'doomed', source: srcS3, destination: ossEndpoint(oss.endpoint, 'doomed-dst'), options: cse(doomedKeys.publicKeyFile) },
  { id: 'garbled', source: srcS3, destination: ossEndpoint(oss.endpoint, 'doomed-dst'), options: cse(garbledKeys.publicKeyFile) },
  {
    id: 'slow',
    source: srcS3,
    destination: ossEndpoint(oss.endpoint, 'slow-dst'),
    options: { multipartThresholdBytes: 1 * MIB, partSizeBytes: 512 * KIB, partConcurrency: 4, limits: { bytesPerSecond: SLOW_RATE } },
  },
];

const rawS3 = (bucket: string) =>
  new S3Store({ bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
const rawOss = (bucket: string) =>
  new OssStore({ bucket, region: 'oss-cn-hangzhou', endpoint: oss.endpoint, credentials: { accessKeyId: oss.accessKeyId, accessKeySecret: oss.accessKeySecret } });
const srcStore = rawS3('src');
const srcOssStore = rawOss('src-oss');
const cseS3 = rawS3('cse-s3');
const doomedDst = rawOss('doomed-dst');
t.teardown(() => Promise.all([srcStore, srcOssStore, cseS3, doomedDst].map((s) => s.close())));

/** The sizes every CSE direction is tested with: empty, one byte, a single PUT, multipart (6 parts of 128 KiB). */
const sized: Record<string, Buffer> = {
  'sizes/empty.bin': Buffer.alloc(0),
  'sizes/one.bin': randomBytes(1),
  'sizes/small.bin': randomBytes(40 * KIB + 3),
  'sizes/multipart.bin': randomBytes(700 * KIB + 11),
};
const sizedKeys = Object.keys(sized);
const secret = randomBytes(300 * KIB + 7);
const slowBody = randomBytes(3 * MIB);
for (const [k, body] of Object.entries(sized)) {
  await srcStore.put(k, body, body.length);
  await srcOssStore.put(k, body, body.length);
}
await srcStore.put('sse-c/secret.bin', secret, secret.length);
await srcStore.put('slow/three-mib.bin', slowBody, slowBody.length);
await srcStore.put('rekey/x.bin', secret, secret.length);

const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');
let h: ReplicationHarness;
t.before(async () => {
  h = await startReplication({ tasks, env, concurrency: 4, retryLimit: 1, retryDelaySeconds: 1 });
});
t.teardown(() => h?.close());

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function decrypts(body: Buffer, meta: Record<string, string>, key = privateKey): Promise<Buffer> {
  return (await decryptChecked(body, meta, key)).plain;
}

/** Decrypt and say which recorded plaintext digests the bytes were checked against. */
async function decryptChecked(body: Buffer, meta: Record<string, string>, key = privateKey): Promise<{ plain: Buffer; checked: string[] }> {
  const d = await decryptStream(openEnvelope(meta, key));
  const plain = await readAll(Readable.from([body]).pipe(d));
  return { plain, checked: d.report().verifiedAgainst };
}

const SETTLED = new Set(['completed', 'in_sync', 'deleted', 'source_missing', 'archived', 'failed']);

/** Queue the key and wait for a status row newer than the one it had. */
async function reconcile(taskId: string, key: string): Promise<ObjectStatusRow> {
  const before = (await h.status(taskId, key))?.updatedAt.getTime() ?? 0;
  await h.enqueue(taskId, key);
  return h.settled(taskId, key, (r) => r.updatedAt.getTime() > before && SETTLED.has(r.status));
}

async function reconcileAll(taskId: string, keyList: string[]): Promise<Map<string, ObjectStatusRow>> {
  const rows = await Promise.all(keyList.map((k) => reconcile(taskId, k)));
  return new Map(keyList.map((k, i) => [k, rows[i]!]));
}

async function listKeys(store: ObjectStore): Promise<string[]> {
  return (await store.listPage({})).objects.map((o) => o.key);
}

t.test('OSS destination with KMS: single PUT and multipart create carry the encryption headers', async (t) => {
  const rows = await reconcileAll('sse-oss', ['sizes/small.bin', 'sizes/multipart.bin']);
  for (const [k, row] of rows) t.equal(row.status, 'completed', k);
  const put = oss.requests.filter((r) => r.bucket === 'dst-oss' && r.key === 'sizes/small.bin' && r.method === 'PUT');
  t.same(put.map((r) => [r.headers['x-oss-server-side-encryption'], r.headers['x-oss-server-side-encryption-key-id']]), [['KMS', 'oss-kms-1']]);
  const init = oss.requests.filter((r) => r.bucket === 'dst-oss' && r.key === 'sizes/multipart.bin' && r.method === 'POST' && 'uploads' in r.query);
  t.same(init.map((r) => [r.headers['x-oss-server-side-encryption'], r.headers['x-oss-server-side-encryption-key-id']]), [['KMS', 'oss-kms-1']]);
  const stored = oss.getObject('dst-oss', 'sizes/multipart.bin');
  t.equal(stored?.headers['x-oss-server-side-encryption'], 'KMS');
  t.ok(stored?.body.equals(sized['sizes/multipart.bin']!), 'multipart object intact');
  const again = await reconcileAll('sse-oss', ['sizes/small.bin', 'sizes/multipart.bin']);
  for (const [k, row] of again) t.equal(row.status, 'in_sync', `${k}: KMS replicas compare equal`);
});

t.test('S3 destination with aws:kms: PutObject and CreateMultipartUpload carry it', async (t) => {
  const rows = await reconcileAll('sse-s3', ['sizes/small.bin', 'sizes/multipart.bin']);
  for (const [k, row] of rows) t.equal(row.status, 'completed', k);
  const put = s3Proxy.find('PUT', /\/dst-s3\/sizes\/small\.bin$/);
  t.same(put.map((r) => [r.headers['x-amz-server-side-encryption'], r.headers['x-amz-server-side-encryption-aws-kms-key-id']]), [['aws:kms', KMS_KEY]]);
  const create = s3Proxy.find('POST', /\/dst-s3\/sizes\/multipart\.bin$/).filter((r) => /[?&]uploads/.test(r.url));
  t.same(create.map((r) => [r.headers['x-amz-server-side-encryption'], r.headers['x-amz-server-side-encryption-aws-kms-key-id']]), [['aws:kms', KMS_KEY]]);
  const parts = s3Proxy.find('PUT', /\/dst-s3\/sizes\/multipart\.bin$/);
  t.equal(parts.length, 6, 'six UploadPart requests');
  t.ok(parts.every((r) => r.headers['x-amz-server-side-encryption'] === undefined), 'parts inherit the encryption of their upload');
});

t.test('SSE-C source: SOURCE_SSE_C without the key or with the wrong one, copied with it', async (t) => {
  const failed = await reconcile('ssec-nokey', 'sse-c/secret.bin');
  t.equal(failed.status, 'failed');
  t.equal(failed.lastErrorCode, 'SOURCE_SSE_C');
  t.match(failed.lastErrorMessage, /customer-provided key \(SSE-C\).*sseCustomerKeyEnv/);
  t.equal(failed.attempts, 1, 'not retried');
  t.ok((await h.deadLetters()).some((d) => d.data.taskId === 'ssec-nokey' && d.data.error?.code === 'SOURCE_SSE_C'), 'dead-lettered at once');

  const wrong = await reconcile('ssec-wrong', 'sse-c/secret.bin');
  t.equal(wrong.status, 'failed');
  t.equal(wrong.lastErrorCode, 'SOURCE_SSE_C');
  t.match(wrong.lastErrorMessage, /refused the customer-provided key/);
  t.equal(oss.getObject('ssec-dst', 'sse-c/secret.bin'), undefined, 'nothing written');

  const ok = await reconcile('ssec-key', 'sse-c/secret.bin');
  t.equal(ok.status, 'completed');
  t.ok(oss.getObject('ssec-dst', 'sse-c/secret.bin')?.body.equals(secret), 'copied with the customer key (multipart ranged reads too)');
});

/** The replica of each sized key is ciphertext that decrypts, with the right key only, to the source bytes. */
type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

async function checkEncrypted(t: TestT, read: (key: string) => Promise<{ body: Buffer; meta: Record<string, string> }>): Promise<void> {
  for (const [k, plain] of Object.entries(sized)) {
    const { body, meta } = await read(k);
    t.equal(body.length, plain.length, `${k}: ciphertext is as long as the plaintext`);
    // A 1-byte ciphertext equals its plaintext with probability 1/256: only compare where that cannot be chance.
    if (plain.length >= 16) t.notOk(body.equals(plain), `${k}: stored bytes are not the plaintext`);
    t.equal(meta['bb-cse-alg'], 'AES-256-CTR', `${k}: envelope algorithm`);
    t.equal(meta['bb-cse-key-id'], keyId, `${k}: encrypted for the task's public key`);
    t.equal(meta['bb-source-size'], String(plain.length), `${k}: source fingerprint kept`);
    t.ok(meta['bb-source-etag'], `${k}: source ETag kept`);
    const { plain: decrypted, checked } = await decryptChecked(body, meta);
    t.ok(decrypted.equals(plain), `${k}: decrypts to exactly the source bytes`);
    // Every copy records a verified plaintext digest: the CRC-64 or MD5 it read, or (multipart) the one the source promised.
    t.ok(checked.some((f) => f === 'bb-cse-plaintext-crc64' || f === 'bb-cse-plaintext-md5'), `${k}: checked against ${checked.join(', ')}`);
    t.throws(() => openEnvelope(meta, loadPrivateKey(otherKeys.privateKeyFile)), { name: 'EnvelopeError', code: 'WRONG_KEY', message: /encrypted for key/ }, `${k}: wrong private key refused`);
  }
}

t.test('client-side encryption S3 → OSS: 0 B, 1 B, single PUT, multipart', async (t) => {
  const rows = await reconcileAll('cse-oss', sizedKeys);
  for (const [k, row] of rows) t.equal(row.status, 'completed', k);
  await checkEncrypted(t, async (k) => {
    const stored = oss.getObject('cse-oss', k)!;
    return { body: stored.body, meta: stored.meta };
  });
  const init = oss.requests.filter((r) => r.bucket === 'cse-oss' && r.key === 'sizes/multipart.bin' && r.method === 'POST' && 'uploads' in r.query);
  t.equal(init.length, 1);
  t.equal(init[0]!.headers['x-oss-meta-bb-cse-key-id'], keyId, 'the envelope is set at CreateMultipartUpload');
  const puts = oss.requests.filter((r) => r.bucket === 'cse-oss' && r.method === 'PUT').length;
  const again = await reconcileAll('cse-oss', sizedKeys);
  for (const [k, row] of again) t.equal(row.status, 'in_sync', `${k}: in sync on the next reconcile`);
  t.equal(oss.requests.filter((r) => r.bucket === 'cse-oss' && r.method === 'PUT').length, puts, 'no PUT on the second reconcile');
});

t.test('client-side encryption OSS → S3: 0 B, 1 B, single PUT, multipart', async (t) => {
  const rows = await reconcileAll('cse-s3', sizedKeys);
  for (const [k, row] of rows) t.equal(row.status, 'completed', k);
  await checkEncrypted(t, async (k) => ({ body: await readAll(await cseS3.get(k)), meta: (await cseS3.head(k))!.userMetadata }));
  const again = await reconcileAll('cse-s3', sizedKeys);
  for (const [k, row] of again) t.equal(row.status, 'in_sync', `${k}: in sync on the next reconcile`);
});

t.test('an encrypted multipart upload left by a crash is aborted and the copy starts over, never resumed', async (t) => {
  const k = 'resume/x.bin';
  const body = randomBytes(700 * KIB);
  await srcStore.put(k, body, body.length);
  const head = (await srcStore.head(k))!;
  // What a crashed attempt leaves: an upload with one recorded part, for this very source version and layout.
  const dst = rawOss('cse-oss');
  t.teardown(() => dst.close());
  const uploadId = await dst.createMultipartUpload(k, {});
  const part = randomBytes(128 * KIB);
  const written = await dst.uploadPart(k, uploadId, 1, part);
  await h.uploads.insert({ uploadId, taskId: 'cse-oss', key: k, destination: 'oss:cse-oss', sourceEtag: head.etag, size: body.length, partSize: 128 * KIB });
  await h.uploads.recordPart(uploadId, { partNumber: 1, size: part.length, etag: written.etag, crc64: written.crc64! });
  const before = oss.requests.length;
  t.equal((await reconcile('cse-oss', k)).status, 'completed');
  const seen = oss.requests.slice(before).filter((r) => r.bucket === 'cse-oss' && r.key === k);
  t.ok(seen.some((r) => r.method === 'DELETE' && r.query.uploadId === uploadId), 'the leftover upload is aborted');
  t.notOk(seen.some((r) => r.method === 'GET' && r.query.uploadId === uploadId), 'its parts are not listed for reuse');
  t.equal(seen.filter((r) => r.method === 'POST' && 'uploads' in r.query).length, 1, 'a new upload is created');
  t.equal(seen.filter((r) => r.method === 'PUT' && r.query.uploadId !== undefined).length, 6, 'all six parts uploaded again');
  t.equal(oss.pendingUploads('cse-oss'), 0, 'no upload left');
  t.equal(await h.uploads.find('cse-oss', k), undefined, 'no record left');
  const stored = oss.getObject('cse-oss', k)!;
  t.ok((await decrypts(stored.body, stored.meta)).equals(body), 'the replica decrypts to the source bytes');
});

t.test('scans find nothing to copy for encrypted replicas (status rows cleared: decided by HEAD)', async (t) => {
  const scans = new ScanService(h.pool, h.boss, h.tasks, log);
  const stores = new StoreCache(log, { ...process.env, ...env });
  t.teardown(() => stores.close());
  const runner = new ScanRunner({ pool: h.pool, boss: h.boss, tasks: h.tasks, stores, log, env: { ...process.env, ...env } });
  for (const taskId of ['cse-oss', 'cse-s3']) {
    await h.pool.query('DELETE FROM bb_object_status WHERE task_id = $1', [taskId]);
    const { scan } = await scans.request(taskId, { prefixes: ['sizes/'] }, 'api');
    const done = await runner.run(scan.id);
    t.equal(done?.state, 'completed', `${taskId}: scan completed`);
    const c = done!.counters;
    t.same(
      { compared: c.compared, missing: c.missing, size: c.sizeDiffers, content: c.contentDiffers, queued: c.jobsQueued, sameByHead: c.sameByHead },
      { compared: 4, missing: 0, size: 0, content: 0, queued: 0, sameByHead: 4 },
      `${taskId}: every encrypted replica found equal by its fingerprint`,
    );
  }
});

t.test('a replica that is plaintext, or encrypted for another key, is re-copied; a plain task decrypts nothing but re-copies plaintext', async (t) => {
  const k = 'rekey/x.bin';
  t.equal((await reconcile('rekey-plain', k)).status, 'completed', 'plain copy');
  t.ok(oss.getObject('rekey-dst', k)!.body.equals(secret));
  t.equal((await reconcile('rekey-a', k)).status, 'completed', 'an encrypting task re-copies a plaintext replica');
  let stored = oss.getObject('rekey-dst', k)!;
  t.equal(stored.meta['bb-cse-key-id'], keyId);
  t.ok((await decrypts(stored.body, stored.meta)).equals(secret));
  t.equal((await reconcile('rekey-a', k)).status, 'in_sync');
  t.equal((await reconcile('rekey-b', k)).status, 'completed', 'another public key: re-encrypted');
  stored = oss.getObject('rekey-dst', k)!;
  t.equal(stored.meta['bb-cse-key-id'], keyFingerprint(loadPublicKey(otherKeys.publicKeyFile)));
  t.ok((await decrypts(stored.body, stored.meta, loadPrivateKey(otherKeys.privateKeyFile))).equals(secret));
  t.equal((await reconcile('rekey-plain', k)).status, 'completed', 'a plain task re-copies an encrypted replica');
  stored = oss.getObject('rekey-dst', k)!;
  t.ok(stored.body.equals(secret), 'plaintext again');
  t.same(Object.keys(stored.meta).filter((m) => m.startsWith('bb-cse-')), [], 'no envelope left behind');

  // A scan of the encrypting task sees the plaintext replica as different, even though the bytes are equal.
  await h.pool.query('DELETE FROM bb_object_status WHERE task_id = $1', ['rekey-a']);
  const scans = new ScanService(h.pool, h.boss, h.tasks, log);
  const stores = new StoreCache(log, { ...process.env, ...env });
  t.teardown(() => stores.close());
  const runner = new ScanRunner({ pool: h.pool, boss: h.boss, tasks: h.tasks, stores, log, env: { ...process.env, ...env } });
  const { scan } = await scans.request('rekey-a', { prefixes: ['rekey/'] }, 'api');
  const done = await runner.run(scan.id);
  t.same({ content: done?.counters.contentDiffers, queued: done?.counters.jobsQueued }, { content: 1, queued: 1 }, 'scan queues the plaintext replica');
  const row = await h.settled('rekey-a', k, (r) => r.status === 'completed');
  t.equal(row.status, 'completed');
  t.equal(oss.getObject('rekey-dst', k)!.meta['bb-cse-key-id'], keyId, 'encrypted again by the scan-queued job');
});

t.test('an encrypted replica as a source: a plain task copies it verbatim with its envelope; an encrypting task refuses it', async (t) => {
  const k = 'sizes/multipart.bin';
  t.equal((await reconcile('chain', k)).status, 'completed');
  const copy = oss.getObject('chain-dst', k)!;
  const original = oss.getObject('cse-oss', k)!;
  t.ok(copy.body.equals(original.body), 'ciphertext copied byte for byte');
  t.equal(copy.meta['bb-cse-key'], original.meta['bb-cse-key'], 'with its wrapped data key');
  t.ok((await decrypts(copy.body, copy.meta)).equals(sized[k]!), 'still decrypts to the original plaintext');
  t.equal((await reconcile('chain', k)).status, 'in_sync');

  const refused = await reconcile('chain-cse', k);
  t.equal(refused.status, 'failed');
  t.equal(refused.lastErrorCode, 'SOURCE_CLIENT_SIDE_ENCRYPTED');
  t.equal(oss.getObject('chain2-dst', k), undefined, 'nothing written');
});

t.test('the public key file becomes unreadable or malformed: the keys fail and nothing is uploaded', async (t) => {
  unlinkSync(doomedKeys.publicKeyFile);
  writeFileSync(garbledKeys.publicKeyFile, '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n');
  const before = oss.requests.length;
  for (const [taskId, message] of [
    ['doomed', /cannot read public key file .*doomed\.pub\.pem \(ENOENT\)/],
    ['garbled', /garbled\.pub\.pem is not an RSA public key/],
  ] as const) {
    for (const k of ['sizes/small.bin', 'sizes/multipart.bin']) {
      const row = await reconcile(taskId, k);
      t.equal(row.status, 'failed', `${taskId} ${k}`);
      t.equal(row.lastErrorCode, 'CSE_PUBLIC_KEY_INVALID', `${taskId} ${k}`);
      t.match(row.lastErrorMessage, message);
      t.equal(row.attempts, 1, 'not retried');
    }
  }
  t.same(oss.requests.slice(before).filter((r) => r.bucket === 'doomed-dst'), [], 'not a single request to the destination (the key is loaded first)');
  t.same(await listKeys(doomedDst), [], 'the destination holds nothing');
  t.equal(oss.pendingUploads('doomed-dst'), 0, 'no multipart upload started');
});

t.test('a throttled task copies at its byte rate (±20%)', async (t) => {
  const started = Date.now();
  const row = await reconcile('slow', 'slow/three-mib.bin');
  const wall = Date.now() - started;
  t.equal(row.status, 'completed');
  t.ok(oss.getObject('slow-dst', 'slow/three-mib.bin')?.body.equals(slowBody), 'copied intact (multipart, 4 parallel ranged reads sharing the limit)');
  // The reconcile's own duration (HEADs, reads, uploads), not the queue latency around it: at least 5 s at this rate.
  const seconds = row.durationMs! / 1000;
  const rate = slowBody.length / seconds;
  const ratio = rate / SLOW_RATE;
  t.comment(`3 MiB at ${SLOW_RATE / KIB} KiB/s: ${(rate / KIB).toFixed(0)} KiB/s over ${seconds.toFixed(2)} s (${((ratio - 1) * 100).toFixed(1)}%), ${wall} ms enqueue to settled`);
  t.ok(seconds >= 4, `measured over ${seconds.toFixed(2)} s`);
  t.ok(ratio > 0.8 && ratio < 1.2, `rate within ±20% of the limit (${((ratio - 1) * 100).toFixed(1)}%)`);
});
