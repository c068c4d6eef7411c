/**
 * Server-side encryption in the storage adapters: what S3Store and OssStore
 * SEND for AES256 / KMS on single and multipart uploads (asserted on the
 * headers the servers receive: a recording proxy in front of s3rver, which
 * ignores SSE, and the OSS test server's request log), modes a provider does
 * not take, and reading SSE-C objects (S3's refusals played by the proxy).
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createStore } from '../src/storage/create-store.js';
import { StorageError } from '../src/storage/errors.js';
import { OssStore } from '../src/storage/oss-store.js';
import { S3Store, type S3StoreOptions } from '../src/storage/s3-store.js';
import { startOssServer } from './support/oss-server.js';
import { startRecordingProxy, type RecordedRequest } from './support/recording-proxy.js';
import { startS3Server } from './support/s3-server.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const BUCKET = 'bb-sse';

const s3 = await startS3Server({ buckets: [BUCKET] });
t.teardown(() => s3.close());
const oss = await startOssServer({ buckets: [BUCKET] });
t.teardown(() => oss.close());

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const md5b64 = (b: Buffer): string => createHash('md5').update(b).digest('base64');

/** The subtest type (tap's overloads make it awkward to name directly). */
type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

async function rejectsStorage(t: TestT, p: Promise<unknown>, code: StorageError['code'], message?: RegExp): Promise<StorageError | undefined> {
  try {
    await p;
  } catch (err) {
    t.type(err, StorageError, 'a StorageError');
    const e = err as StorageError;
    t.equal(e.code, code, `code ${code} (${e.message})`);
    if (message) t.match(e.message, message);
    return e;
  }
  t.fail(`expected StorageError ${code}, resolved instead`);
  return undefined;
}

// --- S3 ------------------------------------------------------------------------------------

const s3Proxy = await startRecordingProxy({ target: s3.endpoint });
t.teardown(() => s3Proxy.close());

function s3Store(overrides: Partial<S3StoreOptions> = {}, endpoint = s3Proxy.endpoint): S3Store {
  const store = new S3Store({
    bucket: BUCKET,
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    ...overrides,
  });
  t.teardown(() => store.close());
  return store;
}

const sse = (r: RecordedRequest): Record<string, unknown> => ({
  mode: r.headers['x-amz-server-side-encryption'],
  keyId: r.headers['x-amz-server-side-encryption-aws-kms-key-id'],
});

t.test('S3: AES256 on PutObject, CreateMultipartUpload, and not on the parts', async (t) => {
  const store = s3Store({ encryption: { mode: 'AES256' } });
  const body = randomBytes(10 * KIB);
  await store.put('aes/one', body, body.length, { contentMd5: md5b64(body) });
  const [put] = s3Proxy.find('PUT', /\/aes\/one$/);
  t.same(sse(put!), { mode: 'AES256', keyId: undefined }, 'PutObject carries x-amz-server-side-encryption: AES256');

  const id = await store.createMultipartUpload('aes/multi');
  const part = randomBytes(5 * MIB);
  const p1 = await store.uploadPart('aes/multi', id, 1, part);
  const p2 = await store.uploadPart('aes/multi', id, 2, body);
  await store.completeMultipartUpload('aes/multi', id, [
    { partNumber: 1, etag: p1.etag },
    { partNumber: 2, etag: p2.etag },
  ]);
  const [create] = s3Proxy.find('POST', /\/aes\/multi$/).filter((r) => r.url.includes('uploads'));
  t.same(sse(create!), { mode: 'AES256', keyId: undefined }, 'CreateMultipartUpload carries it');
  const parts = s3Proxy.find('PUT', /\/aes\/multi$/);
  t.equal(parts.length, 2);
  t.ok(parts.every((r) => r.headers['x-amz-server-side-encryption'] === undefined), 'UploadPart does not (S3 refuses it there)');
  t.ok((await readAll(await store.get('aes/multi'))).equals(Buffer.concat([part, body])), 'the object reads back');
});

