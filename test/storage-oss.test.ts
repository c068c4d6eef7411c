/**
 * OssStore against the in-process OSS test server (test/support/oss-server.ts),
 * which verifies OSS V1 signatures and reports CRC-64 and OSS error XML.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc64Combine, crc64Of } from '../src/storage/crc64.js';
import { StorageError } from '../src/storage/errors.js';
import { fromOssStorageClass, OssStore, type OssStoreOptions } from '../src/storage/oss-store.js';
import { startOssServer } from './support/oss-server.js';

const KIB = 1024;
const BUCKET = 'bb-oss-test';
const RESTORE_DELAY_MS = 400;

const server = await startOssServer({ buckets: [BUCKET], restoreDelayMs: RESTORE_DELAY_MS });
t.teardown(() => server.close());

function storeOptions(overrides: Partial<OssStoreOptions> = {}): OssStoreOptions {
  return {
    bucket: BUCKET,
    region: 'oss-cn-hangzhou',
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, accessKeySecret: server.accessKeySecret },
    timeoutMs: 20_000,
    ...overrides,
  };
}

const store = new OssStore(storeOptions());
t.teardown(() => store.close());

const md5b64 = (b: Buffer): string => createHash('md5').update(b).digest('base64');
const md5HEX = (b: Buffer): string => createHash('md5').update(b).digest('hex').toUpperCase();

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

t.test('head of a missing key is null; a missing bucket is an error, not "deleted"', async (t) => {
  t.equal(await store.head('no/such/key'), null);
  const other = new OssStore(storeOptions({ bucket: 'bb-no-such-bucket' }));
  t.teardown(() => other.close());
  await rejectsStorage(t, other.head('k'), 'NoSuchBucket', false);
});

t.test('open: one GET gives the same head as HEAD and the bytes; null when missing; errors like get', async (t) => {
  const body = randomBytes(3000);
  await store.put('open/one.bin', body, body.length, {
    contentType: 'application/x-test',
    cacheControl: 'no-store',
    userMetadata: { origin: 'open test' },
    storageClass: 'STANDARD_IA',
  });
  const before = server.requests.length;
  const opened = await store.open('open/one.bin');
  t.ok(opened, 'opened');
  if (!opened) return;
  t.ok((await readAll(opened.body)).equals(body), 'the whole object');
  const sent = server.requests.slice(before);
  t.same(sent.map((r) => r.method), ['GET'], 'one request: a GET');
  t.same(opened.head, await store.head('open/one.bin'), 'the head equals what HEAD reports (size, ETag, CRC-64, headers, metadata, class)');
  t.equal(opened.head.crc64, await crc64Of(body));

  const empty = Buffer.alloc(0);
  await store.put('open/empty', empty, 0);
  const zero = await store.open('open/empty');
  t.equal(zero?.head.size, 0);
  t.equal((await readAll(zero!.body)).length, 0, 'a 0-byte body ends at once');

  t.equal(await store.open('open/no-such-key'), null, 'a missing key is null');
  const other = new OssStore(storeOptions({ bucket: 'bb-no-such-bucket' }));
  t.teardown(() => other.close());
  await rejectsStorage(t, other.open('k'), 'NoSuchBucket', false);
  await store.put('open/cold', Buffer.from('frozen'), 6, { storageClass: 'ARCHIVE' });
  await rejectsStorage(t, store.open('open/cold'), 'InvalidObjectState', false);
});

t.test('put with every Content-* header, user metadata and IA round-trips; crc64 from head = crc64Of(bytes)', async (t) => {
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
  const crc = await crc64Of(body);
  t.equal(res.etag, md5HEX(body), 'OSS ETag: upper-case MD5, unquoted');
  t.equal(res.crc64, crc, 'put reports the CRC-64 the server computed');
  const head = await store.head('meta/all-headers.txt');
  t.ok(head);
  if (!head) return;
  t.match(head, {
    key: 'meta/all-headers.txt',
    size: body.length,
    etag: md5HEX(body),
    crc64: crc,
    contentType: 'text/plain; charset=utf-8',
    contentEncoding: 'identity',
    contentDisposition: 'attachment; filename="a b.txt"',
    contentLanguage: 'de-DE',
    cacheControl: 'max-age=60, private',
    expires: 'Thu, 01 Dec 2050 16:00:00 GMT',
    storageClass: 'STANDARD_IA',
    rawStorageClass: 'IA',
    multipartEtag: false,
    needsRestore: false,
    restoreInProgress: false,
  });
  t.same(head.userMetadata, { 'x-origin': 'unit test', mixedcase: 'Value With Spaces' });
  t.type(head.lastModified, Date);
  t.equal(server.getObject(BUCKET, 'meta/all-headers.txt')?.headers['x-oss-storage-class'], 'IA', 'stored as IA');
});

t.test('non-ASCII metadata and a UTF-8 Content-Disposition round-trip (put and multipart)', async (t) => {
  const meta = { city: '北京 / Zürich' };
  const disposition = 'attachment; filename="日本語 ü.txt"';
  await store.put('meta/unicode', Buffer.from('x'), 1, { userMetadata: meta, contentDisposition: disposition });
  const head = await store.head('meta/unicode');
  t.same(head?.userMetadata, meta);
  t.equal(head?.contentDisposition, disposition);
  t.same(server.getObject(BUCKET, 'meta/unicode')?.meta, meta, 'the server stored UTF-8');
  const uploadId = await store.createMultipartUpload('meta/unicode-mp', { userMetadata: meta, contentDisposition: disposition });
  const p = await store.uploadPart('meta/unicode-mp', uploadId, 1, Buffer.from('y'));
  await store.completeMultipartUpload('meta/unicode-mp', uploadId, [{ partNumber: 1, etag: p.etag }]);
  const mp = await store.head('meta/unicode-mp');
  t.same(mp?.userMetadata, meta);
  t.equal(mp?.contentDisposition, disposition);
});

t.test('Expires that is not an HTTP date is carried verbatim', async (t) => {
  await store.put('meta/expires-zero', Buffer.from('x'), 1, { expires: '0' });
  t.equal((await store.head('meta/expires-zero'))?.expires, '0');
});

t.test('storage class mapping', async (t) => {
  t.equal(fromOssStorageClass(undefined), 'STANDARD');
  t.equal(fromOssStorageClass('IA'), 'STANDARD_IA');
  for (const c of ['Archive', 'ColdArchive', 'DeepColdArchive']) t.equal(fromOssStorageClass(c), 'ARCHIVE', c);
});

t.test('put from a stream; get whole and by range; crc64 of the bytes read matches head', async (t) => {
  const body = randomBytes(300 * KIB + 3);
  const res = await store.put('data/stream.bin', Readable.from([body.subarray(0, 5000), body.subarray(5000)]), body.length);
  t.equal(res.etag, md5HEX(body));
  const read = await readAll(await store.get('data/stream.bin'));
  t.ok(read.equals(body));
  t.equal((await store.head('data/stream.bin'))?.crc64, await crc64Of(read));
  const part = await readAll(await store.get('data/stream.bin', { range: { start: 5000, end: 5999 } }));
  t.ok(part.equals(body.subarray(5000, 6000)), 'inclusive range');
  await rejectsStorage(t, store.get('data/stream.bin', { range: { start: -1, end: 4 } }), 'InvalidRequest', false);
  // OSS ignores an unsatisfiable Range and answers 200 with everything: refused.
  await rejectsStorage(t, store.get('data/stream.bin', { range: { start: body.length + 10, end: body.length + 20 } }), 'InvalidRequest', false);
});

t.test('a 0-byte object, from a Buffer and from an empty stream', async (t) => {
  const empty = Buffer.alloc(0);
  const a = await store.put('empty/buffer', empty, 0, { contentMd5: md5b64(empty) });
  const b = await store.put('empty/stream', Readable.from([]), 0);
  for (const [key, res] of [['empty/buffer', a], ['empty/stream', b]] as const) {
    t.equal(res.etag, md5HEX(empty), `${key} ETag`);
    t.equal(res.crc64, '0', `${key} CRC-64 of nothing is 0`);
    t.match(await store.head(key), { size: 0, crc64: '0' });
    t.equal((await readAll(await store.get(key))).length, 0);
  }
  await rejectsStorage(t, store.put('empty/liar', Readable.from([Buffer.from('x')]), 0), 'InvalidRequest', false);
});

t.test('get with If-Match: current ETag reads, a stale one fails PreconditionFailed', async (t) => {
  const { etag } = await store.put('cond/key', Buffer.from('version 1'), 9);
  t.equal((await readAll(await store.get('cond/key', { ifMatch: etag }))).toString(), 'version 1');
  await store.put('cond/key', Buffer.from('version 2'), 9);
  const e = await rejectsStorage(t, store.get('cond/key', { ifMatch: etag }), 'PreconditionFailed');
  t.equal(e?.status, 412);
});

t.test('get of a missing key fails NoSuchKey', async (t) => {
  const e = await rejectsStorage(t, store.get('no/such/key'), 'NoSuchKey', false);
  t.equal(e?.providerCode, 'NoSuchKey');
});

t.test('Content-MD5 mismatch is rejected (OSS InvalidDigest → BadDigest) and the old object stays', async (t) => {
  await store.put('digest/key', Buffer.from('original'), 8);
  const body = Buffer.from('new bytes');
  const e = await rejectsStorage(t, store.put('digest/key', body, body.length, { contentMd5: md5b64(Buffer.from('other')) }), 'BadDigest');
  t.equal(e?.providerCode, 'InvalidDigest');
  t.equal((await readAll(await store.get('digest/key'))).toString(), 'original');
});

t.test('multipart: 3 parts with Content-MD5, per-part CRC-64, listParts, complete', async (t) => {
  const parts = [randomBytes(100 * KIB), randomBytes(100 * KIB + 1), randomBytes(777)];
  const whole = Buffer.concat(parts);
  const key = 'multi/three parts+ü.bin';
  const uploadId = await store.createMultipartUpload(key, {
    contentType: 'application/x-test',
    userMetadata: { source: 'multipart' },
    storageClass: 'STANDARD_IA',
  });
  const done: { partNumber: number; etag: string }[] = [];
  let combined: string | undefined;
  for (const [i, p] of parts.entries()) {
    const r = await store.uploadPart(key, uploadId, i + 1, p, { contentMd5: md5b64(p) });
    const crc = await crc64Of(p);
    t.equal(r.etag, md5HEX(p), `part ${i + 1} ETag`);
    t.equal(r.crc64, crc, `part ${i + 1} CRC-64 reported by the server`);
    combined = combined === undefined ? crc : crc64Combine(combined, crc, p.length);
    done.push({ partNumber: i + 1, etag: r.etag });
  }
  const partRequest = server.requests.filter((r) => r.method === 'PUT' && r.query['partNumber'] === '2').pop();
  t.equal(partRequest?.headers['content-md5'], md5b64(parts[1] ?? Buffer.alloc(0)), 'our Content-MD5 went on the wire');
  t.same(
    await store.listParts(key, uploadId),
    parts.map((p, i) => ({ partNumber: i + 1, etag: md5HEX(p), size: p.length })),
  );
  const res = await store.completeMultipartUpload(key, uploadId, done);
  const wholeCrc = await crc64Of(whole);
  t.match(res.etag, /^[0-9A-F]{32}-3$/, 'multipart ETag');
  t.equal(res.crc64, wholeCrc, 'complete reports the whole-object CRC-64');
  t.equal(combined, wholeCrc, 'combining the part CRCs gives the same value');
  const head = await store.head(key);
  t.match(head, { size: whole.length, crc64: wholeCrc, multipartEtag: true, contentType: 'application/x-test', storageClass: 'STANDARD_IA' });
  t.same(head?.userMetadata, { source: 'multipart' });
  t.ok((await readAll(await store.get(key))).equals(whole));
  t.equal(server.pendingUploads(BUCKET), 0);
});

t.test('multipart: a wrong part ETag is refused; a part with a wrong Content-MD5 is rejected', async (t) => {
  const key = 'multi/refused';
  const uploadId = await store.createMultipartUpload(key);
  const p = randomBytes(1000);
  await store.uploadPart(key, uploadId, 1, p);
  const e = await rejectsStorage(t, store.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: '0'.repeat(32) }]), 'InvalidRequest', false);
  t.equal(e?.providerCode, 'InvalidPart');
  await rejectsStorage(t, store.uploadPart(key, uploadId, 2, p, { contentMd5: md5b64(Buffer.from('x')) }), 'BadDigest');
  t.same((await store.listParts(key, uploadId)).map((x) => x.partNumber), [1], 'rejected part not stored');
  await store.abortMultipartUpload(key, uploadId);
});

t.test('multipart: abort discards the upload; later calls fail NoSuchUpload', async (t) => {
  const key = 'multi/aborted';
  const before = server.pendingUploads(BUCKET);
  const uploadId = await store.createMultipartUpload(key);
  const r = await store.uploadPart(key, uploadId, 1, randomBytes(10));
  t.equal(server.pendingUploads(BUCKET), before + 1);
  await store.abortMultipartUpload(key, uploadId);
  t.equal(server.pendingUploads(BUCKET), before);
  await rejectsStorage(t, store.listParts(key, uploadId), 'NoSuchUpload', false);
  await rejectsStorage(t, store.uploadPart(key, uploadId, 2, randomBytes(10)), 'NoSuchUpload', false);
  await rejectsStorage(t, store.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: r.etag }]), 'NoSuchUpload', false);
  t.equal(await store.head(key), null);
});

t.test('listParts follows the part-number marker past 1000 parts', async (t) => {
  const key = 'multi/many-parts';
  const uploadId = await store.createMultipartUpload(key);
  const count = 1003;
  let next = 1;
  const worker = async (): Promise<void> => {
    while (next <= count) {
      const n = next++;
      await store.uploadPart(key, uploadId, n, Buffer.from('z'));
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const parts = await store.listParts(key, uploadId);
  t.same(
    parts.map((p) => p.partNumber),
    Array.from({ length: count }, (_, i) => i + 1),
  );
  await store.abortMultipartUpload(key, uploadId);
});

t.test('delete removes a key; deleting a missing key is not an error', async (t) => {
  await store.put('del/key', Buffer.from('x'), 1);
  await store.delete('del/key');
  t.equal(await store.head('del/key'), null);
  await store.delete('del/key');
});

t.test('keys OSS cannot hold are refused instead of being rewritten by ali-oss', async (t) => {
  await rejectsStorage(t, store.put('/leading-slash', Buffer.from('x'), 1), 'InvalidRequest', false);
  await rejectsStorage(t, store.head('/leading-slash'), 'InvalidRequest', false);
  t.equal(server.getObject(BUCKET, 'leading-slash'), undefined, 'nothing written under the stripped name');
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
    'list/é',
    'list/日本語/ファイル',
    'list/😀 emoji',
    'list/\uFF5E fullwidth tilde',
    'list/ctrl\u0001char',
  ];
  for (const k of keys) await store.put(k, Buffer.from(k), Buffer.byteLength(k));
  const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await store.listPage({ prefix: 'list/', maxKeys: 4, ...(token !== undefined ? { token } : {}) });
    for (const o of page.objects) {
      seen.push(o.key);
      t.equal(o.etag, md5HEX(Buffer.from(o.key)));
      t.equal(o.size, Buffer.byteLength(o.key));
    }
    token = page.nextToken;
    pages++;
  } while (token !== undefined && pages < 20);
  t.same(seen, expected, 'every key once, byte order, decoded');
  const after = await store.listPage({ prefix: 'list/', startAfter: 'list/a/b' });
  t.same(
    after.objects.map((o) => o.key),
    expected.filter((k) => Buffer.compare(Buffer.from(k), Buffer.from('list/a/b')) > 0),
  );
  t.equal(after.nextToken, undefined);
});

t.test('archived objects: unreadable (InvalidObjectState), restore, restore again, then readable', async (t) => {
  const body = Buffer.from('frozen');
  await store.put('cold/object', body, body.length, { storageClass: 'ARCHIVE' });
  t.match(await store.head('cold/object'), { storageClass: 'ARCHIVE', rawStorageClass: 'Archive', needsRestore: true, restoreInProgress: false });
  const e = await rejectsStorage(t, store.get('cold/object'), 'InvalidObjectState', false);
  t.equal(e?.status, 403, 'a 403 that is not AccessDenied: the error body was read');
  await store.restore('cold/object', 1);
  t.match(await store.head('cold/object'), { needsRestore: true, restoreInProgress: true });
  await store.restore('cold/object', 1); // RestoreAlreadyInProgress is success
  await sleep(RESTORE_DELAY_MS + 200);
  t.match(await store.head('cold/object'), { needsRestore: false, restoreInProgress: false, storageClass: 'ARCHIVE' });
  t.equal((await readAll(await store.get('cold/object'))).toString(), 'frozen');
  await store.restore('cold/object', 1); // already restored: fine too
});

t.test('wrong credentials: InvalidAccessKeyId / SignatureDoesNotMatch, not retryable, also on HEAD', async (t) => {
  const badKey = new OssStore(storeOptions({ credentials: { accessKeyId: 'WRONG', accessKeySecret: server.accessKeySecret } }));
  const badSecret = new OssStore(storeOptions({ credentials: { accessKeyId: server.accessKeyId, accessKeySecret: 'WRONG' } }));
  t.teardown(() => Promise.all([badKey.close(), badSecret.close()]));
  await rejectsStorage(t, badKey.put('auth/x', Buffer.from('x'), 1), 'InvalidAccessKeyId', false);
  await rejectsStorage(t, badSecret.put('auth/x', Buffer.from('x'), 1), 'SignatureDoesNotMatch', false);
  await rejectsStorage(t, badSecret.head('meta/all-headers.txt'), 'SignatureDoesNotMatch', false);
  await rejectsStorage(t, badSecret.get('meta/all-headers.txt'), 'SignatureDoesNotMatch', false);
  await rejectsStorage(t, badSecret.listPage({}), 'SignatureDoesNotMatch', false);
});

t.test('an unreachable endpoint is a retryable NetworkError; a stalled server a Timeout', async (t) => {
  const s = createServer(() => {
    /* never answers */
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const stalledPort = (s.address() as AddressInfo).port;
  t.teardown(() => {
    s.closeAllConnections();
    s.close();
  });
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));

  const dead = new OssStore(storeOptions({ endpoint: `http://127.0.0.1:${closedPort}` }));
  const slow = new OssStore(storeOptions({ endpoint: `http://127.0.0.1:${stalledPort}`, timeoutMs: 300 }));
  t.teardown(() => Promise.all([dead.close(), slow.close()]));
  const e = await rejectsStorage(t, dead.head('k'), 'NetworkError', true);
  t.equal(e?.status, undefined);
  await rejectsStorage(t, dead.get('k'), 'NetworkError', true);
  await rejectsStorage(t, dead.put('k', Buffer.from('x'), 1), 'NetworkError', true);
  await rejectsStorage(t, slow.head('k'), 'Timeout', true);
  await rejectsStorage(t, slow.get('k'), 'Timeout', true);
});

t.test('a GET body that breaks or stalls mid-stream errors with a StorageError', async (t) => {
  const stub = createServer((req, res) => {
    res.writeHead(200, { 'content-length': '1000', etag: '"ABC"' });
    res.write(Buffer.alloc(10));
    if (req.url?.startsWith('/cut')) setTimeout(() => res.socket?.destroy(), 20);
    // '/stall': headers and 10 bytes, then nothing.
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    stub.closeAllConnections();
    stub.close();
  });
  const s = new OssStore(storeOptions({ endpoint: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`, timeoutMs: 300 }));
  t.teardown(() => s.close());
  await rejectsStorage(t, readAll(await s.get('cut')), 'NetworkError', true);
  await rejectsStorage(t, readAll(await s.get('stall')), 'Timeout', true);
});
