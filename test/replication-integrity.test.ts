/**
 * End-to-end integrity under faults, with a fault proxy in front of the
 * stores: a byte flipped in transit (read side and write side) is detected,
 * retried and ends correct; a destination that silently stores wrong bytes
 * never yields a completed status nor keeps the wrong object; a source
 * overwritten mid-copy ends with the new version; transient errors retry,
 * permanent ones (403) fail at once with status and marker; past the retry
 * limit a key is failed and its job dead-lettered; a later success replaces
 * the failure marker.
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
import { startFaultProxy, type FaultProxy, type ProxyRequestInfo } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, s3Endpoint, startReplication, type ReplicationHarness } from './support/replication.js';
import { fullObjectChecksum, startS3Server, type S3Server } from './support/s3-server.js';
import { eventually } from './support/service.js';

const KIB = 1024;
const PART = 100 * KIB;
const OPTIONS = { multipartThresholdBytes: 256 * KIB, partSizeBytes: PART, partConcurrency: 3 };
const RETRY_LIMIT = 3;

let s3: S3Server;
let oss: OssServer;
let s3c: S3Client;
let h: ReplicationHarness;
const proxies: Record<'s3src' | 's3dst' | 'osssrc' | 'ossdst', FaultProxy> = {} as never;

t.before(async () => {
  s3 = await startS3Server({ buckets: ['isrc', 'sdst', 'sdst2', 'smarks'], minPartSize: PART });
  oss = await startOssServer({ buckets: ['osrc', 'odst', 'idst', 'idst2', 'omarks'], minPartSize: PART });
  proxies.s3src = await startFaultProxy({ target: s3.endpoint });
  proxies.s3dst = await startFaultProxy({ target: s3.endpoint });
  proxies.osssrc = await startFaultProxy({ target: oss.endpoint });
  proxies.ossdst = await startFaultProxy({ target: oss.endpoint });
  s3c = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const S3 = (p: FaultProxy | string, b: string) => s3Endpoint(typeof p === 'string' ? p : p.endpoint, b);
  const O = (p: FaultProxy | string, b: string, prefix?: string) => ossEndpoint(typeof p === 'string' ? p : p.endpoint, b, prefix);
  h = await startReplication({
    env: {
      T_S3_AK: s3.accessKeyId,
      T_S3_SK: s3.secretAccessKey,
      T_OSS_AK: oss.accessKeyId,
      T_OSS_SK: oss.accessKeySecret,
      T_BAD_AK: 'not-a-key',
      T_BAD_SK: 'not-a-secret',
    },
    retryLimit: RETRY_LIMIT,
    retryDelaySeconds: 0,
    tasks: [
      {
        id: 's3-oss',
        source: S3(proxies.s3src, 'isrc'),
        destination: O(proxies.ossdst, 'idst'),
        options: { ...OPTIONS, markers: { bucket: 'omarks', prefix: 'bb_records' } },
      },
      { id: 'oss-oss', source: O(proxies.osssrc, 'osrc'), destination: O(proxies.ossdst, 'odst'), options: OPTIONS },
      // Parts that are not a multiple of 64 bytes cannot share MD5 blocks with the whole object (segment-hasher.ts): the other hashing path.
      { id: 's3-oss-odd', source: S3(proxies.s3src, 'isrc'), destination: O(proxies.ossdst, 'idst'), options: { ...OPTIONS, partSizeBytes: PART + 1 } },
      {
        id: 's3-s3',
        source: S3(proxies.s3src, 'isrc'),
        destination: S3(proxies.s3dst, 'sdst'),
        options: { ...OPTIONS, markers: { bucket: 'smarks', prefix: 'bb_records' } },
      },
      { id: 'oss-s3', source: O(proxies.osssrc, 'osrc'), destination: S3(proxies.s3dst, 'sdst2'), options: OPTIONS },
      {
        id: 'denied',
        source: S3(s3.endpoint, 'isrc'),
        destination: O(oss.endpoint, 'idst2', 'T_BAD'),
        options: { ...OPTIONS, markers: { bucket: 'smarks', prefix: 'bb_records', side: 'source' } },
      },
    ],
  });
});

t.afterEach(() => {
  for (const p of Object.values(proxies)) p.clear();
});

t.teardown(async () => {
  await h?.close();
  s3c?.destroy();
  for (const p of Object.values(proxies)) await p?.close();
  await s3?.close();
  await oss?.close();
});

async function putS3(bucket: string, key: string, body: Buffer): Promise<string> {
  const r = await s3c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }));
  return r.ETag!.replace(/"/g, '');
}

type FullObjectChecksum = { ChecksumCRC64NVME: string } | { ChecksumCRC32C: string } | { ChecksumSHA256: string };

/** Upload `parts` as one object in parts (its ETag is then "md5-of-md5s-N"), with a full-object checksum if given; returns the ETag. */
async function putS3Parts(bucket: string, key: string, parts: Buffer[], checksum?: FullObjectChecksum): Promise<string> {
  const { UploadId } = await s3c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const done = [];
  for (const [i, p] of parts.entries()) {
    const r = await s3c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: p, ContentLength: p.length }));
    done.push({ PartNumber: i + 1, ETag: r.ETag });
  }
  const r = await s3c.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: done }, ...checksum }),
  );
  return r.ETag!.replace(/"/g, '');
}

