/**
 * Drives the OSS test server with the real ali-oss client (and, where
 * ali-oss cannot produce the request, with an independently written V1
 * signer over raw node:http) to prove it speaks OSS as clients see it.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';

import OSS from 'ali-oss';
import { crc64 as hashWasmCrc64 } from 'hash-wasm';
import t from 'tap';

import { loadCrc64 } from './support/oss-server-digest.js';
import { type OssServer, startOssServer } from './support/oss-server.js';

const BUCKET = 'bridge-src';
const OTHER_BUCKET = 'bridge-dst';

// ---------------------------------------------------------------- helpers

/** Reference CRC-64/XZ (reflected 0x42F0E1EBA9EA3693, init/xorout all ones), written independently of hash-wasm. */
const CRC64_XZ_TABLE: readonly bigint[] = Array.from({ length: 256 }, (_, index) => {
  let crc = BigInt(index);
  for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ 0xc96c5795d7870f42n : crc >> 1n;
  return crc;
});
function referenceCrc64(data: Uint8Array): string {
  let crc = 0xffffffffffffffffn;
  for (const byte of data) crc = (CRC64_XZ_TABLE[Number((crc ^ BigInt(byte)) & 0xffn)] ?? 0n) ^ (crc >> 8n);
  return (crc ^ 0xffffffffffffffffn).toString(10);
}

function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex').toUpperCase();
}

/** ali-oss types response headers as `object`. */
function headersOf(res: { headers: object }): Record<string, string | undefined> {
  return res.headers as Record<string, string | undefined>;
}

type ClientOptions = Partial<OSS.Options> & { sldEnable?: boolean };

function clientFor(server: OssServer, overrides: ClientOptions = {}): OSS {
  const options: ClientOptions & OSS.Options = {
    region: 'oss-cn-hangzhou',
    endpoint: server.endpoint,
    accessKeyId: server.accessKeyId,
    accessKeySecret: server.accessKeySecret,
    bucket: BUCKET,
    secure: false,
    timeout: 10_000,
    ...overrides,
  };
  return new OSS(options);
}

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A raw HTTP request, optionally signed with OSS V1 using the `Date` header
 * (the Go/Java SDK style, whereas ali-oss signs `x-oss-date`).
 */
