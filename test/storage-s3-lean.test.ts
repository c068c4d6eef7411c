/**
 * The lean request path of S3Store (src/storage/s3-requests.ts): HEAD, GET, PUT
 * and UploadPart signed with @smithy/signature-v4 and sent with node:http(s).
 * s3rver does not verify signatures, so every request here goes through a
 * recording proxy and is checked by an independent SigV4 verifier; the rest of
 * the adapter's behaviour is covered by storage-s3.test.ts and sse.test.ts,
 * which run on this path by default.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { StorageError } from '../src/storage/errors.js';
import { fillsBuffers, type BufferFillingBody } from '../src/storage/object-store.js';
import { S3Requests } from '../src/storage/s3-requests.js';
import { S3Store, type S3StoreOptions } from '../src/storage/s3-store.js';
import { startRecordingProxy, type RecordedRequest } from './support/recording-proxy.js';
import { startS3Server } from './support/s3-server.js';
import { sigV4Valid } from './support/sigv4-check.js';
import { makeTestPki } from './support/test-certs.js';

const BUCKET = 'bb-lean';
const s3 = await startS3Server({ buckets: [BUCKET] });
t.teardown(() => s3.close());
const proxy = await startRecordingProxy({ target: s3.endpoint });
t.teardown(() => proxy.close());

function store(overrides: Partial<S3StoreOptions> = {}): S3Store {
  const s = new S3Store({
    bucket: BUCKET,
    region: 'us-east-1',
    endpoint: proxy.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    ...overrides,
  });
  t.teardown(() => s.close());
  return s;
}

const md5 = (b: Buffer, enc: 'hex' | 'base64'): string => createHash('md5').update(b).digest(enc);
const sha256hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
/** The SDK marks each of its requests with an invocation id; the lean path does not. */
const viaSdk = (r: RecordedRequest): boolean => r.headers['amz-sdk-invocation-id'] !== undefined;

t.test('the test verifier accepts AWS’s published SigV4 example and rejects a changed one', async (t) => {
  // "Example: GET Object", Amazon S3 API reference, Signature Calculations for the Authorization Header.
  // The access key id is not part of the string to sign, so the documentation's example id is replaced
  // by a placeholder (no credential-shaped string in the repository); the published signature still holds.
  // The secret is the documentation's non-working example secret, needed to reproduce that signature.
  const example = {
    method: 'GET',
    url: '/test.txt',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      range: 'bytes=0-9',
      'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'x-amz-date': '20130524T000000Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=EXAMPLE-KEY-ID/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    },
  };
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  t.same(sigV4Valid(example, secret), { ok: true });
  t.equal(sigV4Valid({ ...example, headers: { ...example.headers, range: 'bytes=0-10' } }, secret).ok, false);
});