type CompositeAlgorithm = 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256';
const PART_CHECKSUM_FIELD = { CRC32: 'ChecksumCRC32', CRC32C: 'ChecksumCRC32C', SHA1: 'ChecksumSHA1', SHA256: 'ChecksumSHA256' } as const;

/**
 * Upload `parts` as an SSE-KMS object (its ETag then digests nothing we can
 * recompute) with a checksum per part: S3 reports the composite "<base64>-N".
 * Without `algorithm`, an SSE-KMS object with no checksum. Returns the ETag.
 */
async function putS3KmsParts(bucket: string, key: string, parts: Buffer[], algorithm?: CompositeAlgorithm): Promise<string> {
  const { UploadId } = await s3c.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ServerSideEncryption: 'aws:kms', ...(algorithm ? { ChecksumAlgorithm: algorithm } : {}) }),
  );
  const done = [];
  for (const [i, p] of parts.entries()) {
    const checksum = algorithm ? { [PART_CHECKSUM_FIELD[algorithm]]: await fullObjectChecksum(algorithm, [p]) } : {};
    const r = await s3c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: p, ContentLength: p.length, ...checksum }));
    done.push({ PartNumber: i + 1, ETag: r.ETag, ...checksum });
  }
  const r = await s3c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: done } }));
  return r.ETag!.replace(/"/g, '');
}

async function putOss(bucket: string, key: string, body: Buffer): Promise<void> {
  await oss.client(bucket).put(key, body);
}

async function getS3(bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const r = await s3c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  } catch {
    return undefined;
  }
}