t.test('S3: aws:kms with a key id; a per-write choice overrides the store default; null writes none', async (t) => {
  const kmsKey = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const store = s3Store({ encryption: { mode: 'aws:kms', keyId: kmsKey } });
  await store.put('kms/one', Buffer.from('x'), 1);
  t.same(sse(s3Proxy.find('PUT', /\/kms\/one$/)[0]!), { mode: 'aws:kms', keyId: kmsKey });
  await store.createMultipartUpload('kms/multi');
  t.same(sse(s3Proxy.find('POST', /\/kms\/multi$/)[0]!), { mode: 'aws:kms', keyId: kmsKey });

  await store.put('kms/override', Buffer.from('x'), 1, { encryption: { mode: 'AES256' } });
  t.same(sse(s3Proxy.find('PUT', /\/kms\/override$/)[0]!), { mode: 'AES256', keyId: undefined });
  await store.put('kms/none', Buffer.from('x'), 1, { encryption: null });
  t.same(sse(s3Proxy.find('PUT', /\/kms\/none$/)[0]!), { mode: undefined, keyId: undefined });

  const plain = s3Store();
  await plain.put('kms/default', Buffer.from('x'), 1);
  t.same(sse(s3Proxy.find('PUT', /\/kms\/default$/)[0]!), { mode: undefined, keyId: undefined }, 'no default: no header');
});

t.test('S3: modes S3 does not take are refused before any request (never written unencrypted)', async (t) => {
  t.throws(() => s3Store({ encryption: { mode: 'KMS' } }), { name: 'StorageError', code: 'InvalidRequest', message: /S3 does not support server-side encryption mode KMS/ });
  t.throws(() => s3Store({ encryption: { mode: 'AES256', keyId: 'k' } }), { message: /needs server-side encryption mode aws:kms/ });
  const store = s3Store();
  const before = s3Proxy.requests.length;
  await rejectsStorage(t, store.put('bad/one', Buffer.from('x'), 1, { encryption: { mode: 'KMS' } }), 'InvalidRequest', /mode KMS/);
  await rejectsStorage(t, store.createMultipartUpload('bad/multi', { encryption: { mode: 'KMS', keyId: 'k' } }), 'InvalidRequest');
  t.equal(s3Proxy.requests.length, before, 'nothing reached the server');
});

t.test('S3: HEAD reports the encryption the store answers with', async (t) => {
  const proxy = await startRecordingProxy({
    target: s3.endpoint,
    responseHeaders: (r) =>
      r.method === 'HEAD' ? { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'key-1' } : undefined,
  });
  t.teardown(() => proxy.close());
  const store = s3Store({}, proxy.endpoint);
  await store.put('head/kms', Buffer.from('abc'), 3);
  const head = await store.head('head/kms');
  t.equal(head?.serverSideEncryption, 'aws:kms');
  t.equal(head?.sseKmsKeyId, 'key-1');
  t.equal(head?.multipartEtag, true, 'an SSE-KMS ETag is not an MD5 of the bytes');
});

// SSE-C as S3 does it: without the key a HEAD is a bare 400 and a GET a 400
// InvalidRequest; a wrong key is 403; with the right key S3 echoes the algorithm.
const customerKey = randomBytes(32);
const keyMd5 = createHash('md5').update(customerKey).digest('base64');
const SSE_C_KEYS = /\/sse-c\//;