t.test('HEAD, GET, PUT and UploadPart go around the SDK, validly signed, for awkward keys and every header', async (t) => {
  const s = store();
  const from = proxy.requests.length;
  const key = "lean/a b+c/ü~!'()*?#=&%20;$@.txt";
  const body = randomBytes(70_000);
  const put = await s.put(key, body, body.length, {
    contentMd5: md5(body, 'base64'),
    contentType: 'text/plain; charset=utf-8',
    contentEncoding: 'identity',
    contentDisposition: 'attachment; filename="x.txt"',
    contentLanguage: 'de',
    cacheControl: 'max-age=60',
    expires: '0',
    userMetadata: { 'Mixed-Case': 'v  with   spaces', unicode: 'grüße' },
    storageClass: 'STANDARD_IA',
  });
  t.equal(put.etag, md5(body, 'hex'));
  const head = await s.head(key);
  t.match(head, {
    size: body.length,
    etag: md5(body, 'hex'),
    contentType: 'text/plain; charset=utf-8',
    contentDisposition: 'attachment; filename="x.txt"',
    cacheControl: 'max-age=60',
    expires: '0',
    storageClass: 'STANDARD_IA',
    userMetadata: { 'mixed-case': 'v  with   spaces', unicode: 'grüße' },
  });
  t.same(await readAll(await s.get(key, { range: { start: 10, end: 19 }, ifMatch: md5(body, 'hex') })), body.subarray(10, 20));
  t.same(await readAll(await s.get(key)), body);
  t.equal(await s.head('lean/missing'), null);

  const uploadId = await s.createMultipartUpload('lean/multi part');
  const p1 = randomBytes(1000);
  const p2 = randomBytes(10);
  const r1 = await s.uploadPart('lean/multi part', uploadId, 1, p1, { contentMd5: md5(p1, 'base64') });
  const r2 = await s.uploadPart('lean/multi part', uploadId, 2, p2);
  await s.completeMultipartUpload('lean/multi part', uploadId, [
    { partNumber: 1, etag: r1.etag },
    { partNumber: 2, etag: r2.etag },
  ]);
  t.same(await readAll(await s.get('lean/multi part')), Buffer.concat([p1, p2]));

  const sent = proxy.requests.slice(from);
  for (const r of sent) {
    const check = sigV4Valid(r, s3.secretAccessKey);
    t.ok(check.ok, `${r.method} ${r.url} is validly signed${check.reason ? `: ${check.reason}` : ''}`);
  }
  const hot = sent.filter((r) => r.method === 'HEAD' || r.method === 'GET' || (r.method === 'PUT' && !r.url.includes('uploads')));
  t.ok(hot.length >= 8, 'the hot requests were recorded');
  t.same(hot.filter(viaSdk).map((r) => `${r.method} ${r.url}`), [], 'none of them went through the SDK');
  t.ok(sent.some((r) => r.method === 'POST' && viaSdk(r)), 'CreateMultipartUpload / Complete still use the SDK');
  // Over plain http the body's SHA-256 is signed, Content-MD5 or not.
  const puts = sent.filter((r) => r.method === 'PUT');
  t.same(
    puts.map((r) => r.headers['x-amz-content-sha256']),
    [sha256hex(body), sha256hex(p1), sha256hex(p2)],
  );
  t.equal(puts[0]?.headers['expires'], '0', 'Expires is sent verbatim');
});

t.test('UNSIGNED-PAYLOAD only over https, and only with Content-MD5', async (t) => {
  const pki = makeTestPki();
  const tlsProxy = await startRecordingProxy({ target: s3.endpoint, tls: { cert: pki.certPem, key: pki.keyPem } });
  t.teardown(() => tlsProxy.close());
  const s = store({ endpoint: tlsProxy.endpoint, ca: pki.caPem });
  const body = randomBytes(5000);
  await s.put('lean/tls-md5', body, body.length, { contentMd5: md5(body, 'base64') });
  await s.put('lean/tls-plain', body, body.length);
  const uploadId = await s.createMultipartUpload('lean/tls-multi');
  await s.uploadPart('lean/tls-multi', uploadId, 1, body, { contentMd5: md5(body, 'base64') });
  t.same(await readAll(await s.get('lean/tls-md5')), body);
  const puts = tlsProxy.requests.filter((r) => r.method === 'PUT');
  t.same(
    puts.map((r) => r.headers['x-amz-content-sha256']),
    ['UNSIGNED-PAYLOAD', sha256hex(body), 'UNSIGNED-PAYLOAD'],
  );
  for (const r of tlsProxy.requests) t.ok(sigV4Valid(r, s3.secretAccessKey).ok, `${r.method} ${r.url} is validly signed`);
});

t.test('the lean path and the SDK path write and read the same objects', async (t) => {
  const lean = store();
  const sdk = store({ leanRequests: false });
  const body = Buffer.from('same bytes, either way\n');
  const options = {
    contentMd5: md5(body, 'base64'),
    contentType: 'application/x-thing',
    cacheControl: 'no-cache',
    contentLanguage: 'fr',
    expires: 'Thu, 01 Dec 2044 16:00:00 GMT',
    userMetadata: { a: 'b', 'non-ascii': 'ünïcödé' },
  };
  await lean.put('lean/parity-1', body, body.length, options);
  await sdk.put('lean/parity-2', body, body.length, options);
  for (const k of ['lean/parity-1', 'lean/parity-2']) {
    const a = await lean.head(k);
    const b = await sdk.head(k);
    t.same({ ...a, lastModified: undefined }, { ...b, lastModified: undefined }, `${k}: same head on both paths`);
    t.same(await readAll(await lean.get(k)), body);
  }
  t.same({ ...(await lean.head('lean/parity-1')), key: '', lastModified: undefined }, { ...(await lean.head('lean/parity-2')), key: '', lastModified: undefined });
});

