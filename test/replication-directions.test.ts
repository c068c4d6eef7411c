/**
 * All four directions (S3→OSS, OSS→S3, S3→S3, OSS→OSS) through the real
 * workers: 0-byte, 1-byte, exactly-threshold and multipart objects, awkward
 * keys (spaces, +, %, unicode, deep paths), every carried header and user
 * metadata, storage classes mapped across clouds and overridden per task.
 * A second reconcile of everything finds it in sync and writes nothing.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import OSS from 'ali-oss';
import { OssStore } from '../src/storage/oss-store.js';
import { decodeMetadataValue, encodeMetadataValue } from '../src/storage/s3-store.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, s3Endpoint, startReplication, type ReplicationHarness } from './support/replication.js';
import { startS3Server, type S3Server } from './support/s3-server.js';

const KIB = 1024;
const THRESHOLD = 256 * KIB;
const PART = 100 * KIB;
const OPTIONS = { multipartThresholdBytes: THRESHOLD, partSizeBytes: PART, partConcurrency: 3 };

let s3: S3Server;
let s3proxy: FaultProxy;
let oss: OssServer;
let h: ReplicationHarness;
let s3c: S3Client;
let ossSrc: OSS;

const HEADERS = {
  contentType: 'text/plain; charset=utf-8',
  contentEncoding: 'identity',
  contentDisposition: 'attachment; filename="report 2024.txt"',
  contentLanguage: 'de-DE',
  cacheControl: 'public, max-age=3600',
  expires: 'Thu, 01 Dec 2044 16:00:00 GMT',
};
const META = { owner: 'ana', 'project-id': '42', note: 'grüße aus köln' };

interface Case {
  key: string;
  size: number;
  headers?: boolean;
  /** Source storage class (neutral name). */
  storageClass?: 'STANDARD_IA';
  /** Upload the source itself multipart (S3 ETag md5-N, OSS Multipart object). */
  multipartSource?: boolean;
}

const CASES: Case[] = [
  { key: 'sizes/zero.bin', size: 0 },
  { key: 'sizes/one.bin', size: 1 },
  { key: 'sizes/exactly threshold.bin', size: THRESHOLD },
  { key: 'sizes/threshold plus one.bin', size: THRESHOLD + 1 },
  { key: 'sizes/multipart.bin', size: 7 * PART + 123, headers: true, storageClass: 'STANDARD_IA' },
  { key: 'sizes/multipart source.bin', size: 3 * PART + 5, multipartSource: true },
  { key: 'keys/with spaces/a b  c.txt', size: 10, headers: true },
  { key: 'keys/plus+sign+.txt', size: 11 },
  { key: 'keys/percent%20not%2Fdecoded%.txt', size: 12 },
  { key: 'keys/unicode/日本語/ファイル €ü 😀.txt', size: 13, headers: true, storageClass: 'STANDARD_IA' },
  { key: 'keys/deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/leaf.txt', size: 14 },
  { key: 'keys/odd chars !$&\'()*,;=@[]~.txt', size: 15 },
];

const bodies = new Map<string, Buffer>();
function bodyOf(c: Case): Buffer {
  let b = bodies.get(c.key);
  if (!b) {
    b = randomBytes(c.size);
    bodies.set(c.key, b);
  }
  return b;
}

const TASKS = {
  s3ToOss: 's3-to-oss',
  ossToS3: 'oss-to-s3',
  s3ToS3: 's3-to-s3',
  ossToOss: 'oss-to-oss',
  s3ToOssArchive: 's3-to-oss-archive',
  ossToS3Ia: 'oss-to-s3-ia',
} as const;