function sseCAnswer(r: RecordedRequest) {
  const path = r.url.split('?')[0] ?? '';
  if (!SSE_C_KEYS.test(path) || (r.method !== 'GET' && r.method !== 'HEAD')) return undefined;
  const given = r.headers['x-amz-server-side-encryption-customer-key-md5'];
  if (given === undefined) {
    return {
      status: 400,
      headers: { 'content-type': 'application/xml' },
      body:
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidRequest</Code><Message>The object was stored using a form of Server Side Encryption. ' +
        'The correct parameters must be provided to retrieve the object.</Message></Error>',
    };
  }
  if (given !== keyMd5) {
    return { status: 403, headers: { 'content-type': 'application/xml' }, body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' };
  }
  return undefined;
}

const sseCProxy = await startRecordingProxy({
  target: s3.endpoint,
  respond: sseCAnswer,
  responseHeaders: (r, status) =>
    SSE_C_KEYS.test(r.url) && status < 300 && r.headers['x-amz-server-side-encryption-customer-key-md5'] === keyMd5
      ? { 'x-amz-server-side-encryption-customer-algorithm': 'AES256', 'x-amz-server-side-encryption-customer-key-md5': keyMd5 }
      : undefined,
});
t.teardown(() => sseCProxy.close());
const secret = randomBytes(300 * KIB);
await s3Store().put('sse-c/object.bin', secret, secret.length);
await s3Store().put('plain/object.bin', Buffer.from('plain'), 5);

t.test('S3 SSE-C without a key: HEAD and GET say SseCustomerKeyRequired (not retryable)', async (t) => {
  const store = s3Store({}, sseCProxy.endpoint);
  const e = await rejectsStorage(t, store.head('sse-c/object.bin'), 'SseCustomerKeyRequired', /encrypted with a customer-provided key \(SSE-C\) and no key was given/);
  t.equal(e?.retryable, false);
  await rejectsStorage(t, store.get('sse-c/object.bin'), 'SseCustomerKeyRequired');
  await rejectsStorage(t, store.open('sse-c/object.bin'), 'SseCustomerKeyRequired');
  t.ok(await store.head('plain/object.bin'), 'other objects read as usual');
});

t.test('S3 SSE-C with the store key: open (one GET for head and bytes) reads it with the key and reports SSE-C', async (t) => {
  const store = s3Store({ sseCustomerKey: customerKey }, sseCProxy.endpoint);
  const opened = await store.open('sse-c/object.bin');
  t.ok(opened);
  t.ok((await readAll(opened!.body)).equals(secret), 'the plaintext bytes');
  t.equal(opened!.head.sseCustomerAlgorithm, 'AES256', 'the GET answer says SSE-C');
  t.equal(opened!.head.multipartEtag, true, 'so its ETag is not taken for an MD5 of the bytes');
  t.equal(opened!.head.size, secret.length);
});

t.test('S3 SSE-C with the store key: plain read first, then again with the key; the key is sent only for SSE-C objects', async (t) => {
  const store = s3Store({ sseCustomerKey: customerKey }, sseCProxy.endpoint);
  const from = sseCProxy.requests.length;
  const head = await store.head('sse-c/object.bin');
  t.equal(head?.size, secret.length);
  t.equal(head?.sseCustomerAlgorithm, 'AES256');
  t.equal(head?.multipartEtag, true, 'an SSE-C ETag is not an MD5 of the bytes');
  const heads = sseCProxy.requests.slice(from);
  t.equal(heads.length, 2);
  t.equal(heads[0]!.headers['x-amz-server-side-encryption-customer-key'], undefined, 'first HEAD without the key');
  t.same(
    {
      alg: heads[1]!.headers['x-amz-server-side-encryption-customer-algorithm'],
      key: heads[1]!.headers['x-amz-server-side-encryption-customer-key'],
      md5: heads[1]!.headers['x-amz-server-side-encryption-customer-key-md5'],
    },
    { alg: 'AES256', key: customerKey.toString('base64'), md5: keyMd5 },
    'second HEAD with algorithm, key and key MD5',
  );
  const ranged = sseCProxy.requests.length;
  t.ok((await readAll(await store.get('sse-c/object.bin', { range: { start: 100, end: 199 } }))).equals(secret.subarray(100, 200)), 'ranged GET with the key');
  t.equal(sseCProxy.requests.length - ranged, 1, 'after its HEAD the object is known to be SSE-C: the GET sends the key at once');
  const fresh = s3Store({ sseCustomerKey: customerKey }, sseCProxy.endpoint);
  const cold = sseCProxy.requests.length;
  t.ok((await readAll(await fresh.get('sse-c/object.bin'))).equals(secret), 'a GET without a HEAD first: refused, then sent with the key');
  t.equal(sseCProxy.requests.length - cold, 2);
  const explicit = sseCProxy.requests.length;
  t.ok((await readAll(await store.get('sse-c/object.bin', { sseCustomerKey: customerKey, ifMatch: head!.etag }))).equals(secret), 'GET with an explicit key');
  t.equal(sseCProxy.requests.length - explicit, 1, 'an explicit key is sent at once');
  const plainFrom = sseCProxy.requests.length;
  t.ok(await store.head('plain/object.bin'));
  t.equal(sseCProxy.requests[plainFrom]!.headers['x-amz-server-side-encryption-customer-key'], undefined, 'no key for an ordinary object');
  t.equal(sseCProxy.requests.length - plainFrom, 1);
});

t.test('S3 SSE-C with the wrong key: refused as a key mismatch', async (t) => {
  const store = s3Store({ sseCustomerKey: randomBytes(32) }, sseCProxy.endpoint);
  await rejectsStorage(t, store.head('sse-c/object.bin'), 'SseCustomerKeyRequired', /refused the customer-provided key/);
  await rejectsStorage(t, store.get('sse-c/object.bin'), 'SseCustomerKeyRequired', /refused the customer-provided key/);
  await rejectsStorage(t, store.head('sse-c/object.bin', { sseCustomerKey: randomBytes(32) }), 'SseCustomerKeyRequired');
  t.throws(() => s3Store({ sseCustomerKey: randomBytes(16) }), { message: /SSE-C key must be 32 bytes/ });
});

// --- OSS -----------------------------------------------------------------------------------

function ossStore(overrides: Partial<ConstructorParameters<typeof OssStore>[0]> = {}): OssStore {
  const store = new OssStore({
    bucket: BUCKET,
    region: 'oss-cn-hangzhou',
    endpoint: oss.endpoint,
    credentials: { accessKeyId: oss.accessKeyId, accessKeySecret: oss.accessKeySecret },
    ...overrides,
  });
  t.teardown(() => store.close());
  return store;
}

const ossSse = (key: string, method: string, query?: string) =>
  oss.requests
    .filter((r) => r.key === key && r.method === method && (query === undefined || query in r.query))
    .map((r) => ({ mode: r.headers['x-oss-server-side-encryption'], keyId: r.headers['x-oss-server-side-encryption-key-id'] }));

t.test('OSS: AES256 on PutObject and InitiateMultipartUpload; the stored object reports it', async (t) => {
  const store = ossStore({ encryption: { mode: 'AES256' } });
  const body = randomBytes(20 * KIB);
  await store.put('aes/one', body, body.length, { contentMd5: md5b64(body) });
  t.same(ossSse('aes/one', 'PUT'), [{ mode: 'AES256', keyId: undefined }]);
  t.equal(oss.getObject(BUCKET, 'aes/one')?.headers['x-oss-server-side-encryption'], 'AES256');
  t.equal((await store.head('aes/one'))?.serverSideEncryption, 'AES256');

  const id = await store.createMultipartUpload('aes/multi');
  const part = randomBytes(200 * KIB);
  const p1 = await store.uploadPart('aes/multi', id, 1, part);
  const p2 = await store.uploadPart('aes/multi', id, 2, body);
  await store.completeMultipartUpload('aes/multi', id, [
    { partNumber: 1, etag: p1.etag },
    { partNumber: 2, etag: p2.etag },
  ]);
  t.same(ossSse('aes/multi', 'POST', 'uploads'), [{ mode: 'AES256', keyId: undefined }], 'initiate carries it');
  t.ok(ossSse('aes/multi', 'PUT').every((h) => h.mode === undefined), 'parts do not');
  t.equal(oss.getObject(BUCKET, 'aes/multi')?.headers['x-oss-server-side-encryption'], 'AES256', 'the completed object is encrypted');
});

t.test('OSS: KMS with a key id, on single and multipart uploads', async (t) => {
  const store = ossStore({ encryption: { mode: 'KMS', keyId: 'kms-key-42' } });
  await store.put('kms/one', Buffer.from('hello'), 5);
  t.same(ossSse('kms/one', 'PUT'), [{ mode: 'KMS', keyId: 'kms-key-42' }]);
  const head = await store.head('kms/one');
  t.same({ mode: head?.serverSideEncryption, keyId: head?.sseKmsKeyId }, { mode: 'KMS', keyId: 'kms-key-42' });
  await store.createMultipartUpload('kms/multi');
  t.same(ossSse('kms/multi', 'POST', 'uploads'), [{ mode: 'KMS', keyId: 'kms-key-42' }]);
  await store.put('kms/none', Buffer.from('x'), 1, { encryption: null });
  t.same(ossSse('kms/none', 'PUT'), [{ mode: undefined, keyId: undefined }], 'null overrides the default');
});

t.test('OSS: S3 modes, key ids without KMS and SSE-C keys are refused before any request', async (t) => {
  t.throws(() => ossStore({ encryption: { mode: 'aws:kms' } }), { code: 'InvalidRequest', message: /OSS does not support server-side encryption mode aws:kms/ });
  t.throws(() => ossStore({ encryption: { mode: 'AES256', keyId: 'k' } }), { message: /needs server-side encryption mode KMS/ });
  const store = ossStore();
  const before = oss.requests.length;
  await rejectsStorage(t, store.put('bad/one', Buffer.from('x'), 1, { encryption: { mode: 'aws:kms' } }), 'InvalidRequest');
  await rejectsStorage(t, store.createMultipartUpload('bad/multi', { encryption: { mode: 'AES256', keyId: 'k' } }), 'InvalidRequest');
  await rejectsStorage(t, store.get('any', { sseCustomerKey: randomBytes(32) }), 'InvalidRequest', /no customer-provided keys/);
  await rejectsStorage(t, store.head('any', { sseCustomerKey: randomBytes(32) }), 'InvalidRequest');
  t.equal(oss.requests.length, before, 'nothing reached the server');
});

// --- createStore -----------------------------------------------------------------------------

t.test('createStore reads protection settings from files and env vars, naming what is wrong', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bb-sse-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { AK: s3.accessKeyId, SK: s3.secretAccessKey, SSEC: customerKey.toString('base64'), BAD: 'short' };
  const base = {
    provider: 's3' as const,
    bucket: BUCKET,
    endpoint: sseCProxy.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyIdEnv: 'AK', secretAccessKeyEnv: 'SK' },
  };
  const store = createStore({ ...base, sseCustomerKeyEnv: 'SSEC', encryption: { mode: 'AES256' } }, env);
  t.teardown(() => store.close());
  t.equal((await store.head('sse-c/object.bin'))?.sseCustomerAlgorithm, 'AES256', 'the SSE-C key from the env var is used');
  t.throws(() => createStore({ ...base, sseCustomerKeyEnv: 'MISSING' }, env), /environment variable MISSING \(SSE-C key for s3 bucket bb-sse\) is not set/);
  t.throws(() => createStore({ ...base, sseCustomerKeyEnv: 'BAD' }, env), /environment variable BAD .* must be a 256-bit key/);
  t.throws(() => createStore({ ...base, caBundleFile: join(dir, 'nope.pem') }, env), /CA bundle for s3 bucket bb-sse: cannot read CA bundle .*nope\.pem \(ENOENT\)/);
  writeFileSync(join(dir, 'empty.pem'), 'hello');
  t.throws(() => createStore({ ...base, caBundleFile: join(dir, 'empty.pem') }, env), /contains no PEM certificate/);
  t.throws(
    () => createStore({ provider: 'oss', bucket: BUCKET, credentials: { accessKeyIdEnv: 'AK', secretAccessKeyEnv: 'SK' }, sseCustomerKeyEnv: 'SSEC' }, env),
    /OSS has no customer-provided keys/,
  );
  t.throws(() => createStore({ ...base, encryption: { mode: 'KMS' } }, env), /S3 does not support server-side encryption mode KMS/);
});