async function existsS3(bucket: string, key: string): Promise<boolean> {
  try {
    await s3c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

/** A request for `key` (S3 path style puts the bucket in the path; ali-oss on an IP endpoint sends /key with the bucket in Host). */
const forKey =
  (key: string) =>
  (info: ProxyRequestInfo): boolean =>
    info.path.endsWith(`/${key}`);
/** An ETag header value without quotes, lower-case (OSS answers upper-case MD5s). */
const etagOf = (v: string | string[] | undefined): string => String(v ?? '').replace(/"/g, '').toLowerCase();
/**
 * Break the first GET of `key` from `src` once its reader is past part 1: the
 * body is held at `afterBytes` until `dst` has received part 1 (so the copy has
 * consumed it), then the connection is reset 1,000 bytes later. Without the
 * hold, a reset can arrive before the copy reads a byte (everything is on
 * loopback), and the re-open is from byte 0.
 */
function breakAfterPart1(src: FaultProxy, dst: FaultProxy, key: string, afterBytes: number) {
  const part1Sent = async () => (dst.log.some((r) => r.method === 'PUT' && r.query.partNumber === '1' && forKey(key)(r)) ? true : undefined);
  const hold = src.add({
    match: { method: 'GET', test: forKey(key) },
    nth: 1,
    action: { type: 'hook-mid-response', afterBytes, hook: async () => void (await eventually(part1Sent, 10_000, 'part 1 uploaded')) },
  });
  const reset = src.add({ match: { method: 'GET', test: forKey(key) }, nth: 1, action: { type: 'reset', afterBytes: afterBytes + 1000 } });
  return { hold, reset };
}
/** The re-opening GET of `key`: the one sent with If-Match (opening a new object's GET has none). */
const reopenOf = (proxy: FaultProxy, key: string) => proxy.log.filter((r) => r.method === 'GET' && forKey(key)(r) && r.headers['if-match'] !== undefined);
const md5hex = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** The subtest type (tap's overloads make it awkward to name directly). */
type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

/**
 * Flip byte PART + 99 of the first source GET of `key` (from isrc), copy it with
 * `task` (to idst or sdst), and check that the copy ends right on its second
 * attempt; returns the part HEADs (?partNumber) the copy sent to the source.
 */
async function copyThroughSourceFlip(t: TestT, task: string, key: string, body: Buffer, label: string): Promise<ProxyRequestInfo[]> {
  const flip = proxies.s3src.add({ match: { method: 'GET', test: forKey(key) }, nth: 1, action: { type: 'flip-response-byte', offset: PART + 99 } });
  await h.enqueue(task, key);
  const row = await h.settled(task, key);
  t.equal(flip.fired, 1, `${label}: the byte was flipped`);
  t.equal(row.status, 'completed', `${label}: completed`);
  t.equal(row.attempts, 2, `${label}: the first attempt failed, the second succeeded`);
  const copied = task === 's3-s3' ? await getS3('sdst', key) : oss.getObject('idst', key)?.body;
  t.ok(copied?.equals(body), `${label}: the object is the source's`);
  return proxies.s3src.log.filter((r) => r.method === 'HEAD' && forKey(key)(r) && r.query.partNumber !== undefined);
}

t.test('a byte flipped in a source GET (S3 single part, MD5) is detected, retried, and ends correct', async (t) => {
  const key = 'flip/source single.bin';
  const body = randomBytes(50 * KIB);
  await putS3('isrc', key, body);
  const flip = proxies.s3src.add({ match: { method: 'GET', test: forKey(key) }, nth: 1, action: { type: 'flip-response-byte' } });
  await h.enqueue('s3-oss', key);
  const row = await h.settled('s3-oss', key);
  t.equal(flip.fired, 1, 'one byte was flipped');
  t.equal(row.status, 'completed');
  t.equal(row.attempts, 2, 'the first attempt failed, the second succeeded');
  t.ok(oss.getObject('idst', key)?.body.equals(body), 'destination holds the right bytes');
});

t.test('a byte flipped in part 3 of a multipart source read from OSS (combined CRC-64) is detected; the upload is aborted and redone', async (t) => {
  const key = 'flip/source-part.bin';
  const body = randomBytes(5 * PART + 77);
  await putOss('osrc', key, body);
  // The source is read through one GET: byte 1,234 of part 3 is at 2 × PART + 1,234 of it.
  const flip = proxies.osssrc.add({
    match: { method: 'GET', test: forKey(key) },
    nth: 1,
    action: { type: 'flip-response-byte', offset: 2 * PART + 1234 },
  });
  await h.enqueue('oss-oss', key);
  const row = await h.settled('oss-oss', key);
  t.equal(flip.fired, 1);
  t.equal(row.status, 'completed');
  t.equal(row.attempts, 2);
  t.equal(oss.getObject('odst', key)?.crc64, oss.getObject('osrc', key)?.crc64, 'same CRC-64 as the source');
  t.ok(oss.getObject('odst', key)?.body.equals(body));
  t.equal(oss.pendingUploads('odst'), 0, 'the failed attempt left no upload behind');
});

t.test('a byte flipped in part 2 of a multipart source read from S3 (whole-object MD5 against its ETag) is detected; the upload is aborted and redone', async (t) => {
  // s3-oss-odd: parts of a size that is not a multiple of 64 bytes, whose whole-object MD5 is hashed on its own (segment-hasher.ts).
  for (const [task, key] of [
    ['s3-oss', 'flip/source-md5-part.bin'],
    ['s3-oss-odd', 'flip/source-md5-odd-part.bin'],
  ] as const) {
    const body = randomBytes(4 * PART + 321);
    await putS3('isrc', key, body);
    // Only the whole-object MD5 can see this: the OSS destination checks the CRC-64 of what it was sent, flipped byte included.
    const flip = proxies.s3src.add({ match: { method: 'GET', test: forKey(key) }, nth: 1, action: { type: 'flip-response-byte', offset: PART + 99 } });
    await h.enqueue(task, key);
    const row = await h.settled(task, key);
    t.equal(flip.fired, 1, `${task}: the byte was flipped`);
    t.equal(row.status, 'completed', `${task}: completed`);
    t.equal(row.attempts, 2, `${task}: on the second attempt`);
    t.ok(oss.getObject('idst', key)?.body.equals(body), `${task}: the object is the source's`);
    t.equal(oss.pendingUploads('idst'), 0, `${task}: the failed attempt left no upload behind`);
  }
});

t.test('a byte flipped in a source uploaded in parts (multipart ETag, no checksum) is detected against that ETag; the upload is aborted and redone', async (t) => {
  // Only the multipart ETag can see these flips: the destination checks what it was sent, flipped byte included.
  // Part HEADs: part 1 at each attempt; under a layout inferred from part 1, a mismatch reads every part's
  // size before the attempt fails (a layout that was not uniform is not a damaged byte).
  const cases = [
    // The copy's own parts have the source's size: their MD5s are the source's part MD5s.
    { name: 'parts of the copy part size', task: 's3-oss', parts: [PART, PART, PART, PART, 321], heads: ['1', '2', '3', '4', '5', '1'] },
    // Other sizes: a lane of its own hashes the source's parts.
    { name: 'parts of another size', task: 's3-oss', parts: [150 * KIB, 150 * KIB, 101 * KIB], heads: ['1', '2', '3', '1'] },
    // A first part smaller than the others cannot be the uniform layout: every part is HEADed first.
    { name: 'parts of mixed sizes', task: 's3-oss', parts: [PART, 150 * KIB, 150 * KIB], heads: ['1', '2', '3', '1', '2', '3'] },
    // At most the single-PUT threshold: copied in one PUT, checked the same way.
    { name: 'copied in one PUT', task: 's3-s3', parts: [PART, 50 * KIB], heads: ['1', '2', '1'] },
  ];
  for (const c of cases) {
    const key = `flip/source parts ${c.name}.bin`;
    const parts = c.parts.map((n) => randomBytes(n));
    const body = Buffer.concat(parts);
    const etag = await putS3Parts('isrc', key, parts);
    t.match(etag, new RegExp(`^[0-9a-f]{32}-${parts.length}$`), `${c.name}: the source has a multipart ETag`);
    const heads = await copyThroughSourceFlip(t, c.task, key, body, c.name);
    t.equal(oss.pendingUploads('idst'), 0, `${c.name}: the failed attempt left no upload behind`);
    t.same(heads.map((r) => r.query.partNumber), c.heads, `${c.name}: part HEADs`);
    t.ok(heads.every((r) => String(r.headers['if-match']).includes(etag)), `${c.name}: every part HEAD is of the version copied`);
  }
});

t.test('a byte flipped in a source with a full-object checksum (S3 x-amz-checksum-*) is detected against it, with no part HEADs', async (t) => {
  const crc64nvme = async (b: Buffer) => ({ ChecksumCRC64NVME: await fullObjectChecksum('CRC64NVME', [b]) });
  const crc32c = async (b: Buffer) => ({ ChecksumCRC32C: await fullObjectChecksum('CRC32C', [b]) });
  const sha256 = async (b: Buffer) => ({ ChecksumSHA256: await fullObjectChecksum('SHA256', [b]) });
  const cases = [
    { name: 'CRC64NVME, multipart copy', task: 's3-oss', parts: [150 * KIB, 150 * KIB, 101 * KIB], checksum: crc64nvme },
    { name: 'CRC32C, multipart copy to S3', task: 's3-s3', parts: [PART, PART, PART, 77], checksum: crc32c },
    { name: 'SHA256, one PUT', task: 's3-oss', parts: [PART, 50 * KIB], checksum: sha256 },
  ];
  for (const c of cases) {
    const key = `flip/source checksum ${c.name}.bin`;
    const parts = c.parts.map((n) => randomBytes(n));
    const body = Buffer.concat(parts);
    await putS3Parts('isrc', key, parts, await c.checksum(body));
    const heads = await copyThroughSourceFlip(t, c.task, key, body, c.name);
    t.equal(heads.length, 0, `${c.name}: no part HEAD (the checksum needs none)`);
  }
});

t.test('a byte flipped in an SSE-KMS source uploaded in parts is detected against its composite checksum; the upload is aborted and redone', async (t) => {
  // The ETag of an SSE-KMS object is no MD5: the checksum of the part checksums is what describes the bytes.
  // Part HEADs as for a multipart ETag: part 1 at each attempt, every part's size after a mismatch.
  const cases = [
    // The copy's own part size: still a lane of its own (the copy's part MD5s are no CRC32s).
    { name: 'CRC32, parts of the copy part size', task: 's3-oss', algorithm: 'CRC32', parts: [PART, PART, PART, 321], heads: ['1', '2', '3', '4', '1'] },
    { name: 'SHA256, parts of another size', task: 's3-s3', algorithm: 'SHA256', parts: [150 * KIB, 150 * KIB, 101 * KIB], heads: ['1', '2', '3', '1'] },
    { name: 'CRC32C, copied in one PUT', task: 's3-oss', algorithm: 'CRC32C', parts: [PART, 50 * KIB], heads: ['1', '2', '1'] },
  ] as const;
  for (const c of cases) {
    const key = `flip/kms composite ${c.name}.bin`;
    const parts = c.parts.map((n) => randomBytes(n));
    const body = Buffer.concat(parts);
    const etag = await putS3KmsParts('isrc', key, parts, c.algorithm);
    const head = await s3c.send(new HeadObjectCommand({ Bucket: 'isrc', Key: key, ChecksumMode: 'ENABLED' }));
    t.equal(head.ServerSideEncryption, 'aws:kms', `${c.name}: the source is SSE-KMS`);
    t.not(etag.split('-')[0], createHash('md5').update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()))).digest('hex'), `${c.name}: its ETag is no MD5 of part MD5s`);
    t.equal(head.ChecksumType, 'COMPOSITE', `${c.name}: a composite checksum`);
    const heads = await copyThroughSourceFlip(t, c.task, key, body, c.name);
    t.same(heads.map((r) => r.query.partNumber), c.heads, `${c.name}: part HEADs`);
    t.equal(oss.pendingUploads('idst'), 0, `${c.name}: the failed attempt left no upload behind`);
  }
});

t.test('an SSE-KMS source uploaded in parts with no checksum cannot be checked: copied as before, no part HEADs', async (t) => {
  const key = 'parts/kms no checksum.bin';
  const parts = [randomBytes(PART), randomBytes(PART), randomBytes(7)];
  await putS3KmsParts('isrc', key, parts);
  await h.enqueue('s3-oss', key);
  const row = await h.settled('s3-oss', key);
  t.equal(row.status, 'completed');
  t.equal(row.attempts, 1);
  t.ok(oss.getObject('idst', key)?.body.equals(Buffer.concat(parts)), "the object is the source's");
  const heads = proxies.s3src.log.filter((r) => r.method === 'HEAD' && forKey(key)(r) && r.query.partNumber !== undefined);
  t.equal(heads.length, 0, 'nothing to check against: no part HEAD');
});

t.test('S3 → S3: a destination object with the same full-object checksum is in sync, whatever its part layout and with no fingerprint', async (t) => {
  const key = 'checksum/same bytes other layout.bin';
  const body = randomBytes(3 * PART + 5);
  const checksum = { ChecksumCRC64NVME: await fullObjectChecksum('CRC64NVME', [body]) };
  await putS3Parts('isrc', key, [body.subarray(0, PART), body.subarray(PART)], checksum);
  await putS3Parts('sdst', key, [body.subarray(0, 2 * PART), body.subarray(2 * PART)], checksum);
  await h.enqueue('s3-s3', key);
  const row = await h.settled('s3-s3', key);
  t.equal(row.status, 'in_sync', 'equal by checksum');
  // (the task's success marker goes to another bucket)
  const writes = proxies.s3dst.log.filter((r) => (r.method === 'PUT' || r.method === 'POST') && r.path.startsWith('/sdst/') && forKey(key)(r));
  t.same(writes.map((r) => `${r.method} ${r.path}`), [], 'nothing written to the destination bucket');
  t.equal(proxies.s3src.log.filter((r) => r.method === 'GET' && forKey(key)(r)).length <= 1, true, 'at most the GET opened with the HEAD, not read through');
});

t.test('a source whose parts were not of one size, though part 1 and the count suggest so, is copied unchecked, not failed', async (t) => {
  // 150, 100, 150 KiB: part 1 and the count fit 150, 150, 100 KiB as well, so the assumed boundaries are wrong.
  const key = 'parts/not uniform.bin';
  const parts = [randomBytes(150 * KIB), randomBytes(PART), randomBytes(150 * KIB)];
  const body = Buffer.concat(parts);
  await putS3Parts('isrc', key, parts);
  await h.enqueue('s3-oss', key);
  const row = await h.settled('s3-oss', key);
  t.equal(row.status, 'completed');
  t.equal(row.attempts, 1, 'no attempt failed');
  t.ok(oss.getObject('idst', key)?.body.equals(body), 'the object is the source\'s');
  const heads = proxies.s3src.log.filter((r) => r.method === 'HEAD' && forKey(key)(r) && r.query.partNumber !== undefined);
  t.same(heads.map((r) => r.query.partNumber), ['1', '2', '3'], 'the mismatch made it read every part size');
});

t.test('a source store that reports no part count (ignores partNumber) is copied as before', async (t) => {
  const key = 'parts/no count.bin';
  const parts = [randomBytes(PART), randomBytes(PART), randomBytes(PART), randomBytes(99)];
  const body = Buffer.concat(parts);
  await putS3Parts('isrc', key, parts);
  const strip = proxies.s3src.add({
    match: { method: 'HEAD', query: { partNumber: true }, test: forKey(key) },
    action: { type: 'response-headers', remove: ['x-amz-mp-parts-count'] },
  });
  await h.enqueue('s3-oss', key);
  const row = await h.settled('s3-oss', key);
  t.equal(strip.fired, 1, 'one part HEAD, answered without a part count');
  t.equal(row.status, 'completed');
  t.equal(row.attempts, 1);
  t.ok(oss.getObject('idst', key)?.body.equals(body));
});

t.test('a byte flipped on the way to the destination is refused by Content-MD5 and resent', async (t) => {
  const key = 'flip/request.bin';
  const body = randomBytes(40 * KIB);
  await putS3('isrc', key, body);
  const flip = proxies.s3dst.add({ match: { method: 'PUT', test: forKey(key) }, nth: 1, action: { type: 'flip-request-byte' } });
  await h.enqueue('s3-s3', key);
  const row = await h.settled('s3-s3', key);
  t.equal(flip.fired, 1);
  t.equal(row.status, 'completed');
  t.ok((await getS3('sdst', key))?.equals(body));
});

t.test('a destination that stores flipped bytes (no Content-MD5 reached it) is caught by what it answers', async (t) => {
  t.test('OSS part upload answered with another CRC-64 → upload aborted, retried', async (t) => {
    // OSS signs Content-MD5, so a proxy cannot strip it; what it can do is make the answer disagree.
    const key = 'silent/oss-part.bin';
    const body = randomBytes(4 * PART);
    await putOss('osrc', key, body);
    const lie = proxies.ossdst.add({
      match: { method: 'PUT', query: { partNumber: '2' }, test: forKey(key) },
      nth: 1,
      action: { type: 'response-headers', set: { 'x-oss-hash-crc64ecma': '12345' } },
    });
    await h.enqueue('oss-oss', key);
    const row = await h.settled('oss-oss', key);
    t.equal(lie.fired, 1);
    t.equal(row.status, 'completed');
    t.equal(row.attempts, 2);
    t.ok(oss.getObject('odst', key)?.body.equals(body));
    t.equal(oss.pendingUploads('odst'), 0, 'the upload of the failed attempt was aborted');
  });
  t.test('OSS PUT answered with another CRC-64 → the object is deleted, retried', async (t) => {
    const key = 'silent/oss-put.bin';
    const body = randomBytes(3 * KIB);
    await putS3('isrc', key, body);
    const lie = proxies.ossdst.add({
      match: { method: 'PUT', test: forKey(key) },
      nth: 1,
      action: { type: 'response-headers', set: { 'x-oss-hash-crc64ecma': '1' } },
    });
    const deletes = () => proxies.ossdst.log.filter((r) => r.method === 'DELETE' && r.path === `/${key}`).length;
    await h.enqueue('s3-oss', key);
    const row = await h.settled('s3-oss', key);
    t.equal(lie.fired, 1);
    t.equal(deletes(), 1, 'the object of the failed attempt was deleted');
    t.equal(row.status, 'completed');
    t.ok(oss.getObject('idst', key)?.body.equals(body));
  });
  t.test('S3 single PUT: its ETag is not the MD5 sent → the wrong object is deleted, retried', async (t) => {
    const key = 'silent/s3-put.bin';
    const body = randomBytes(30 * KIB);
    await putOss('osrc', key, body);
    // A store that checks neither Content-MD5 nor the signed payload hash: the one is dropped on the way, the other made unsigned.
    const flip = proxies.s3dst.add({
      match: { method: 'PUT', test: forKey(key) },
      nth: 1,
      action: { type: 'flip-request-byte', dropHeaders: ['content-md5'], setHeaders: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
    });
    const deletes = () => proxies.s3dst.log.filter((r) => r.method === 'DELETE' && r.path === `/sdst2/${key}`).length;
    await h.enqueue('oss-s3', key);
    const row = await h.settled('oss-s3', key);
    t.equal(flip.fired, 1);
    t.equal(deletes(), 1, 'the object of the failed attempt was deleted');
    t.equal(row.status, 'completed');
    t.equal(row.destinationEtag, md5hex(body));
    t.ok((await getS3('sdst2', key))?.equals(body));
  });
  t.test('corrupted on every attempt: never completed, the key fails, and no wrong object stays', async (t) => {
    const key = 'silent/always.bin';
    const body = randomBytes(20 * KIB);
    await putS3('isrc', key, body);
    const flip = proxies.s3dst.add({
      match: { method: 'PUT', test: forKey(key) },
      action: { type: 'flip-request-byte', dropHeaders: ['content-md5'], setHeaders: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
    });
    await h.enqueue('s3-s3', key);
    const row = await h.settled('s3-s3', key);
    t.equal(row.status, 'failed', 'failed, not completed');
    t.equal(row.lastErrorCode, 'IntegrityMismatch');
    t.equal(row.attempts, RETRY_LIMIT + 1, 'every attempt was made');
    t.equal(flip.fired, RETRY_LIMIT + 1);
    t.notOk(await existsS3('sdst', key), 'the wrong object was deleted');
    // Nothing may bless a wrong copy later either: reconcile again without the fault.
    flip.remove();
    await h.enqueue('s3-s3', key);
    const again = await h.settled('s3-s3', key, (r) => r.status !== 'failed');
    t.equal(again.status, 'completed');
    t.ok((await getS3('sdst', key))?.equals(body));
  });
});

t.test('a source overwritten mid-copy never yields a mixture: the key ends with the NEW version', async (t) => {
  t.test('multipart (OSS → OSS), the source stream breaks after part 2 and the object was overwritten: the ranged re-open fails If-Match, the attempt is queued again', async (t) => {
    const key = 'overwrite/multipart.bin';
    const first = randomBytes(6 * PART);
    const second = randomBytes(4 * PART + 999);
    await putOss('osrc', key, first);
    const { reset } = breakAfterPart1(proxies.osssrc, proxies.ossdst, key, 2 * PART + 500);
    const hook = proxies.osssrc.add({
      match: { method: 'GET', test: (i) => forKey(key)(i) && i.headers['if-match'] !== undefined },
      nth: 1,
      action: { type: 'hook', hook: () => putOss('osrc', key, second) },
    });
    await h.enqueue('oss-oss', key);
    const row = await h.settled('oss-oss', key);
    t.equal(reset.fired, 1);
    t.equal(hook.fired, 1);
    const reopen = reopenOf(proxies.osssrc, key)[0]!;
    t.ok(Number(/^bytes=(\d+)-/.exec(String(reopen.headers.range))?.[1]) >= PART, `re-opened from where the stream broke (${String(reopen.headers.range)})`);
    t.equal(etagOf(reopen.headers['if-match']), md5hex(first), 'with If-Match on the version being copied');
    t.equal(reopen.status, 412, 'which the overwritten source refused');
    t.equal(row.status, 'completed');
    t.ok(row.attempts >= 2, 'the first attempt failed (PreconditionFailed)');
    const copy = oss.getObject('odst', key)!;
    t.ok(copy.body.equals(second), 'destination holds the new version, not a mixture');
    t.equal(copy.meta['bb-source-etag'], oss.getObject('osrc', key)!.etag, 'fingerprint of the new version');
    t.equal(oss.pendingUploads('odst'), 0, 'the aborted attempt left no upload behind');
  });
  t.test('multipart (OSS → OSS), overwritten while its GET streams: the copy is of one version, the next event brings the new one', async (t) => {
    const key = 'overwrite/mid-stream.bin';
    const first = randomBytes(5 * PART + 3);
    const second = randomBytes(3 * PART + 5);
    await putOss('osrc', key, first);
    const hook = proxies.osssrc.add({
      match: { method: 'GET', test: forKey(key) },
      nth: 1,
      action: { type: 'hook-mid-response', afterBytes: 2 * PART + 7, hook: () => putOss('osrc', key, second) },
    });
    await h.enqueue('oss-oss', key);
    const row = await h.settled('oss-oss', key);
    t.equal(hook.fired, 1, 'overwritten with 2 parts and 7 bytes read');
    t.equal(row.status, 'completed');
    const firstCopy = oss.getObject('odst', key)!;
    // A GET answers with one version: the OSS test server (like OSS and S3) keeps serving the one it started.
    t.ok(firstCopy.body.equals(first), 'the copy is the version the GET started with, not a mixture');
    t.not(row.sourceEtag, oss.getObject('osrc', key)!.etag, 'and its status names that version');
    // The overwrite's own event queues the key again.
    await h.enqueue('oss-oss', key);
    const again = await h.settled('oss-oss', key, (r) => r.sourceEtag === oss.getObject('osrc', key)!.etag);
    t.equal(again.status, 'completed');
    t.ok(oss.getObject('odst', key)!.body.equals(second), 'then the new version');
    t.equal(oss.pendingUploads('odst'), 0);
  });
  t.test('single PUT (S3 → S3), overwritten between HEAD and GET', async (t) => {
    const key = 'overwrite/single.bin';
    const first = randomBytes(10 * KIB);
    const second = randomBytes(12 * KIB);
    await putS3('isrc', key, first);
    const hook = proxies.s3src.add({
      match: { method: 'GET', test: forKey(key) },
      nth: 1,
      action: {
        type: 'hook',
        hook: async () => {
          await putS3('isrc', key, second);
        },
      },
    });
    await h.enqueue('s3-s3', key);
    const row = await h.settled('s3-s3', key);
    t.equal(hook.fired, 1);
    t.equal(row.status, 'completed');
    t.equal(row.sourceEtag, md5hex(second), 'the status row names the new version');
    t.ok((await getS3('sdst', key))?.equals(second));
  });
});

t.test('transient errors retry and end correct', async (t) => {
  t.test('503 SlowDown and 500 from the destination, a reset mid-body from the source', async (t) => {
    const key = 'transient/mixed.bin';
    const body = randomBytes(4 * PART + 1);
    await putOss('osrc', key, body);
    const slow = proxies.ossdst.add({ match: { method: 'POST', query: { uploads: true }, test: forKey(key) }, nth: 1, action: { type: 'status', status: 503, code: 'SlowDown' } });
    const err = proxies.ossdst.add({ match: { method: 'PUT', query: { partNumber: '3' }, test: forKey(key) }, nth: 1, action: { type: 'status', status: 500 } });
    const reset = proxies.osssrc.add({ match: { method: 'GET', test: forKey(key) }, nth: 1, action: { type: 'reset', afterBytes: PART + 5000 } });
    await h.enqueue('oss-oss', key);
    const row = await h.settled('oss-oss', key);
    t.equal(slow.fired + err.fired + reset.fired, 3, 'every fault happened');
    t.equal(row.status, 'completed');
    t.ok(row.attempts >= 2 && row.attempts <= RETRY_LIMIT + 1, `retried (${row.attempts} attempts)`);
    t.ok(oss.getObject('odst', key)?.body.equals(body));
    t.equal(oss.pendingUploads('odst'), 0);
  });
  t.test('a source stream reset mid-object is re-opened where it broke (ranged, If-Match) within the same attempt', async (t) => {
    const key = 'transient/stream-reset.bin';
    const body = randomBytes(4 * PART + 10);
    const etag = await putS3('isrc', key, body);
    const { reset } = breakAfterPart1(proxies.s3src, proxies.s3dst, key, PART + 5000);
    await h.enqueue('s3-s3', key);
    const row = await h.settled('s3-s3', key);
    t.equal(reset.fired, 1);
    t.equal(row.status, 'completed');
    t.equal(row.attempts, 1, 'no attempt was lost to the reset');
    const gets = proxies.s3src.log.filter((r) => r.method === 'GET' && forKey(key)(r));
    t.equal(gets.length, 2, 'one GET, then one re-open');
    const reopen = reopenOf(proxies.s3src, key);
    t.equal(reopen.length, 1);
    t.ok(Number(/^bytes=(\d+)-/.exec(String(reopen[0]!.headers.range))?.[1]) >= PART, `from where the stream broke (${String(reopen[0]!.headers.range)})`);
    t.equal(etagOf(reopen[0]!.headers['if-match']), etag.toLowerCase(), 'with If-Match on the version being copied');
    t.ok((await getS3('sdst', key))?.equals(body));
  });
  t.test('a source stream that keeps breaking without progress fails the attempt after 3 re-opens; the next attempt ends correct', async (t) => {
    const key = 'transient/stream-keeps-breaking.bin';
    const body = randomBytes(4 * PART + 10);
    await putS3('isrc', key, body);
    breakAfterPart1(proxies.s3src, proxies.s3dst, key, PART + 5000);
    // Every re-open (the GETs with If-Match) breaks after 10 bytes: no progress worth counting.
    const broken = proxies.s3src.add({ match: { method: 'GET', headers: { 'if-match': true }, test: forKey(key) }, action: { type: 'reset', afterBytes: 10 } });
    await h.enqueue('s3-s3', key);
    const row = await h.settled('s3-s3', key);
    // Each re-open is one store request, which the store itself may try twice (a hang-up before the headers).
    t.ok(broken.fired >= 3 && broken.fired <= 6, `re-opens broken (${broken.fired} requests), then the attempt gave up`);
    t.equal(row.status, 'completed');
    t.equal(row.attempts, 2, 'the next attempt (its own GET) read the rest');
    t.ok((await getS3('sdst', key))?.equals(body));
  });
  t.test('a part upload failing while the reader waits for a slot (MD5-checked source) does not hang the attempt; the next one resumes', async (t) => {
    const key = 'transient/first-part-fails.bin';
    const body = randomBytes(5 * PART);
    await putS3('isrc', key, body);
    // Part 1's upload fails (every client attempt); parts 2 and 3 are slow, so the reader waits for a slot with part 4 when part 1 fails.
    const isPart = (n: string) => ({ method: 'PUT', query: { partNumber: n }, test: forKey(key) });
    const fail = proxies.ossdst.add({ match: isPart('1'), times: 3, action: { type: 'status', status: 503, code: 'SlowDown' } });
    const slow2 = proxies.ossdst.add({ match: isPart('2'), nth: 1, action: { type: 'delay', ms: 1500 } });
    const slow3 = proxies.ossdst.add({ match: isPart('3'), nth: 1, action: { type: 'delay', ms: 1500 } });
    await h.enqueue('s3-oss', key);
    const row = await h.settled('s3-oss', key, undefined, 30_000);
    t.ok(fail.fired >= 1);
    t.equal(slow2.fired + slow3.fired, 2);
    t.equal(row.status, 'completed');
    t.ok(row.attempts >= 2, `the first attempt failed (${row.attempts} attempts)`);
    const part2 = proxies.ossdst.log.filter((r) => r.method === 'PUT' && r.query.partNumber === '2' && forKey(key)(r));
    t.equal(part2.length, 1, 'part 2, finished by the failed attempt, was not sent again');
    t.ok(oss.getObject('idst', key)?.body.equals(body));
    t.equal(oss.pendingUploads('idst'), 0);
  });
});

t.test('a destination that refuses to list a kept upload\'s parts (405, as s3rver does) has the copy started over, not failed', async (t) => {
  const key = 'resume/parts unlistable.bin';
  const body = randomBytes(5 * PART + 11);
  await putS3('isrc', key, body);
  // Part 3 fails twice (the request and the store's own retry): a transient failure, so the upload is kept for the next attempt.
  const fail = proxies.s3dst.add({
    match: { method: 'PUT', query: { partNumber: '3' }, test: forKey(key) },
    after: 0,
    times: 2,
    action: { type: 'status', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
  });
  const refuse = proxies.s3dst.add({
    match: { method: 'GET', query: { uploadId: true }, test: forKey(key) },
    action: { type: 'status', status: 405, code: 'MethodNotAllowed', message: 'The specified method is not allowed against this resource.' },
  });
  await h.enqueue('s3-s3', key);
  const row = await h.settled('s3-s3', key);
  t.equal(fail.fired, 2, 'part 3 failed, with its retry');
  t.equal(refuse.fired, 1, 'the second attempt asked for the kept upload\'s parts and was refused');
  t.equal(row.status, 'completed');
  t.equal(row.attempts, 2);
  t.ok((await getS3('sdst', key))?.equals(body), 'the object is the source\'s');
  const creates = proxies.s3dst.log.filter((r) => r.method === 'POST' && forKey(key)(r) && 'uploads' in r.query);
  t.equal(creates.length, 2, 'a second upload was created');
  const aborts = proxies.s3dst.log.filter((r) => r.method === 'DELETE' && forKey(key)(r) && r.query.uploadId !== undefined);
  t.equal(aborts.length, 1, 'the kept upload was aborted');
  t.equal(await h.uploads.find('s3-s3', key), undefined, 'no upload record left');
});

t.test('403 from the destination fails at once: one attempt, status failed, failed marker, dead-lettered', async (t) => {
  t.test('wrong destination credentials (OSS InvalidAccessKeyId)', async (t) => {
    const key = 'denied/photo 1.jpg';
    await putS3('isrc', key, randomBytes(1000));
    await h.enqueue('denied', key);
    const row = await h.settled('denied', key);
    t.equal(row.status, 'failed');
    t.equal(row.attempts, 1, 'no retry');
    t.match(row.lastErrorCode, /InvalidAccessKeyId|AccessDenied/);
    t.ok(row.lastErrorMessage);
    t.ok(await existsS3('smarks', `bb_records/denied/failed_object/${key}`), 'failed marker written');
    const dead = (await h.deadLetters()).filter((d) => d.data.taskId === 'denied' && d.data.key === key);
    t.equal(dead.length, 1, 'in the dead-letter queue');
    t.match(dead[0]?.data.error?.code, /InvalidAccessKeyId|AccessDenied/);
  });
  t.test('403 AccessDenied on part 2 of a multipart upload: the upload is aborted, nothing left behind', async (t) => {
    const key = 'denied/multipart.bin';
    await putS3('isrc', key, randomBytes(4 * PART));
    const deny = proxies.ossdst.add({ match: { method: 'PUT', query: { partNumber: '2' }, test: forKey(key) }, action: { type: 'status', status: 403, code: 'AccessDenied' } });
    await h.enqueue('s3-oss', key);
    const row = await h.settled('s3-oss', key);
    t.equal(deny.fired, 1, 'one request denied, no retry');
    t.equal(row.status, 'failed');
    t.equal(row.attempts, 1);
    t.equal(row.lastErrorCode, 'AccessDenied');
    t.equal(oss.pendingUploads('idst'), 0, 'upload aborted');
    t.equal((await h.uploads.find('s3-oss', key)), undefined, 'no resume record kept');
    t.ok(oss.getObject('omarks', `bb_records/s3-oss/failed_object/${key}`), 'failed marker in the destination-side marker bucket');
  });
});

t.test('past the retry limit the key is failed and dead-lettered; a later success replaces the failure marker', async (t) => {
  const key = 'limit/always-500.txt';
  const body = randomBytes(2000);
  await putS3('isrc', key, body);
  const broken = proxies.s3dst.add({ match: { method: 'PUT', path: `/sdst/${key}` }, action: { type: 'status', status: 500 } });
  await h.enqueue('s3-s3', key);
  const row = await h.settled('s3-s3', key);
  t.equal(row.status, 'failed');
  t.equal(row.attempts, RETRY_LIMIT + 1, 'first attempt + every retry');
  t.equal(row.lastErrorCode, 'ServerError');
  const jobs = await h.jobs('s3-s3', key);
  t.equal(jobs.at(-1)?.state, 'failed', 'the job failed in the queue');
  const dead = (await h.deadLetters()).filter((d) => d.data.taskId === 's3-s3' && d.data.key === key);
  t.equal(dead.length, 1, 'dead-lettered');
  t.ok(await existsS3('smarks', `bb_records/s3-s3/failed_object/${key}`), 'failed marker');
  t.notOk(await existsS3('smarks', `bb_records/s3-s3/success_object/${key}`));

  broken.remove();
  await h.enqueue('s3-s3', key);
  const ok = await h.settled('s3-s3', key, (r) => r.status === 'completed');
  t.equal(ok.attempts, 1, 'a new round');
  t.ok((await getS3('sdst', key))?.equals(body));
  t.ok(await existsS3('smarks', `bb_records/s3-s3/success_object/${key}`), 'success marker');
  t.notOk(await existsS3('smarks', `bb_records/s3-s3/failed_object/${key}`), 'failure marker removed');
});