t.before(async () => {
  s3 = await startS3Server({ buckets: ['src-s3', 'dst-s3-a', 'dst-s3-b', 'dst-s3-c'], minPartSize: PART });
  s3proxy = await startFaultProxy({ target: s3.endpoint });
  oss = await startOssServer({ buckets: ['src-oss', 'dst-oss-a', 'dst-oss-b', 'dst-oss-c'], minPartSize: PART });
  s3c = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  ossSrc = new OSS({
    region: 'oss-cn-hangzhou',
    endpoint: oss.endpoint,
    accessKeyId: oss.accessKeyId,
    accessKeySecret: oss.accessKeySecret,
    bucket: 'src-oss',
    secure: false,
    headerEncoding: 'latin1',
  } as OSS.Options);
  const S3 = (b: string) => s3Endpoint(s3proxy.endpoint, b);
  const O = (b: string) => ossEndpoint(oss.endpoint, b);
  h = await startReplication({
    env: { T_S3_AK: s3.accessKeyId, T_S3_SK: s3.secretAccessKey, T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    concurrency: 6,
    tasks: [
      { id: TASKS.s3ToOss, source: S3('src-s3'), destination: O('dst-oss-a'), options: OPTIONS },
      { id: TASKS.ossToS3, source: O('src-oss'), destination: S3('dst-s3-a'), options: OPTIONS },
      { id: TASKS.s3ToS3, source: S3('src-s3'), destination: S3('dst-s3-b'), options: OPTIONS },
      { id: TASKS.ossToOss, source: O('src-oss'), destination: O('dst-oss-b'), options: OPTIONS },
      { id: TASKS.s3ToOssArchive, source: S3('src-s3'), destination: O('dst-oss-c'), options: { ...OPTIONS, storageClass: 'ARCHIVE' } },
      { id: TASKS.ossToS3Ia, source: O('src-oss'), destination: S3('dst-s3-c'), options: { ...OPTIONS, storageClass: 'STANDARD_IA' } },
    ],
  });
  for (const c of CASES) {
    await seedS3(c);
    await seedOss(c);
  }
});

t.teardown(async () => {
  await h?.close();
  s3c?.destroy();
  await s3proxy?.close();
  await s3?.close();
  await oss?.close();
});

async function seedS3(c: Case): Promise<void> {
  const body = bodyOf(c);
  const common = {
    Bucket: 'src-s3',
    Key: c.key,
    ...(c.headers
      ? {
          ContentType: HEADERS.contentType,
          ContentEncoding: HEADERS.contentEncoding,
          ContentDisposition: HEADERS.contentDisposition,
          ContentLanguage: HEADERS.contentLanguage,
          CacheControl: HEADERS.cacheControl,
          Expires: new Date(HEADERS.expires),
          Metadata: Object.fromEntries(Object.entries(META).map(([k, v]) => [k, encodeMetadataValue(v)])),
        }
      : {}),
    ...(c.storageClass ? { StorageClass: c.storageClass } : {}),
  };
  if (!c.multipartSource) {
    await s3c.send(new PutObjectCommand({ ...common, Body: body, ContentLength: body.length }));
    return;
  }
  const { UploadId } = await s3c.send(new CreateMultipartUploadCommand(common));
  const parts = [];
  for (let i = 0, n = 1; i < body.length; i += PART, n++) {
    const chunk = body.subarray(i, i + PART);
    const r = await s3c.send(new UploadPartCommand({ Bucket: 'src-s3', Key: c.key, UploadId, PartNumber: n, Body: chunk, ContentLength: chunk.length }));
    parts.push({ PartNumber: n, ETag: r.ETag });
  }
  await s3c.send(new CompleteMultipartUploadCommand({ Bucket: 'src-s3', Key: c.key, UploadId, MultipartUpload: { Parts: parts } }));
}

async function seedOss(c: Case): Promise<void> {
  const body = bodyOf(c);
  const headers: Record<string, string> = {};
  if (c.headers) {
    headers['Content-Type'] = HEADERS.contentType;
    headers['Content-Encoding'] = HEADERS.contentEncoding;
    headers['Content-Disposition'] = HEADERS.contentDisposition;
    headers['Content-Language'] = HEADERS.contentLanguage;
    headers['Cache-Control'] = HEADERS.cacheControl;
    headers['Expires'] = HEADERS.expires;
  }
  if (c.storageClass) headers['x-oss-storage-class'] = 'IA';
  const meta = c.headers ? (META as unknown as OSS.UserMeta) : undefined;
  if (!c.multipartSource) {
    await ossSrc.put(c.key, body, { headers, ...(meta ? { meta } : {}) } as OSS.PutObjectOptions);
    return;
  }
  // ali-oss only uploads parts from files; our adapter sends Buffers.
  const store = new OssStore({ bucket: 'src-oss', region: 'oss-cn-hangzhou', endpoint: oss.endpoint, credentials: { accessKeyId: oss.accessKeyId, accessKeySecret: oss.accessKeySecret } });
  const uploadId = await store.createMultipartUpload(c.key, c.headers ? { ...HEADERS, userMetadata: META, ...(c.storageClass ? { storageClass: c.storageClass } : {}) } : {});
  const parts: { partNumber: number; etag: string }[] = [];
  for (let i = 0, n = 1; i < body.length; i += PART, n++) {
    const r = await store.uploadPart(c.key, uploadId, n, body.subarray(i, i + PART));
    parts.push({ partNumber: n, etag: r.etag });
  }
  await store.completeMultipartUpload(c.key, uploadId, parts);
  await store.close();
}

interface Seen {
  body: Buffer;
  headers: Record<string, string | undefined>;
  meta: Record<string, string>;
  storageClass: string;
}

async function readS3(bucket: string, key: string): Promise<Seen | undefined> {
  try {
    const head = await s3c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const got = await s3c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return {
      body: Buffer.from(await got.Body!.transformToByteArray()),
      headers: {
        contentType: head.ContentType,
        contentEncoding: head.ContentEncoding,
        contentDisposition: head.ContentDisposition,
        contentLanguage: head.ContentLanguage,
        cacheControl: head.CacheControl,
        expires: head.ExpiresString,
      },
      meta: Object.fromEntries(Object.entries(head.Metadata ?? {}).map(([k, v]) => [k, decodeMetadataValue(v)])),
      storageClass: head.StorageClass ?? 'STANDARD',
    };
  } catch {
    return undefined;
  }
}

function readOss(bucket: string, key: string): Seen | undefined {
  const o = oss.getObject(bucket, key);
  if (!o) return undefined;
  return {
    body: o.body,
    headers: {
      contentType: o.headers['content-type'],
      contentEncoding: o.headers['content-encoding'],
      contentDisposition: o.headers['content-disposition'],
      contentLanguage: o.headers['content-language'],
      cacheControl: o.headers['cache-control'],
      expires: o.headers['expires'],
    },
    meta: o.meta,
    storageClass: o.headers['x-oss-storage-class'] ?? 'Standard',
  };
}

const userMeta = (meta: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(meta).filter(([k]) => !k.startsWith('bb-')));

type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

async function replicateAll(t: TestT, taskId: string): Promise<void> {
  const ids = await h.enqueue(
    taskId,
    CASES.map((c) => c.key),
  );
  t.equal(ids.length, CASES.length, 'every key queued');
  for (const c of CASES) {
    const row = await h.settled(taskId, c.key);
    t.equal(row.status, 'completed', `${c.key}: completed (${row.lastErrorCode ?? ''} ${row.lastErrorMessage ?? ''})`);
    t.equal(row.bytes, c.size, `${c.key}: bytes recorded`);
  }
}

function checkCopy(
  t: TestT,
  c: Case,
  source: Seen | undefined,
  copy: Seen | undefined,
  expectedClass: string,
): void {
  if (!source || !copy) {
    t.fail(`${c.key}: missing ${source ? 'copy' : 'source'}`);
    return;
  }
  t.ok(copy.body.equals(bodyOf(c)), `${c.key}: same bytes (${copy.body.length})`);
  if (c.headers) {
    t.strictSame(copy.headers, HEADERS, `${c.key}: every content header carried`);
    t.strictSame(userMeta(copy.meta), META, `${c.key}: user metadata carried`);
  } else {
    t.equal(copy.headers.contentType, source.headers.contentType, `${c.key}: content type carried`);
  }
  t.equal(copy.storageClass, expectedClass, `${c.key}: storage class ${expectedClass}`);
  t.equal(copy.meta['bb-source-size'], String(c.size), `${c.key}: fingerprint size`);
  t.ok(copy.meta['bb-source-etag'], `${c.key}: fingerprint etag`);
}

t.test('S3 → OSS', async (t) => {
  await replicateAll(t, TASKS.s3ToOss);
  for (const c of CASES) {
    checkCopy(t, c, await readS3('src-s3', c.key), readOss('dst-oss-a', c.key), c.storageClass ? 'IA' : 'Standard');
  }
  t.equal(oss.pendingUploads('dst-oss-a'), 0, 'no multipart upload left behind');
});

t.test('OSS → S3', async (t) => {
  await replicateAll(t, TASKS.ossToS3);
  for (const c of CASES) {
    checkCopy(t, c, readOss('src-oss', c.key), await readS3('dst-s3-a', c.key), c.storageClass ? 'STANDARD_IA' : 'STANDARD');
  }
});

t.test('S3 → S3', async (t) => {
  await replicateAll(t, TASKS.s3ToS3);
  for (const c of CASES) {
    checkCopy(t, c, await readS3('src-s3', c.key), await readS3('dst-s3-b', c.key), c.storageClass ?? 'STANDARD');
  }
});

t.test('OSS → OSS', async (t) => {
  await replicateAll(t, TASKS.ossToOss);
  for (const c of CASES) {
    checkCopy(t, c, readOss('src-oss', c.key), readOss('dst-oss-b', c.key), c.storageClass ? 'IA' : 'Standard');
    const src = oss.getObject('src-oss', c.key)!;
    const dst = oss.getObject('dst-oss-b', c.key)!;
    t.equal(dst.crc64, src.crc64, `${c.key}: same CRC-64 on both sides`);
  }
  t.equal(oss.pendingUploads('dst-oss-b'), 0, 'no multipart upload left behind');
});

t.test('a per-task storage class override wins over the mapped class, both ways', async (t) => {
  await replicateAll(t, TASKS.s3ToOssArchive);
  await replicateAll(t, TASKS.ossToS3Ia);
  for (const c of CASES) {
    t.equal(readOss('dst-oss-c', c.key)?.storageClass, 'Archive', `${c.key}: Archive on OSS`);
    t.equal((await readS3('dst-s3-c', c.key))?.storageClass, 'STANDARD_IA', `${c.key}: STANDARD_IA on S3`);
  }
});

t.test('reconciling everything again finds it in sync and sends nothing', async (t) => {
  const writes = (): number =>
    oss.requests.filter((r) => (r.method === 'PUT' || r.method === 'POST') && r.bucket?.startsWith('dst-')).length +
    s3proxy.log.filter((r) => (r.method === 'PUT' || r.method === 'POST') && /^\/dst-/.test(r.path)).length;
  const before = writes();
  for (const taskId of [TASKS.s3ToOss, TASKS.ossToS3, TASKS.s3ToS3, TASKS.ossToOss]) {
    await h.enqueue(
      taskId,
      CASES.map((c) => c.key),
    );
    for (const c of CASES) {
      const row = await h.settled(taskId, c.key, (r) => r.status !== 'completed');
      t.equal(row.status, 'in_sync', `${taskId} ${c.key}: in_sync`);
      t.equal(row.attempts, 1, 'a new round counts attempts from 1');
    }
  }
  t.equal(writes(), before, 'no write reached any destination');
});

t.test('the same bytes are provably equal without a fingerprint (MD5 ETags, or CRC-64 on both OSS sides)', async (t) => {
  // Objects someone else put on the destination: same bytes, no BucketBridge fingerprint.
  const key = 'foreign/same-bytes.bin';
  const body = randomBytes(2048);
  await s3c.send(new PutObjectCommand({ Bucket: 'src-s3', Key: key, Body: body }));
  await s3c.send(new PutObjectCommand({ Bucket: 'dst-s3-b', Key: key, Body: body }));
  await ossSrc.put(key, body);
  const dst = new OSS({ region: 'oss-cn-hangzhou', endpoint: oss.endpoint, accessKeyId: oss.accessKeyId, accessKeySecret: oss.accessKeySecret, bucket: 'dst-oss-b', secure: false });
  await dst.put(key, body);
  for (const taskId of [TASKS.s3ToS3, TASKS.ossToOss]) {
    await h.enqueue(taskId, key);
    const row = await h.settled(taskId, key);
    t.equal(row.status, 'in_sync', `${taskId}: in_sync by content`);
  }
  // Different bytes of the same size with no fingerprint: copied.
  const other = Buffer.from(body);
  other[7] = other[7]! ^ 1;
  await s3c.send(new PutObjectCommand({ Bucket: 'dst-s3-b', Key: key, Body: other }));
  await h.enqueue(TASKS.s3ToS3, key);
  const row = await h.settled(TASKS.s3ToS3, key, (r) => r.status === 'completed');
  t.equal(row.status, 'completed', 'same size, different MD5: copied');
  t.ok((await readS3('dst-s3-b', key))!.body.equals(body));
  t.equal(createHash('md5').update(body).digest('hex'), row.destinationEtag, 'destination ETag recorded');
});