t.test('GET bodies are read straight into the reader’s buffers (direct-http.ts); directGets: false reads them through node:http', async (t) => {
  const direct = store();
  const nodeHttp = store({ directGets: false });
  const body = randomBytes(700_000);
  await direct.put('lean/direct.bin', body, body.length, { contentMd5: md5(body, 'base64') });
  const before = proxy.requests.length;
  const fast = await direct.get('lean/direct.bin');
  t.ok(fillsBuffers(fast), 'the default GET answers with a BufferFillingBody');
  const buf = Buffer.alloc(body.length);
  const seen: Buffer[] = [];
  t.equal(await (fast as Readable & BufferFillingBody).readInto(buf, (p) => seen.push(Buffer.from(p))), body.length);
  t.ok(buf.equals(body) && Buffer.concat(seen).equals(body), 'readInto: the bytes, each once to the sink');
  const slow = await nodeHttp.get('lean/direct.bin');
  t.notOk(fillsBuffers(slow), 'directGets: false answers with a plain stream');
  t.ok((await readAll(slow)).equals(body));
  t.ok((await readAll(await direct.get('lean/direct.bin', { range: { start: 10, end: 99 } }))).equals(body.subarray(10, 100)), 'a ranged GET, as a stream');
  const opened = await direct.open('lean/direct.bin');
  t.equal(opened?.head.size, body.length, 'open(): the head from the GET answer');
  t.ok((await readAll(opened!.body)).equals(body));
  const gets = proxy.requests.slice(before).filter((r) => r.method === 'GET');
  t.equal(gets.length, 4);
  t.ok(gets.every((r) => !viaSdk(r) && sigV4Valid(r, s3.secretAccessKey).ok), 'every GET validly signed');
  await t.rejects(direct.get('lean/absent.bin'), { code: 'NoSuchKey', status: 404 }, 'an error answer is parsed from its body');
  await t.rejects(direct.get('lean/direct.bin', { ifMatch: '0123456789abcdef0123456789abcdef' }), { code: 'PreconditionFailed', status: 412 });
});

async function stubServer(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; endpoint: string }> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    s.closeAllConnections();
    s.close();
  });
  return { server: s, endpoint: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}

t.test('one retry for a dropped socket or a 5xx, none for a refusal', async (t) => {
  const seen = new Map<string, number>();
  const stub = await stubServer((req, res) => {
    const path = req.url ?? '';
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    req.resume();
    if ((path.endsWith('/flaky') || path.endsWith('/flaky-get')) && n === 1) {
      req.socket.destroy(); // no answer at all: a keep-alive socket the server had closed
      return;
    }
    if (path.endsWith('/down')) {
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      return;
    }
    if (path.endsWith('/forbidden')) {
      res.writeHead(403);
      res.end();
      return;
    }
    res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef"', 'content-length': '0', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' });
    res.end();
  });
  const s = store({ endpoint: stub.endpoint });
  t.match(await s.head('flaky'), { etag: '0123456789abcdef0123456789abcdef' }, 'succeeds on the retry');
  t.equal(seen.get(`/${BUCKET}/flaky`), 2);
  t.equal((await readAll(await s.get('flaky-get'))).length, 0, 'a GET (direct-http.ts) too');
  t.equal(seen.get(`/${BUCKET}/flaky-get`), 2);
  const down = await s.put('down', Buffer.from('x'), 1).catch((e: unknown) => e);
  t.match(down, { name: 'StorageError', code: 'SlowDown', status: 503, providerCode: 'SlowDown', retryable: true });
  t.match((down as StorageError).message, /Please reduce your request rate/);
  t.equal(seen.get(`/${BUCKET}/down`), 2, 'asked twice, then the replication layer owns the retries');
  await t.rejects(s.head('forbidden'), { code: 'AccessDenied', status: 403 });
  t.equal(seen.get(`/${BUCKET}/forbidden`), 1, 'a refusal is not retried');
});

t.test('buckets whose endpoint rules need more than SigV4 stay on the SDK', async (t) => {
  const agents = { httpAgent: undefined as never, httpsAgent: undefined as never, socketTimeoutMs: 1000, connectionTimeoutMs: 1000 };
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  t.teardown(() => client.destroy());
  t.equal(await S3Requests.open(client, 'express--use1-az4--x-s3', agents), undefined, 'S3 Express (session auth)');
  t.ok(await S3Requests.open(client, 'plain-bucket', agents), 'a plain bucket');
  t.ok(await S3Requests.open(client, 'dotted.bucket.name', agents), 'a dotted bucket (path style)');
});
