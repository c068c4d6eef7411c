/**
 * S3Store against a real S3-compatible server (s3rver + the compatibility layer
 * in test/support/s3-server.ts), plus two tiny stub servers for failures a
 * healthy server cannot produce (a body cut mid-stream, a Range ignored).
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { StorageError } from '../src/storage/errors.js';
import {
  decodeMetadataValue,
  encodeMetadataValue,
  fromS3StorageClass,
  S3Store,
  type S3StoreOptions,
} from '../src/storage/s3-store.js';
import { fullObjectChecksum, startS3Server } from './support/s3-server.js';

const MIB = 1024 * 1024;
const BUCKET = 'bb-s3-test';

const server = await startS3Server({ buckets: [BUCKET], minPartSize: 5 * MIB });
t.teardown(() => server.close());

function storeOptions(overrides: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    bucket: BUCKET,
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    ...overrides,
  };
}

const store = new S3Store(storeOptions());
t.teardown(() => store.close());

const md5b64 = (b: Buffer): string => createHash('md5').update(b).digest('base64');
const md5hex = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The subtest type (tap's overloads make it awkward to name directly). */
type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

async function rejectsStorage(
  t: TestT,
  p: Promise<unknown>,
  code: StorageError['code'],
  retryable?: boolean,
): Promise<StorageError | undefined> {
  try {
    await p;
  } catch (err) {
    t.type(err, StorageError, 'a StorageError');
    const e = err as StorageError;
    t.equal(e.code, code, `code ${code} (${e.message})`);
    if (retryable !== undefined) t.equal(e.retryable, retryable, `retryable ${retryable}`);
    return e;
  }
  t.fail(`expected StorageError ${code}, resolved instead`);
  return undefined;
}