function rawRequest(
  server: OssServer,
  options: {
    method: string;
    path: string;
    host?: string;
    headers?: Record<string, string>;
    body?: string;
    /** CanonicalizedResource to sign; unsigned when absent. */
    resource?: string;
  },
): Promise<RawResponse> {
  const body = Buffer.from(options.body ?? '');
  const headers: Record<string, string> = {
    host: options.host ?? `127.0.0.1:${server.port}`,
    'content-length': String(body.length),
    ...options.headers,
  };
  if (options.resource !== undefined) {
    headers.date = new Date().toUTCString();
    const ossHeaders = Object.keys(headers)
      .filter((name) => name.startsWith('x-oss-'))
      .sort()
      .map((name) => `${name}:${headers[name]}\n`)
      .join('');
    const toSign = `${options.method}\n${headers['content-md5'] ?? ''}\n${headers['content-type'] ?? ''}\n${headers.date}\n${ossHeaders}${options.resource}`;
    headers.authorization = `OSS ${server.accessKeyId}:${createHmac('sha1', server.accessKeySecret).update(toSign, 'utf8').digest('base64')}`;
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, method: options.method, path: options.path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorCode(xml: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];
}

// ------------------------------------------------------------------ setup

const server = await startOssServer({ buckets: [BUCKET, OTHER_BUCKET] });
t.teardown(() => server.close());
const client = clientFor(server);

// ------------------------------------------------------------------ tests

t.test('CRC-64 is CRC-64/XZ: check value and reference implementation agree', async (t) => {
  const crc64 = await loadCrc64();
  const check = BigInt('0x995DC9BBDF1939FA').toString(10);
  t.equal(crc64([Buffer.from('123456789')]), check, 'server CRC check value');
  t.equal(referenceCrc64(Buffer.from('123456789')), check, 'reference CRC check value');
  const data = randomBytes(4096);
  t.equal(crc64([data.subarray(0, 1000), data.subarray(1000)]), referenceCrc64(data), 'chunked input equals one-shot reference');
  t.equal(crc64([]), '0', 'CRC of nothing is 0');
});

t.test('put/get/head round-trip every standard header, metadata, storage class and SSE', async (t) => {
  const key = 'docs/report 2024+final%.txt';
  const body = randomBytes(20_000);
  const expires = 'Wed, 21 Oct 2037 07:28:00 GMT';
  const put = await client.put(key, body, {
    meta: { author: 'alice', 'Project-Code': 'bb-7' } as unknown as OSS.UserMeta,
    headers: {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Encoding': 'identity',
      'Content-Disposition': 'attachment; filename="report.txt"',
      'Content-Language': 'en-GB',
      'Cache-Control': 'max-age=60',
      Expires: expires,
      'x-oss-storage-class': 'IA',
      'x-oss-server-side-encryption': 'KMS',
      'x-oss-server-side-encryption-key-id': 'test-kms-key-1',
    },
  });
  const putHeaders = headersOf(put.res);
  t.equal(putHeaders.etag, `"${md5Hex(body)}"`, 'ETag is the quoted upper-case MD5');
  t.equal(putHeaders['x-oss-hash-crc64ecma'], referenceCrc64(body), 'PUT reports CRC-64 of the body');
  t.match(putHeaders['x-oss-request-id'], /^[0-9A-F]{24}$/, 'request id header');

  const head = await client.head(key);
  const h = headersOf(head.res);
  t.equal(head.status, 200);
  t.same(head.meta, { author: 'alice', 'project-code': 'bb-7' }, 'metadata (names lower-cased like OSS)');
  t.equal(h['content-type'], 'text/plain; charset=utf-8');
  t.equal(h['content-encoding'], 'identity');
  t.equal(h['content-disposition'], 'attachment; filename="report.txt"');
  t.equal(h['content-language'], 'en-GB');
  t.equal(h['cache-control'], 'max-age=60');
  t.equal(h.expires, expires);
  t.equal(h['content-length'], String(body.length));
  t.equal(h['x-oss-storage-class'], 'IA');
  t.equal(h['x-oss-server-side-encryption'], 'KMS');
  t.equal(h['x-oss-server-side-encryption-key-id'], 'test-kms-key-1');
  t.equal(h['x-oss-object-type'], 'Normal');
  t.equal(h['x-oss-hash-crc64ecma'], referenceCrc64(body));
  t.equal(h.etag, `"${md5Hex(body)}"`);
  t.ok(h['last-modified'] !== undefined && !Number.isNaN(Date.parse(h['last-modified'])), 'Last-Modified is an HTTP date');

  const get = await client.get(key);
  t.ok(Buffer.from(get.content as Uint8Array).equals(body), 'GET returns the bytes');
  t.equal(headersOf(get.res)['x-oss-meta-author'], 'alice');
  t.equal(headersOf(get.res)['x-oss-hash-crc64ecma'], referenceCrc64(body));

  const stored = server.getObject(BUCKET, key);
  t.ok(stored?.body.equals(body), 'getObject exposes the stored body');
  t.equal(stored?.etag, md5Hex(body), 'stored etag is unquoted');
  t.equal(stored?.crc64, referenceCrc64(body));
  t.same(stored?.meta, { author: 'alice', 'project-code': 'bb-7' });
  t.equal(stored?.headers['x-oss-server-side-encryption-key-id'], 'test-kms-key-1');
  t.equal(stored?.headers['cache-control'], 'max-age=60');

  const seen = server.requests.find((r) => r.method === 'PUT' && r.key === key);
  t.equal(seen?.bucket, BUCKET, 'request log resolves the bucket from the Host header');
  t.equal(seen?.headers['x-oss-server-side-encryption'], 'KMS', 'request log keeps lower-cased headers');
  t.equal(server.getObject(BUCKET, 'missing'), undefined);
});

t.test('chunked (streamed) upload without Content-Length', async (t) => {
  const parts = [randomBytes(70_000), randomBytes(50_000), randomBytes(3)];
  const put = await client.putStream('stream/chunked.bin', Readable.from(parts));
  const all = Buffer.concat(parts);
  t.equal(headersOf(put.res).etag, `"${md5Hex(all)}"`);
  t.ok(server.getObject(BUCKET, 'stream/chunked.bin')?.body.equals(all));
  const seen = server.requests.findLast((r) => r.key === 'stream/chunked.bin');
  t.equal(seen?.headers['transfer-encoding'], 'chunked', 'really was chunked');
});

t.test('range GET returns 206 with Content-Range', async (t) => {
  const body = Buffer.from('0123456789abcdef');
  await client.put('range.txt', body);
  const middle = await client.get('range.txt', { headers: { Range: 'bytes=2-5' } });
  t.equal(middle.res.status, 206);
  t.equal(Buffer.from(middle.content as Uint8Array).toString(), '2345');
  t.equal(headersOf(middle.res)['content-range'], 'bytes 2-5/16');
  t.equal(headersOf(middle.res)['x-oss-hash-crc64ecma'], referenceCrc64(body), 'CRC header is of the whole object');

  const suffix = await client.get('range.txt', { headers: { Range: 'bytes=-3' } });
  t.equal(Buffer.from(suffix.content as Uint8Array).toString(), 'def');
  const open = await client.get('range.txt', { headers: { Range: 'bytes=14-' } });
  t.equal(Buffer.from(open.content as Uint8Array).toString(), 'ef');
  const clamped = await client.get('range.txt', { headers: { Range: 'bytes=10-999' } });
  t.equal(headersOf(clamped.res)['content-range'], 'bytes 10-15/16');

  await t.rejects(client.get('range.txt', { headers: { Range: 'bytes=16-20' } }), { status: 416, code: 'InvalidRange' });
  const ignored = await client.get('range.txt', { headers: { Range: 'bytes=5-2' } });
  t.equal(ignored.res.status, 200, 'an invalid range is ignored, as OSS does');
});

t.test('conditional GET: If-Match mismatch is 412, If-None-Match match is 304', async (t) => {
  const put = await client.put('cond.txt', Buffer.from('conditional'));
  const etag = headersOf(put.res).etag ?? '';
  await t.rejects(client.get('cond.txt', { headers: { 'If-Match': '"0123456789ABCDEF0123456789ABCDEF"' } }), {
    status: 412,
    code: 'PreconditionFailed',
  });
  const matched = await client.get('cond.txt', { headers: { 'If-Match': etag } });
  t.equal(matched.res.status, 200);
  const notModified = await client.get('cond.txt', { headers: { 'If-None-Match': etag.toLowerCase() } });
  t.equal(notModified.res.status, 304, 'ETag comparison is case-insensitive');
  const modifiedSince = await client.get('cond.txt', { headers: { 'If-Modified-Since': new Date(Date.now() + 60_000).toUTCString() } });
  t.equal(modifiedSince.res.status, 304);
});

t.test('authentication failures', async (t) => {
  const wrongSecret = clientFor(server, { accessKeySecret: 'not-the-secret' });
  await t.rejects(wrongSecret.put('denied.txt', Buffer.from('x')), { status: 403, code: 'SignatureDoesNotMatch' });
  await t.rejects(wrongSecret.get('range.txt'), { status: 403, code: 'SignatureDoesNotMatch' });
  t.equal(server.getObject(BUCKET, 'denied.txt'), undefined, 'nothing stored on a bad signature');

  // HEAD has no body: the error document travels base64-encoded in x-oss-err.
  await t.rejects(wrongSecret.head('range.txt'), { status: 403, code: 'SignatureDoesNotMatch' });

  const unknownKey = clientFor(server, { accessKeyId: 'unknown-ak' });
  await t.rejects(unknownKey.get('range.txt'), { status: 403, code: 'InvalidAccessKeyId' });

  const anonymous = await rawRequest(server, { method: 'GET', path: `/${BUCKET}/range.txt` });
  t.equal(anonymous.status, 403);
  t.equal(errorCode(anonymous.body), 'AccessDenied');
  t.equal(anonymous.headers['content-type'], 'application/xml');
  t.match(anonymous.body, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>AccessDenied<\/Code><Message>[^<]+<\/Message><RequestId>[0-9A-F]{24}<\/RequestId><HostId>/);
  t.match(anonymous.body, new RegExp(`<RequestId>${String(anonymous.headers['x-oss-request-id'])}</RequestId>`), 'XML and header request ids agree');
});

t.test('NoSuchKey, NoSuchBucket and Content-MD5 errors surface in ali-oss', async (t) => {
  await t.rejects(client.get('no/such/key'), { status: 404, code: 'NoSuchKey' });
  await t.rejects(client.head('no/such/key'), { status: 404, code: 'NoSuchKey' });
  const missingBucket = clientFor(server, { bucket: 'no-such-bucket' });
  await t.rejects(missingBucket.get('x'), { status: 404, code: 'NoSuchBucket' });
  await t.rejects(missingBucket.put('x', Buffer.from('x')), { status: 404, code: 'NoSuchBucket' });
  await t.rejects(missingBucket.listV2({}), { status: 404, code: 'NoSuchBucket' });
  await t.rejects(client.put('bad-md5.txt', Buffer.from('payload'), { headers: { 'Content-MD5': createHash('md5').update('other').digest('base64') } }), {
    status: 400,
    code: 'InvalidDigest',
  });
  t.equal(server.getObject(BUCKET, 'bad-md5.txt'), undefined);
  const deleted = await client.delete('no/such/key');
  t.equal(deleted.res.status, 204, 'DeleteObject of a missing key is 204');
});

t.test('manual multipart: init, uploadPart, listParts, complete', async (t) => {
  const key = 'mp/manual.bin';
  const part1 = randomBytes(100 * 1024);
  const part2 = randomBytes(120 * 1024);
  const part3 = randomBytes(777);
  const init = await client.initMultipartUpload(key, {
    meta: { origin: 's3' } as unknown as OSS.UserMeta,
    headers: { 'Content-Type': 'application/x-custom', 'x-oss-storage-class': 'IA', 'x-oss-server-side-encryption': 'AES256' },
  });
  t.equal(init.name, key);
  t.match(init.uploadId, /^[0-9A-F]{32}$/);
  t.equal(server.pendingUploads(BUCKET), 1);

  const whole = Buffer.concat([part1, part2, part3]);
  const uploaded = [];
  let offset = 0;
  for (const [index, part] of [part1, part2, part3].entries()) {
    const result = await client.uploadPart(key, init.uploadId, index + 1, whole, offset, offset + part.length);
    offset += part.length;
    t.equal(result.etag, `"${md5Hex(part)}"`, `part ${index + 1} ETag`);
    t.equal(headersOf(result.res)['x-oss-hash-crc64ecma'], referenceCrc64(part), `part ${index + 1} CRC`);
    uploaded.push({ number: index + 1, etag: result.etag });
  }

  const listed = await client.listParts(key, init.uploadId, { 'max-parts': 2 } as OSS.ListPartsQuery);
  t.equal(listed.parts.length, 2, 'max-parts pages the list');
  t.equal(String(listed.isTruncated), 'true');
  const rest = await client.listParts(key, init.uploadId, { 'part-number-marker': listed.nextPartNumberMarker } as OSS.ListPartsQuery);
  const restParts = rest.parts as unknown as { PartNumber: string; ETag: string; Size: string } | { PartNumber: string }[];
  // ali-oss (xml2js, explicitArray: false) returns a lone <Part> as an object, not an array.
  t.same(Array.isArray(restParts) ? restParts.map((p) => p.PartNumber) : [restParts.PartNumber], ['3']);

  await t.rejects(
    client.completeMultipartUpload(key, init.uploadId, [{ number: 1, etag: '"00000000000000000000000000000000"' }, ...uploaded.slice(1)]),
    { status: 400, code: 'InvalidPart' },
  );
  const complete = await client.completeMultipartUpload(key, init.uploadId, uploaded);
  const expectedEtag = `${createHash('md5')
    .update(Buffer.concat([part1, part2, part3].map((p) => createHash('md5').update(p).digest())))
    .digest('hex')
    .toUpperCase()}-3`;
  t.equal(complete.etag, `"${expectedEtag}"`, 'multipart ETag is md5-of-md5s-N');
  t.equal(headersOf(complete.res)['x-oss-hash-crc64ecma'], referenceCrc64(whole), 'Complete reports CRC of the whole object');
  t.equal(server.pendingUploads(BUCKET), 0);

  const head = await client.head(key);
  t.equal(headersOf(head.res)['x-oss-object-type'], 'Multipart');
  t.equal(headersOf(head.res)['x-oss-storage-class'], 'IA', 'storage class from initiate');
  t.equal(headersOf(head.res)['x-oss-server-side-encryption'], 'AES256', 'SSE from initiate');
  t.equal(headersOf(head.res)['content-type'], 'application/x-custom');
  t.same(head.meta, { origin: 's3' });
  t.ok(server.getObject(BUCKET, key)?.body.equals(whole));
  await t.rejects(client.completeMultipartUpload(key, init.uploadId, uploaded), { status: 404, code: 'NoSuchUpload' });
});

t.test('client.multipartUpload of a few MiB with small parts', async (t) => {
  const data = randomBytes(3 * 1024 * 1024 + 12_345);
  const result = await client.multipartUpload('mp/managed.bin', data, { partSize: 256 * 1024, parallel: 4 });
  const stored = server.getObject(BUCKET, 'mp/managed.bin');
  t.ok(stored?.body.equals(data), 'bytes reassembled in order');
  t.match(result.etag, /^"[0-9A-F]{32}-13"$/, '13 parts');
  t.equal(stored?.crc64, BigInt(`0x${await hashWasmCrc64(data)}`).toString(10), 'CRC of the whole object');
  t.equal(stored?.headers['x-oss-object-type'], 'Multipart');
  t.equal(server.pendingUploads(BUCKET), 0);
});

t.test('multipartUploadCopy (UploadPartCopy with ranges) across buckets', async (t) => {
  const data = randomBytes(350 * 1024);
  await client.put('mpc/source.bin', data);
  const target = clientFor(server, { bucket: OTHER_BUCKET });
  const result = await target.multipartUploadCopy(
    'mpc/target.bin',
    { sourceKey: 'mpc/source.bin', sourceBucketName: BUCKET, startOffset: 0, endOffset: data.length },
    { partSize: 100 * 1024 },
  );
  const stored = server.getObject(OTHER_BUCKET, 'mpc/target.bin');
  t.ok(stored?.body.equals(data), 'ranges stitched back together');
  t.match(result.etag, /-4"$/, 'four parts');
  t.equal(stored?.crc64, referenceCrc64(data));
  const partCopies = server.requests.filter((r) => r.key === 'mpc/target.bin' && r.headers['x-oss-copy-source-range'] !== undefined);
  t.equal(partCopies.length, 4);
  t.equal(server.pendingUploads(OTHER_BUCKET), 0);
});

t.test('abort, NoSuchUpload, listUploads, EntityTooSmall and InvalidPartOrder', async (t) => {
  const a = await client.initMultipartUpload('mp/abort-a.bin');
  const b = await client.initMultipartUpload('mp/abort-b.bin');
  const uploads = await client.listUploads({ prefix: 'mp/abort-' });
  t.same(uploads.uploads.map((u) => u.name), ['mp/abort-a.bin', 'mp/abort-b.bin']);
  t.equal(server.pendingUploads(BUCKET), 2);

  await client.abortMultipartUpload('mp/abort-a.bin', a.uploadId);
  await t.rejects(client.abortMultipartUpload('mp/abort-a.bin', a.uploadId), { status: 404, code: 'NoSuchUpload' });
  await t.rejects(client.uploadPart('mp/abort-a.bin', a.uploadId, 1, Buffer.from('late'), 0, 4), { status: 404, code: 'NoSuchUpload' });
  await t.rejects(client.uploadPart('mp/other-key.bin', b.uploadId, 1, Buffer.from('x'), 0, 1), { status: 404, code: 'NoSuchUpload' }, 'upload id is bound to its key');

  const small1 = await client.uploadPart('mp/abort-b.bin', b.uploadId, 1, Buffer.from('tiny'), 0, 4);
  const small2 = await client.uploadPart('mp/abort-b.bin', b.uploadId, 2, Buffer.from('tiny'), 0, 4);
  await t.rejects(
    client.completeMultipartUpload('mp/abort-b.bin', b.uploadId, [
      { number: 1, etag: small1.etag },
      { number: 2, etag: small2.etag },
    ]),
    { status: 400, code: 'EntityTooSmall' },
  );

  // ali-oss sorts parts before sending, so send an out-of-order list by hand.
  const xml = `<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>${small2.etag}</ETag></Part><Part><PartNumber>1</PartNumber><ETag>${small1.etag}</ETag></Part></CompleteMultipartUpload>`;
  const outOfOrder = await rawRequest(server, {
    method: 'POST',
    path: `/${BUCKET}/mp/abort-b.bin?uploadId=${b.uploadId}`,
    headers: { 'content-type': 'application/xml' },
    body: xml,
    resource: `/${BUCKET}/mp/abort-b.bin?uploadId=${b.uploadId}`,
  });
  t.equal(outOfOrder.status, 400);
  t.equal(errorCode(outOfOrder.body), 'InvalidPartOrder');

  await client.abortMultipartUpload('mp/abort-b.bin', b.uploadId);
  t.equal(server.pendingUploads(BUCKET), 0, 'no orphaned uploads');
});

t.test('listV2: pagination, prefix, delimiter, byte order, encoding-type=url', async (t) => {
  const pageKeys = Array.from({ length: 25 }, (_, i) => `page/k${String(i).padStart(2, '0')}`);
  for (const key of pageKeys) await client.put(key, Buffer.from(key));

  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const query: OSS.ListV2ObjectsQuery = { prefix: 'page/', 'max-keys': 10, ...(token ? { 'continuation-token': token } : {}) };
    const page = await client.listV2(query);
    pages += 1;
    t.equal(page.keyCount, page.objects.length);
    seen.push(...page.objects.map((o) => o.name));
    token = page.isTruncated ? page.nextContinuationToken : undefined;
  } while (token !== undefined);
  t.equal(pages, 3, '25 keys at 10 per page');
  t.same(seen, pageKeys, 'every key once, in order');

  const first = await client.listV2({ prefix: 'page/', 'max-keys': 1 });
  const object = first.objects[0];
  t.equal(object?.etag, `"${md5Hex(Buffer.from('page/k00'))}"`);
  t.equal(object?.size, 8);
  t.equal(object?.type, 'Normal');
  t.equal(object?.storageClass, 'Standard');
  t.equal(object?.owner, null, 'no owner without fetch-owner');
  const withOwner = await client.listV2({ prefix: 'page/', 'max-keys': 1, 'fetch-owner': true });
  t.ok(withOwner.objects[0]?.owner, 'owner with fetch-owner=true');

  const after = await client.listV2({ prefix: 'page/', 'start-after': 'page/k22' });
  t.same(after.objects.map((o) => o.name), ['page/k23', 'page/k24'], 'start-after');

  const unicodeKeys = ['uni/\u{1F600}', 'uni/\uFF61', 'uni/~', 'uni/a', 'uni/\u00E9', 'uni/a b', 'uni/a+b', 'uni/a%b', 'uni/a%20b'];
  for (const key of unicodeKeys) await client.put(key, Buffer.from('u'));
  const byteOrder = [...unicodeKeys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  t.not(byteOrder.join(), [...unicodeKeys].sort().join(), 'fixture really distinguishes UTF-8 from UTF-16 order');
  const uni = await client.listV2({ prefix: 'uni/' });
  t.same(uni.objects.map((o) => o.name), byteOrder, 'keys in UTF-8 byte order, special characters intact');

  const encoded = await client.listV2({ prefix: 'uni/', 'encoding-type': 'url' });
  t.same(encoded.objects.map((o) => decodeURIComponent(o.name)), byteOrder, 'url-encoded keys decode to the originals');
  t.ok(encoded.objects.some((o) => o.name.includes('%')), 'keys really were encoded');

  for (const key of ['tree/a/1', 'tree/a/2', 'tree/b/1', 'tree/c']) await client.put(key, Buffer.from('t'));
  const tree = await client.listV2({ prefix: 'tree/', delimiter: '/' });
  t.same(tree.prefixes, ['tree/a/', 'tree/b/']);
  t.same(tree.objects.map((o) => o.name), ['tree/c']);
  const entries: string[] = [];
  token = undefined;
  do {
    const query: OSS.ListV2ObjectsQuery = { prefix: 'tree/', delimiter: '/', 'max-keys': 1, ...(token ? { 'continuation-token': token } : {}) };
    const page = await client.listV2(query);
    entries.push(...(page.prefixes ?? []), ...page.objects.map((o) => o.name));
    token = page.isTruncated ? page.nextContinuationToken : undefined;
  } while (token !== undefined);
  t.same(entries, ['tree/a/', 'tree/b/', 'tree/c'], 'a common prefix is one entry and never repeats across pages');

  const v1 = await client.list({ prefix: 'page/', 'max-keys': 20 }, {});
  t.equal(v1.objects.length, 20);
  t.equal(v1.isTruncated, true);
  t.equal(v1.nextMarker, 'page/k19', 'V1 listing uses markers');

  await t.rejects(client.listV2({ 'max-keys': 1001 }), { status: 400, code: 'InvalidArgument' });
});

t.test('copy: COPY keeps metadata, REPLACE replaces it, special keys, missing source', async (t) => {
  const source = 'copy/src key+%.txt';
  const body = randomBytes(5000);
  await client.put(source, body, {
    meta: { owner: 'team-a' } as unknown as OSS.UserMeta,
    headers: { 'Content-Type': 'text/csv', 'Cache-Control': 'no-cache' },
  });

  const copied = await client.copy('copy/dst one.txt', source);
  t.equal(copied.data?.etag, `"${md5Hex(body)}"`, 'CopyObjectResult ETag');
  t.match(copied.data?.lastModified, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
  const kept = server.getObject(BUCKET, 'copy/dst one.txt');
  t.ok(kept?.body.equals(body));
  t.same(kept?.meta, { owner: 'team-a' });
  t.equal(kept?.headers['content-type'], 'text/csv');
  t.equal(kept?.headers['cache-control'], 'no-cache');

  await client.copy('copy/dst two.txt', source, { meta: { owner: 'team-b' } as unknown as OSS.UserMeta, headers: { 'Content-Type': 'text/plain' } });
  const replaced = server.getObject(BUCKET, 'copy/dst two.txt');
  t.same(replaced?.meta, { owner: 'team-b' }, 'REPLACE takes metadata from the request');
  t.equal(replaced?.headers['content-type'], 'text/plain');
  t.equal(replaced?.headers['cache-control'], undefined, 'REPLACE drops headers not re-sent');

  // ali-oss's third argument names the *source* bucket.
  await clientFor(server, { bucket: OTHER_BUCKET }).copy('copied-across.txt', source, BUCKET);
  t.ok(server.getObject(OTHER_BUCKET, 'copied-across.txt')?.body.equals(body), 'cross-bucket copy');
  await t.rejects(client.copy('x.txt', source, 'no-such-bucket'), { status: 404, code: 'NoSuchBucket' });
  await t.rejects(client.copy('x.txt', 'copy/none'), { status: 404, code: 'NoSuchKey' });
});

t.test('deleteMulti, verbose and quiet', async (t) => {
  for (const key of ['del/a', 'del/b c', 'del/d&e']) await client.put(key, Buffer.from(key));
  const verbose = await client.deleteMulti(['del/a', 'del/b c', 'del/missing']);
  t.same(
    (verbose.deleted ?? []).map((d) => (d as unknown as { Key: string }).Key),
    ['del/a', 'del/b c', 'del/missing'],
    'every requested key is reported deleted',
  );
  t.equal(server.getObject(BUCKET, 'del/a'), undefined);
  const quiet = await client.deleteMulti(['del/d&e'], { quiet: true });
  t.same(quiet.deleted, [], 'quiet mode lists nothing');
  t.equal(server.getObject(BUCKET, 'del/d&e'), undefined, 'XML-escaped key deleted');

  const noMd5 = await rawRequest(server, {
    method: 'POST',
    path: `/${BUCKET}/?delete`,
    headers: { 'content-type': 'application/xml' },
    body: '<Delete><Object><Key>x</Key></Object></Delete>',
    resource: `/${BUCKET}/?delete`,
  });
  t.equal(noMd5.status, 400);
  t.equal(errorCode(noMd5.body), 'InvalidDigest', 'Content-MD5 is required');
});

t.test('archive objects need a restore before GET', async (t) => {
  const body = Buffer.from('cold data');
  await client.put('cold/a.bin', body, { headers: { 'x-oss-storage-class': 'Archive' } });
  await t.rejects(client.get('cold/a.bin'), { status: 403, code: 'InvalidObjectState' });
  await t.rejects(client.copy('cold/copy.bin', 'cold/a.bin'), { status: 403, code: 'InvalidObjectState' });
  const head = await client.head('cold/a.bin');
  t.equal(headersOf(head.res)['x-oss-storage-class'], 'Archive');
  t.equal(headersOf(head.res)['x-oss-restore'], undefined);

  // @types/ali-oss declares restore() as returning the response itself; at runtime it is `{ res }`.
  const restore = (await client.restore('cold/a.bin')) as unknown as { res: OSS.NormalSuccessResponse };
  t.equal(restore.res.status, 202);
  const restored = await client.head('cold/a.bin');
  t.match(headersOf(restored.res)['x-oss-restore'], /^ongoing-request="false", expiry-date="[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"$/);
  const get = await client.get('cold/a.bin');
  t.ok(Buffer.from(get.content as Uint8Array).equals(body));

  await client.put('warm.bin', body);
  await t.rejects(client.restore('warm.bin'), { status: 400, code: 'OperationNotSupported' });
});

t.test('restore can take time (restoreDelayMs)', async (t) => {
  const slow = await startOssServer({ buckets: [BUCKET], restoreDelayMs: 300 });
  t.teardown(() => slow.close());
  const slowClient = clientFor(slow);
  await slowClient.put('cold.bin', Buffer.from('zzz'), { headers: { 'x-oss-storage-class': 'ColdArchive' } });
  await slowClient.restore('cold.bin', { type: 'ColdArchive' } as unknown as OSS.RequestOptions);
  t.equal(headersOf((await slowClient.head('cold.bin')).res)['x-oss-restore'], 'ongoing-request="true"');
  await t.rejects(slowClient.get('cold.bin'), { code: 'InvalidObjectState' });
  await t.rejects(slowClient.restore('cold.bin'), { status: 409, code: 'RestoreAlreadyInProgress' });
  await new Promise((resolve) => setTimeout(resolve, 350));
  t.equal(Buffer.from((await slowClient.get('cold.bin')).content as Uint8Array).toString(), 'zzz');
});

t.test('addressing: sldEnable path style, plain path style, bucket.127.0.0.1 virtual host', async (t) => {
  const sld = clientFor(server, { sldEnable: true });
  await sld.put('addr/sld.txt', Buffer.from('sld'));
  t.ok(server.getObject(BUCKET, 'addr/sld.txt'), 'bucket taken from the path, not repeated in the key');
  t.equal(server.getObject(BUCKET, `${BUCKET}/addr/sld.txt`), undefined);
  t.equal(Buffer.from((await sld.get('addr/sld.txt')).content as Uint8Array).toString(), 'sld');
  t.equal((await sld.listV2({ prefix: 'addr/' })).objects.length, 1);

  const pathStyle = await rawRequest(server, { method: 'GET', path: `/${BUCKET}/addr/sld.txt`, resource: `/${BUCKET}/addr/sld.txt` });
  t.equal(pathStyle.status, 200);
  t.equal(pathStyle.body, 'sld');

  const virtualHost = await rawRequest(server, {
    method: 'PUT',
    path: '/addr/vhost%20key.txt',
    host: `${BUCKET}.127.0.0.1:${server.port}`,
    headers: { 'content-type': 'text/plain', 'x-oss-meta-via': 'vhost' },
    body: 'vhost',
    resource: `/${BUCKET}/addr/vhost key.txt`,
  });
  t.equal(virtualHost.status, 200, virtualHost.body);
  t.same(server.getObject(BUCKET, 'addr/vhost key.txt')?.meta, { via: 'vhost' });

  const buckets = await rawRequest(server, { method: 'GET', path: '/', resource: '/' });
  t.match(buckets.body, new RegExp(`<Name>${BUCKET}</Name>`), 'ListBuckets at the service root');

  const unsupported = await rawRequest(server, { method: 'GET', path: `/${BUCKET}/addr/sld.txt?acl`, resource: `/${BUCKET}/addr/sld.txt?acl` });
  t.equal(unsupported.status, 501, 'unimplemented sub-resources fail loudly');
  t.equal(errorCode(unsupported.body), 'NotImplemented');
});

t.test('presigned URLs (ali-oss refuses to presign for an IP endpoint, so use localhost + sldEnable)', async (t) => {
  const presigner = clientFor(server, { endpoint: `http://localhost:${server.port}`, sldEnable: true });
  await client.put('signed/url.txt', Buffer.from('presigned'));
  const url = presigner.signatureUrl('signed/url.txt', { expires: 60, response: { 'content-type': 'text/x-override' } });
  const ok = await fetch(url.replace('localhost', '127.0.0.1'));
  t.equal(ok.status, 200);
  t.equal(await ok.text(), 'presigned');
  t.equal(ok.headers.get('content-type'), 'text/x-override', 'response-* overrides are honoured');

  const tampered = await fetch(url.replace('localhost', '127.0.0.1').replace('url.txt', 'other.txt'));
  t.equal(tampered.status, 403);
  t.equal(errorCode(await tampered.text()), 'SignatureDoesNotMatch');

  const expired = presigner.signatureUrl('signed/url.txt', { expires: -10 });
  const late = await fetch(expired.replace('localhost', '127.0.0.1'));
  t.equal(late.status, 403);
  t.equal(errorCode(await late.text()), 'AccessDenied');
});

t.test('append, forbid-overwrite and bucket info', async (t) => {
  await client.append('log/app.txt', Buffer.from('one,'));
  const second = await client.append('log/app.txt', Buffer.from('two'), { position: '4' });
  t.equal(second.nextAppendPosition, '7');
  const stored = server.getObject(BUCKET, 'log/app.txt');
  t.equal(stored?.body.toString(), 'one,two');
  t.equal(stored?.crc64, referenceCrc64(Buffer.from('one,two')));
  t.equal(stored?.headers['x-oss-object-type'], 'Appendable');
  await t.rejects(client.append('log/app.txt', Buffer.from('x'), { position: '1' }), {
    status: 409,
    code: 'PositionNotEqualToLength',
  });

  await t.rejects(client.put('log/app.txt', Buffer.from('clobber'), { headers: { 'x-oss-forbid-overwrite': 'true' } }), {
    status: 409,
    code: 'FileAlreadyExists',
  });

  const info = await client.getBucketInfo(BUCKET);
  t.equal((info.bucket as unknown as { Name: string }).Name, BUCKET);
});