/** An http server that closes again: a port where nothing listens. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function stubServer(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; endpoint: string }> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { server: s, endpoint: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}

t.test('head of a missing key is null', async (t) => {
  t.equal(await store.head('no/such/key'), null);
});

t.test('head in a missing bucket fails with NoSuchBucket instead of claiming the key is gone', async (t) => {
  const other = new S3Store(storeOptions({ bucket: 'bb-no-such-bucket' }));
  t.teardown(() => other.close());
  await rejectsStorage(t, other.head('k'), 'NoSuchBucket', false);
});

for (const lean of [true, false]) {
  t.test(`open (${lean ? 'lean' : 'SDK'} request path): one GET gives the same head as HEAD and the bytes; null when missing`, async (t) => {
    const s = new S3Store(storeOptions({ leanRequests: lean }));
    t.teardown(() => s.close());
    const key = `open/${lean ? 'lean' : 'sdk'}.bin`;
    const body = randomBytes(3000);
    await s.put(key, body, body.length, {
      contentType: 'application/x-test',
      cacheControl: 'no-store',
      expires: 'not a date',
      userMetadata: { origin: 'open test', accent: 'café' },
      storageClass: 'STANDARD_IA',
    });
    const opened = await s.open(key);
    t.ok(opened, 'opened');
    if (!opened) return;
    t.ok((await readAll(opened.body)).equals(body), 'the whole object');
    t.same(opened.head, await s.head(key), 'the head equals what HEAD reports');
    t.equal(opened.head.etag, md5hex(body));
    t.equal(opened.head.storageClass, 'STANDARD_IA');
    t.same(opened.head.userMetadata, { origin: 'open test', accent: 'café' });

    await s.put(`${key}.empty`, Buffer.alloc(0), 0);
    const zero = await s.open(`${key}.empty`);
    t.equal(zero?.head.size, 0);
    t.equal((await readAll(zero!.body)).length, 0, 'a 0-byte body ends at once');

    t.equal(await s.open('open/no-such-key'), null, 'a missing key is null');
    const other = new S3Store(storeOptions({ bucket: 'bb-no-such-bucket', leanRequests: lean }));
    t.teardown(() => other.close());
    await rejectsStorage(t, other.open('k'), 'NoSuchBucket', false);
  });
}

t.test('put with every Content-* header, user metadata and a storage class round-trips through head', async (t) => {
  const body = Buffer.from('héllo, wörld\n');
  const res = await store.put('meta/all-headers.txt', body, body.length, {
    contentType: 'text/plain; charset=utf-8',
    contentEncoding: 'identity',
    contentDisposition: 'attachment; filename="a b.txt"',
    contentLanguage: 'de-DE',
    cacheControl: 'max-age=60, private',
    expires: 'Thu, 01 Dec 2050 16:00:00 GMT',
    userMetadata: { 'x-origin': 'unit test', MixedCase: 'Value With Spaces' },
    storageClass: 'STANDARD_IA',
    contentMd5: md5b64(body),
  });
  t.equal(res.etag, md5hex(body), 'single-part ETag is the MD5, unquoted');
  t.equal(res.crc64, undefined, 'S3 reports no CRC-64/XZ');
  const head = await store.head('meta/all-headers.txt');
  t.ok(head);
  if (!head) return;
  t.match(head, {
    key: 'meta/all-headers.txt',
    size: body.length,
    etag: md5hex(body),
    contentType: 'text/plain; charset=utf-8',
    contentEncoding: 'identity',
    contentDisposition: 'attachment; filename="a b.txt"',
    contentLanguage: 'de-DE',
    cacheControl: 'max-age=60, private',
    expires: 'Thu, 01 Dec 2050 16:00:00 GMT',
    storageClass: 'STANDARD_IA',
    rawStorageClass: 'STANDARD_IA',
    multipartEtag: false,
    needsRestore: false,
    restoreInProgress: false,
  });
  t.same(head.userMetadata, { 'x-origin': 'unit test', mixedcase: 'Value With Spaces' }, 'metadata keys lower-cased');
  t.equal(head.crc64, undefined, 'never a crc64 from S3 (crc64nvme is another function)');
  t.type(head.lastModified, Date);
});

t.test('non-ASCII user metadata travels RFC 2047-encoded and reads back decoded', async (t) => {
  const meta = { city: '北京 / Zürich', plain: 'ascii only' };
  await store.put('meta/unicode', Buffer.from('x'), 1, { userMetadata: meta });
  t.same((await store.head('meta/unicode'))?.userMetadata, meta);
  t.equal(encodeMetadataValue('ascii only'), 'ascii only', 'ASCII is sent as is');
  t.equal(encodeMetadataValue('é'), '=?UTF-8?B?w6k=?=');
  t.equal(decodeMetadataValue('=?UTF-8?Q?Z=C3=BCrich_x?='), 'Zürich x', 'Q encoding');
  t.equal(decodeMetadataValue('=?UTF-8?B?5YyX?= =?UTF-8?B?5Lqs?= !'), '北京 !', 'adjacent encoded-words join');
  t.equal(decodeMetadataValue('a =?x-unknown?B?AA==?='), 'a =?x-unknown?B?AA==?=', 'unknown charsets left alone');
  t.equal(decodeMetadataValue(Buffer.from('日本').toString('latin1')), '日本', 'raw UTF-8 bytes from compatible stores');
});

t.test('non-ASCII standard headers are refused before any request (S3 cannot carry them)', async (t) => {
  const before = Date.now();
  await rejectsStorage(
    t,
    store.put('meta/bad-disposition', Buffer.from('x'), 1, { contentDisposition: 'attachment; filename="日本.txt"' }),
    'InvalidRequest',
    false,
  );
  await rejectsStorage(t, store.createMultipartUpload('meta/bad-type', { contentType: 'text/plain; x=é' }), 'InvalidRequest', false);
  await rejectsStorage(t, store.put('meta/bad-name', Buffer.from('x'), 1, { userMetadata: { 'bad name': 'v' } }), 'InvalidRequest', false);
  t.equal(await store.head('meta/bad-disposition'), null, 'nothing written');
  t.ok(Date.now() - before < 5000);
});

t.test('Expires that is not an HTTP date is carried verbatim', async (t) => {
  await store.put('meta/expires-zero', Buffer.from('x'), 1, { expires: '0' });
  t.equal((await store.head('meta/expires-zero'))?.expires, '0');
});

t.test('an archived (GLACIER) object needs a restore; ARCHIVE maps to GLACIER on write', async (t) => {
  await store.put('cold/object', Buffer.from('cold'), 4, { storageClass: 'ARCHIVE' });
  const head = await store.head('cold/object');
  t.match(head, { storageClass: 'ARCHIVE', rawStorageClass: 'GLACIER', needsRestore: true, restoreInProgress: false });
});

t.test('storage class mapping: only classes that need a restore are ARCHIVE', async (t) => {
  t.equal(fromS3StorageClass(undefined), 'STANDARD', 'S3 omits the header for STANDARD');
  t.equal(fromS3StorageClass('ONEZONE_IA'), 'STANDARD_IA');
  t.equal(fromS3StorageClass('DEEP_ARCHIVE'), 'ARCHIVE');
  t.equal(fromS3StorageClass('GLACIER_IR'), 'OTHER', 'Glacier Instant Retrieval is readable without a restore');
  t.equal(fromS3StorageClass('INTELLIGENT_TIERING'), 'OTHER');
});

t.test('put from a stream, get it back whole and by range', async (t) => {
  const body = randomBytes(256 * 1024 + 7);
  const chunks = [body.subarray(0, 1000), body.subarray(1000, 100_000), body.subarray(100_000)];
  const res = await store.put('data/stream.bin', Readable.from(chunks), body.length);
  t.equal(res.etag, md5hex(body));
  t.ok((await readAll(await store.get('data/stream.bin'))).equals(body), 'whole object');
  const part = await readAll(await store.get('data/stream.bin', { range: { start: 1000, end: 1999 } }));
  t.ok(part.equals(body.subarray(1000, 2000)), 'inclusive range');
  const last = await readAll(await store.get('data/stream.bin', { range: { start: body.length - 1, end: body.length - 1 } }));
  t.ok(last.equals(body.subarray(body.length - 1)), 'last byte');
  await rejectsStorage(t, store.get('data/stream.bin', { range: { start: 5, end: 4 } }), 'InvalidRequest', false);
});

t.test('a 0-byte object, from a Buffer and from an empty stream', async (t) => {
  const empty = Buffer.alloc(0);
  t.equal((await store.put('empty/buffer', empty, 0, { contentMd5: md5b64(empty) })).etag, md5hex(empty));
  t.equal((await store.put('empty/stream', Readable.from([]), 0)).etag, md5hex(empty));
  for (const key of ['empty/buffer', 'empty/stream']) {
    t.match(await store.head(key), { size: 0, etag: md5hex(empty) }, key);
    t.equal((await readAll(await store.get(key))).length, 0, `${key} reads as empty`);
  }
});

t.test('get with If-Match: the current ETag reads, a stale one fails PreconditionFailed', async (t) => {
  const body = Buffer.from('version 1');
  const { etag } = await store.put('cond/key', body, body.length);
  t.ok((await readAll(await store.get('cond/key', { ifMatch: etag }))).equals(body), 'unquoted ETag accepted');
  t.ok((await readAll(await store.get('cond/key', { ifMatch: `"${etag}"` }))).equals(body), 'quoted ETag accepted');
  await store.put('cond/key', Buffer.from('version 2'), 9);
  await rejectsStorage(t, store.get('cond/key', { ifMatch: etag }), 'PreconditionFailed');
});

t.test('get of a missing key fails NoSuchKey (not retryable)', async (t) => {
  await rejectsStorage(t, store.get('no/such/key'), 'NoSuchKey', false);
});

t.test('Content-MD5 mismatch is rejected with BadDigest and leaves the old object in place', async (t) => {
  const original = Buffer.from('original');
  await store.put('digest/key', original, original.length);
  const body = Buffer.from('new bytes');
  const err = await rejectsStorage(t, store.put('digest/key', body, body.length, { contentMd5: md5b64(Buffer.from('other')) }), 'BadDigest');
  t.equal(err?.status, 400);
  t.equal(err?.providerCode, 'BadDigest');
  t.ok((await readAll(await store.get('digest/key'))).equals(original), 'object unchanged');
});

t.test('a payload hash computed by the caller is signed as given; one that is not the body\'s is refused as BadDigest (retryable)', async (t) => {
  t.equal(await store.payloadSha256Wanted(), true, 'plain http: writes sign the payload hash');
  const body = randomBytes(3000);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  await store.put('payload/right', body, body.length, { contentMd5: md5b64(body), payloadSha256: sha(body) });
  t.ok((await readAll(await store.get('payload/right'))).equals(body), 'stored');
  const err = await rejectsStorage(t, store.put('payload/wrong', body, body.length, { payloadSha256: sha(Buffer.from('other')) }), 'BadDigest', true);
  t.equal(err?.providerCode, 'XAmzContentSHA256Mismatch');
  t.equal(await store.head('payload/wrong'), null, 'nothing stored');
  const uploadId = await store.createMultipartUpload('payload/part');
  await rejectsStorage(t, store.uploadPart('payload/part', uploadId, 1, body, { payloadSha256: sha(Buffer.from('other')) }), 'BadDigest', true);
  t.match((await store.uploadPart('payload/part', uploadId, 1, body, { payloadSha256: sha(body) })).etag, md5hex(body), 'a part with the right hash is taken');
  await store.abortMultipartUpload('payload/part', uploadId);
});

t.test('multipart: create, 3 parts with Content-MD5, listParts, complete', async (t) => {
  const parts = [randomBytes(5 * MIB), randomBytes(5 * MIB), randomBytes(1234)];
  const whole = Buffer.concat(parts);
  const key = 'multi/three parts+ü.bin';
  const uploadId = await store.createMultipartUpload(key, {
    contentType: 'application/x-test',
    cacheControl: 'no-cache',
    userMetadata: { source: 'multipart' },
  });
  t.ok(uploadId);
  const results = [];
  for (const [i, p] of parts.entries()) {
    const r = await store.uploadPart(key, uploadId, i + 1, p, { contentMd5: md5b64(p) });
    t.equal(r.etag, md5hex(p), `part ${i + 1} ETag is its MD5`);
    results.push({ partNumber: i + 1, etag: r.etag });
  }
  const listed = await store.listParts(key, uploadId);
  t.same(
    listed,
    parts.map((p, i) => ({ partNumber: i + 1, etag: md5hex(p), size: p.length })),
    'listParts reports every part',
  );
  // Parts handed over out of order are sorted before completing.
  const done = await store.completeMultipartUpload(key, uploadId, [...results].reverse());
  const expectedEtag = `${createHash('md5')
    .update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest())))
    .digest('hex')}-3`;
  t.equal(done.etag, expectedEtag, 'multipart ETag md5-of-md5s-N');
  const head = await store.head(key);
  t.match(head, { size: whole.length, etag: expectedEtag, multipartEtag: true, contentType: 'application/x-test', cacheControl: 'no-cache' });
  t.same(head?.userMetadata, { source: 'multipart' });
  t.ok((await readAll(await store.get(key))).equals(whole), 'bytes assembled in order');
});

t.test('headPart: part sizes and count of an object uploaded in parts; none for one that was not', async (t) => {
  const parts = [randomBytes(5 * MIB), randomBytes(5 * MIB + 7), randomBytes(99)];
  const key = 'multi/head part.bin';
  const uploadId = await store.createMultipartUpload(key);
  const done = [];
  for (const [i, p] of parts.entries()) done.push({ partNumber: i + 1, etag: (await store.uploadPart(key, uploadId, i + 1, p)).etag });
  const { etag } = await store.completeMultipartUpload(key, uploadId, done);
  for (const [i, p] of parts.entries()) {
    t.same(await store.headPart(key, i + 1, etag), { size: p.length, partsCount: 3 }, `part ${i + 1}`);
  }
  await rejectsStorage(t, store.headPart(key, 4, etag), 'InvalidRequest', false);
  await rejectsStorage(t, store.headPart(key, 1, '0123456789abcdef0123456789abcdef-3'), 'PreconditionFailed');

  const single = randomBytes(1000);
  await store.put('multi/one put.bin', single, single.length);
  t.equal(await store.headPart('multi/one put.bin', 1, md5hex(single)), undefined, 'a single PUT has no part count');
});

t.test('head and open report a full-object checksum (asked for with x-amz-checksum-mode)', async (t) => {
  const parts = [randomBytes(5 * MIB), randomBytes(321)];
  const key = 'multi/with checksum.bin';
  const uploadId = await store.createMultipartUpload(key);
  const done = [];
  for (const [i, p] of parts.entries()) done.push({ PartNumber: i + 1, ETag: (await store.uploadPart(key, uploadId, i + 1, p)).etag });
  const value = await fullObjectChecksum('CRC64NVME', parts);
  // Completed with the SDK: the store's own complete sends no checksum.
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  t.teardown(() => client.destroy());
  await client.send(
    new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: done }, ChecksumCRC64NVME: value }),
  );
  t.same((await store.head(key))?.checksum, { algorithm: 'CRC64NVME', value }, 'HEAD');
  const opened = await store.open!(key);
  t.same(opened?.head.checksum, { algorithm: 'CRC64NVME', value }, 'whole-object GET');
  opened?.body.destroy();
  const sdkOnly = new S3Store(storeOptions({ leanRequests: false }));
  t.same((await sdkOnly.head(key))?.checksum, { algorithm: 'CRC64NVME', value }, 'HEAD through the SDK');
  await sdkOnly.close();
  t.equal((await store.head('multi/head part.bin'))?.checksum, undefined, 'none kept: none reported');
});

t.test('head and open report a composite checksum ("<base64>-N", x-amz-checksum-type COMPOSITE) apart from a full-object one', async (t) => {
  const parts = [randomBytes(5 * MIB), randomBytes(5 * MIB), randomBytes(99)];
  const key = 'multi/with composite checksum.bin';
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  t.teardown(() => client.destroy());
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: 'SHA1' }));
  const done = [];
  for (const [i, p] of parts.entries()) {
    const ChecksumSHA1 = await fullObjectChecksum('SHA1', [p]);
    const r = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: i + 1, Body: p, ContentLength: p.length, ChecksumSHA1 }));
    done.push({ PartNumber: i + 1, ETag: r.ETag, ChecksumSHA1 });
  }
  await client.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: done } }));
  // The checksum of the part checksums, as S3 defines it.
  const value = createHash('sha1')
    .update(Buffer.concat(parts.map((p) => createHash('sha1').update(p).digest())))
    .digest('base64');
  const expected = { algorithm: 'SHA1', value, count: 3 };
  const head = await store.head(key);
  t.same(head?.compositeChecksum, expected, 'HEAD');
  t.equal(head?.checksum, undefined, 'not taken for a full-object checksum');
  const opened = await store.open!(key);
  t.same(opened?.head.compositeChecksum, expected, 'whole-object GET');
  opened?.body.destroy();
  const sdkOnly = new S3Store(storeOptions({ leanRequests: false }));
  t.same((await sdkOnly.head(key))?.compositeChecksum, expected, 'HEAD through the SDK');
  await sdkOnly.close();
});

t.test('multipart: a wrong part ETag or a too-small middle part is refused', async (t) => {
  const key = 'multi/refused';
  const uploadId = await store.createMultipartUpload(key);
  const small = randomBytes(1024);
  const a = await store.uploadPart(key, uploadId, 1, small);
  const b = await store.uploadPart(key, uploadId, 2, small);
  const wrong = await rejectsStorage(
    t,
    store.completeMultipartUpload(key, uploadId, [
      { partNumber: 1, etag: '0'.repeat(32) },
      { partNumber: 2, etag: b.etag },
    ]),
    'InvalidRequest',
    false,
  );
  t.equal(wrong?.providerCode, 'InvalidPart');
  const tooSmall = await rejectsStorage(
    t,
    store.completeMultipartUpload(key, uploadId, [
      { partNumber: 1, etag: a.etag },
      { partNumber: 2, etag: b.etag },
    ]),
    'InvalidRequest',
    false,
  );
  t.equal(tooSmall?.providerCode, 'EntityTooSmall');
  await store.abortMultipartUpload(key, uploadId);
});

t.test('multipart: a part with a wrong Content-MD5 is rejected', async (t) => {
  const key = 'multi/bad-part';
  const uploadId = await store.createMultipartUpload(key);
  await rejectsStorage(t, store.uploadPart(key, uploadId, 1, randomBytes(100), { contentMd5: md5b64(Buffer.from('x')) }), 'BadDigest');
  t.same(await store.listParts(key, uploadId), [], 'the rejected part is not listed');
  await store.abortMultipartUpload(key, uploadId);
});

t.test('multipart: abort discards the upload; later calls fail NoSuchUpload', async (t) => {
  const key = 'multi/aborted';
  const uploadId = await store.createMultipartUpload(key);
  const p = randomBytes(100);
  const r = await store.uploadPart(key, uploadId, 1, p);
  await store.abortMultipartUpload(key, uploadId);
  await rejectsStorage(t, store.listParts(key, uploadId), 'NoSuchUpload', false);
  await rejectsStorage(t, store.uploadPart(key, uploadId, 2, p), 'NoSuchUpload', false);
  await rejectsStorage(t, store.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: r.etag }]), 'NoSuchUpload', false);
  await rejectsStorage(t, store.abortMultipartUpload(key, uploadId), 'NoSuchUpload', false);
  t.equal(await store.head(key), null, 'nothing was created');
});

t.test('listParts follows NextPartNumberMarker past 1000 parts', async (t) => {
  const key = 'multi/many-parts';
  const uploadId = await store.createMultipartUpload(key);
  const count = 1003;
  const byte = Buffer.from('z');
  let next = 1;
  const worker = async (): Promise<void> => {
    while (next <= count) {
      const n = next++;
      await store.uploadPart(key, uploadId, n, byte);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const parts = await store.listParts(key, uploadId);
  t.equal(parts.length, count);
  t.same(
    parts.map((p) => p.partNumber),
    Array.from({ length: count }, (_, i) => i + 1),
    'every part once, in order',
  );
  await store.abortMultipartUpload(key, uploadId);
});

t.test('delete removes a key; deleting a missing key is not an error', async (t) => {
  await store.put('del/key', Buffer.from('x'), 1);
  await store.delete('del/key');
  t.equal(await store.head('del/key'), null);
  await store.delete('del/key');
  await store.delete('del/never-existed');
});

t.test('listPage paginates in UTF-8 byte order with awkward keys', async (t) => {
  const keys = [
    'list/a',
    'list/a b',
    'list/a+b',
    'list/a%20b',
    'list/a%b',
    'list/a-b',
    'list/a/b',
    'list/a/b/c',
    'list/b',
    'list/é',
    'list/日本語/ファイル',
    'list/😀 emoji',
    'list/\uFF5E fullwidth tilde',
    'list/tab\there',
  ];
  for (const k of keys) await store.put(k, Buffer.from(k), Buffer.byteLength(k));
  const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await store.listPage({ prefix: 'list/', maxKeys: 3, ...(token !== undefined ? { token } : {}) });
    t.ok(page.objects.length <= 3, 'at most maxKeys per page');
    for (const o of page.objects) {
      seen.push(o.key);
      t.equal(o.size, Buffer.byteLength(o.key));
      t.equal(o.etag, md5hex(Buffer.from(o.key)), 'ETag unquoted');
      t.equal(o.storageClass, 'STANDARD');
      t.type(o.lastModified, Date);
    }
    token = page.nextToken;
    pages++;
  } while (token !== undefined && pages < 20);
  t.same(seen, expected, 'every key exactly once, in UTF-8 byte order');
  t.equal(pages, Math.ceil(keys.length / 3));

  const after = await store.listPage({ prefix: 'list/', startAfter: 'list/a/b' });
  t.same(
    after.objects.map((o) => o.key),
    expected.filter((k) => Buffer.compare(Buffer.from(k), Buffer.from('list/a/b')) > 0),
    'startAfter',
  );
  t.equal(after.nextToken, undefined, 'last page has no token');
  t.same((await store.listPage({ prefix: 'list/日本語/' })).objects.map((o) => o.key), ['list/日本語/ファイル'], 'unicode prefix');
  t.same((await store.listPage({ prefix: 'list/nothing-here/' })).objects, [], 'empty listing');
});

t.test('wrong credentials fail fast: InvalidAccessKeyId, not retryable', async (t) => {
  const bad = new S3Store(storeOptions({ credentials: { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' } }));
  t.teardown(() => bad.close());
  const e = await rejectsStorage(t, bad.put('auth/x', Buffer.from('x'), 1), 'InvalidAccessKeyId', false);
  t.equal(e?.status, 403);
  await rejectsStorage(t, bad.listPage({}), 'InvalidAccessKeyId', false);
  // HEAD has no error body: the status alone says 403.
  const h = await rejectsStorage(t, bad.head('meta/all-headers.txt'), 'AccessDenied', false);
  t.equal(h?.status, 403);
});

t.test('an unreachable endpoint is a retryable NetworkError', async (t) => {
  const port = await closedPort();
  const dead = new S3Store(storeOptions({ endpoint: `http://127.0.0.1:${port}` }));
  t.teardown(() => dead.close());
  const e = await rejectsStorage(t, dead.head('k'), 'NetworkError', true);
  t.equal(e?.status, undefined, 'no HTTP status');
  t.equal(e?.providerCode, 'ECONNREFUSED');
  await rejectsStorage(t, dead.put('k', Buffer.from('x'), 1), 'NetworkError', true);
});

t.test('plain-http endpoints work with AWS_CA_BUNDLE set (SDK v3 ignores it)', async (t) => {
  const saved = process.env['AWS_CA_BUNDLE'];
  process.env['AWS_CA_BUNDLE'] = '/nonexistent/ca-bundle.pem';
  t.teardown(() => {
    if (saved === undefined) delete process.env['AWS_CA_BUNDLE'];
    else process.env['AWS_CA_BUNDLE'] = saved;
  });
  const s = new S3Store(storeOptions());
  t.teardown(() => s.close());
  await s.put('ca/key', Buffer.from('ok'), 2);
  t.equal((await readAll(await s.get('ca/key'))).toString(), 'ok');
});

t.test('a body cut off or stalled mid-stream surfaces as a StorageError from the stream', async (t) => {
  const stub = await stubServer((req, res) => {
    res.writeHead(200, { 'content-length': '1000', etag: '"abc"', 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(10));
    if (req.url?.includes('cut')) setTimeout(() => res.socket?.destroy(), 20);
    // 'stall': headers and 10 bytes, then nothing.
  });
  t.teardown(() => {
    stub.server.closeAllConnections();
    stub.server.close();
  });
  const s = new S3Store(storeOptions({ endpoint: stub.endpoint, requestTimeoutMs: 300 }));
  t.teardown(() => s.close());
  await rejectsStorage(t, readAll(await s.get('cut')), 'NetworkError', true);
  await rejectsStorage(t, readAll(await s.get('stall')), 'Timeout', true);
});

t.test('a store that ignores Range is not trusted with a ranged read', async (t) => {
  const stub = await stubServer((_req, res) => {
    res.writeHead(200, { 'content-length': '100', etag: '"abc"' });
    res.end(Buffer.alloc(100));
  });
  t.teardown(() => stub.server.close());
  const s = new S3Store(storeOptions({ endpoint: stub.endpoint }));
  t.teardown(() => s.close());
  await rejectsStorage(t, s.get('k', { range: { start: 0, end: 9 } }), 'InvalidRequest', false);
});

t.test('server errors are retryable ServerError; a stalled socket is a Timeout', async (t) => {
  const stub = await stubServer((req, res) => {
    if (req.url?.includes('stall')) return; // never answers
    res.writeHead(500, { 'content-type': 'application/xml' });
    res.end('<?xml version="1.0"?><Error><Code>InternalError</Code><Message>boom</Message></Error>');
  });
  t.teardown(() => {
    stub.server.closeAllConnections();
    stub.server.close();
  });
  const s = new S3Store(storeOptions({ endpoint: stub.endpoint, requestTimeoutMs: 300 }));
  t.teardown(() => s.close());
  const e = await rejectsStorage(t, s.put('k', Buffer.from('x'), 1), 'ServerError', true);
  t.equal(e?.providerCode, 'InternalError');
  await rejectsStorage(t, s.get('stall'), 'Timeout', true);
});

t.test('head mapping of restore state, encryption and checksums (headers S3 sends, s3rver does not)', async (t) => {
  const etag = '0123456789abcdef0123456789abcdef';
  const responses: Record<string, Record<string, string>> = {
    '/bb-s3-test/kms': { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-checksum-crc64nvme': 'AAAAAAAAAAA=' },
    '/bb-s3-test/ssec': { 'x-amz-server-side-encryption-customer-algorithm': 'AES256' },
    '/bb-s3-test/restoring': { 'x-amz-storage-class': 'GLACIER', 'x-amz-restore': 'ongoing-request="true"' },
    '/bb-s3-test/restored': {
      'x-amz-storage-class': 'DEEP_ARCHIVE',
      'x-amz-restore': 'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"',
    },
    '/bb-s3-test/glacier-ir': { 'x-amz-storage-class': 'GLACIER_IR' },
    '/bb-s3-test/it-archive': { 'x-amz-storage-class': 'INTELLIGENT_TIERING', 'x-amz-archive-status': 'ARCHIVE_ACCESS' },
  };
  const stub = await stubServer((req, res) => {
    const extra = responses[req.url ?? ''];
    if (!extra) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { etag: `"${etag}"`, 'content-length': '5', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT', ...extra });
    res.end();
  });
  t.teardown(() => stub.server.close());
  const s = new S3Store(storeOptions({ endpoint: stub.endpoint }));
  t.teardown(() => s.close());
  t.match(await s.head('kms'), { etag, multipartEtag: true, storageClass: 'STANDARD' }, 'SSE-KMS ETag is not an MD5');
  t.equal((await s.head('kms'))?.crc64, undefined, 'crc64nvme is not CRC-64/XZ');
  t.match(await s.head('ssec'), { multipartEtag: true, sseCustomerAlgorithm: 'AES256' });
  t.match(await s.head('restoring'), { storageClass: 'ARCHIVE', needsRestore: true, restoreInProgress: true });
  t.match(await s.head('restored'), { storageClass: 'ARCHIVE', rawStorageClass: 'DEEP_ARCHIVE', needsRestore: false, restoreInProgress: false });
  t.match(await s.head('glacier-ir'), { storageClass: 'OTHER', rawStorageClass: 'GLACIER_IR', needsRestore: false });
  t.match(await s.head('it-archive'), { storageClass: 'OTHER', needsRestore: true });
});

t.test('restore sends Days and treats RestoreAlreadyInProgress as success', async (t) => {
  const bodies: string[] = [];
  const stub = await stubServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push(`${req.method} ${req.url} ${body}`);
      if (req.url?.startsWith('/bb-s3-test/busy')) {
        res.writeHead(409, { 'content-type': 'application/xml' });
        res.end('<Error><Code>RestoreAlreadyInProgress</Code><Message>in progress</Message></Error>');
      } else if (req.url?.startsWith('/bb-s3-test/standard')) {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<Error><Code>InvalidObjectState</Code><Message>not archived</Message></Error>');
      } else {
        res.writeHead(202);
        res.end();
      }
    });
  });
  t.teardown(() => stub.server.close());
  const s = new S3Store(storeOptions({ endpoint: stub.endpoint }));
  t.teardown(() => s.close());
  await s.restore('cold', 3);
  t.match(bodies[0], /^POST \/bb-s3-test\/cold\?restore.*<Days>3<\/Days>.*<Tier>Standard<\/Tier>/s);
  await s.restore('busy', 3);
  await rejectsStorage(t, s.restore('standard', 3), 'InvalidObjectState', false);
});
