/**
 * A real S3-compatible HTTP server for tests: s3rver on 127.0.0.1, a random
 * port and a fresh temporary directory.
 *
 * s3rver 3.7 is an approximation of S3 and differs from it exactly where the
 * replication layer needs S3's behaviour, so a small compatibility layer (Koa
 * middleware placed in front of s3rver's own) fills the gaps for path-style
 * requests. Each entry is S3 behaviour that s3rver lacks:
 *  - ListParts and AbortMultipartUpload (s3rver answers 405 MethodNotAllowed);
 *  - NoSuchUpload for parts/complete of an unknown upload id (s3rver creates
 *    the upload directory on the fly, then fails the complete with a 500);
 *  - CompleteMultipartUpload checks part order and part ETags (InvalidPartOrder,
 *    InvalidPart), optionally the minimum part size (EntityTooSmall, off by
 *    default like s3rver), and yields a multipart ETag "md5-of-md5s-N"
 *    (s3rver returns the MD5 of the whole object);
 *  - Content-MD5 is verified on PutObject and UploadPart (BadDigest /
 *    InvalidDigest), and so is a signed payload hash (x-amz-content-sha256 of
 *    64 hex digits: XAmzContentSHA256Mismatch); such bodies are buffered in
 *    memory before s3rver sees them;
 *  - If-Match on GET/HEAD (PreconditionFailed);
 *  - full-object checksums (x-amz-checksum-crc64nvme, -crc32, -crc32c, -sha1,
 *    -sha256): one sent with CompleteMultipartUpload is checked against the
 *    assembled bytes (BadDigest) and kept; HEAD and whole-object GET report it
 *    with x-amz-checksum-type FULL_OBJECT when asked (x-amz-checksum-mode:
 *    ENABLED). Unlike S3, the create need not announce it, and a PUT's
 *    checksum is neither checked nor kept;
 *  - composite checksums: an upload created with x-amz-checksum-algorithm
 *    (CRC32, CRC32C, SHA1, SHA256; type COMPOSITE unless x-amz-checksum-type
 *    says FULL_OBJECT) needs each part's checksum (x-amz-checksum-<algorithm>;
 *    missing: InvalidRequest, wrong: BadDigest) and gets the checksum of the
 *    part checksums, "<base64>-N", reported like a full-object one but with
 *    x-amz-checksum-type COMPOSITE;
 *  - SSE-KMS as far as a reader sees it: an upload created with
 *    x-amz-server-side-encryption: aws:kms yields an ETag that is not the MD5
 *    of the part MD5s (S3's are opaque) and HEAD/GET report the header;
 *  - HEAD ?partNumber=N: 206 with part N's Content-Length and Content-Range and
 *    x-amz-mp-parts-count for an object completed here in parts; for any other
 *    object part 1 is the whole object without a part count, and a part past
 *    the last is 416 InvalidPartNumber (s3rver ignores partNumber);
 *  - ListObjectsV2 in UTF-8 binary key order (s3rver walks the directory tree
 *    in file-name order, so "a b" sorts before "a", and its start-after filter
 *    then drops keys while paginating), with prefix, delimiter, start-after,
 *    continuation tokens, max-keys, encoding-type=url and stored storage classes;
 *  - a write is acknowledged only once its file has its full size (s3rver
 *    answers when its hashing transform finishes, which can be before the file
 *    stream has flushed, so an immediate GET could read a short file).
 * SigV4 signatures are not verified by s3rver; only the access key id is checked.
 */
import { createHash } from 'node:crypto';
import { createCRC32, createCRC64 } from 'hash-wasm';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export interface S3Server {
  endpoint: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  createBucket(name: string): Promise<void>;
  close(): Promise<void>;
}

export interface S3ServerOptions {
  buckets?: string[];
  /** Storage directory; when given it is kept on close, otherwise a temp dir is created and removed. */
  directory?: string;
  /** Minimum size of every part but the last at CompleteMultipartUpload (S3: 5 MiB). Default 0 = not enforced. */
  minPartSize?: number;
}

// --- the parts of s3rver (untyped CommonJS) that we use ---------------------------------

interface FilesystemStore {
  getBucket(bucket: string): Promise<unknown>;
  putBucket(bucket: string): Promise<unknown>;
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<Record<string, string | number>>;
}

interface KoaContext {
  method: string;
  path: string;
  hostname: string;
  query: Record<string, string | string[] | undefined>;
  headers: IncomingHttpHeaders;
  req: Readable;
  status: number;
  body: unknown;
  type: string;
  set(name: string, value: string): void;
}

type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

interface S3rverInstance {
  store: FilesystemStore;
  middleware: Middleware[];
  httpServer?: Server;
  run(): Promise<{ port: number; address: string }>;
  close(): Promise<void>;
}

type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;
type S3ErrorCtor = new (code: string, message: string, detail?: Record<string, string | number>) => Error;

// createRequire instead of `import S3rver from 's3rver'`: s3rver ships no type
// declarations and we may not add a .d.ts outside the files this module owns.
const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as S3rverCtor;
// Throwing s3rver's own error type makes its error handler render S3's XML error body and status.
const S3Error = require('s3rver/lib/models/error.js') as S3ErrorCtor;
const accountRegistry = (require('s3rver/lib/models/account.js') as { registry: Map<string, unknown> }).registry;

const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';
const OBJECT_SUFFIX = '._S3rver_object';
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export async function startS3Server(opts: S3ServerOptions = {}): Promise<S3Server> {
  const ownDirectory = opts.directory === undefined;
  const directory = opts.directory ?? (await mkdtemp(join(tmpdir(), 'bb-s3rver-')));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name })),
  });
  // Koa composes the middleware array when the server starts listening, so
  // putting ours first here makes it run before s3rver's routing.
  server.middleware.unshift(compatibilityLayer(server.store, opts.minPartSize ?? 0));
  const { port } = await server.run();

  let closed = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    async createBucket(name: string): Promise<void> {
      await server.store.putBucket(name);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const closing = server.close();
      // Keep-alive sockets of clients a test forgot to close would hold close() open.
      server.httpServer?.closeAllConnections();
      await closing;
      if (ownDirectory) await rm(directory, { recursive: true, force: true });
    },
  };
}

// --- full-object checksums -----------------------------------------------------------------

const CHECKSUM_ALGORITHMS = ['CRC64NVME', 'CRC32C', 'CRC32', 'SHA1', 'SHA256'] as const;

/** The full-object checksum a request carries (x-amz-checksum-<algorithm>, base64), if any. */
function requestedChecksum(ctx: KoaContext): { algorithm: (typeof CHECKSUM_ALGORITHMS)[number]; value: string } | undefined {
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const value = header(ctx, `x-amz-checksum-${algorithm.toLowerCase()}`);
    if (value !== undefined && !value.includes('-')) return { algorithm, value };
  }
  return undefined;
}

/**
 * Base64 of the big-endian digest, as S3 writes checksums (CRCs with their reflected polynomials).
 * Also what tests compute the checksums they upload with: written apart from src/replication/source-checksum.ts,
 * whose own check values are tested against the published ones (test/source-checksum.test.ts).
 */
export async function fullObjectChecksum(algorithm: (typeof CHECKSUM_ALGORITHMS)[number], pieces: Buffer[]): Promise<string> {
  if (algorithm === 'SHA1' || algorithm === 'SHA256') {
    const h = createHash(algorithm === 'SHA1' ? 'sha1' : 'sha256');
    for (const p of pieces) h.update(p);
    return h.digest('base64');
  }
  const h =
    algorithm === 'CRC64NVME' ? await createCRC64('9a6c9329ac4bc9b5') : await createCRC32(algorithm === 'CRC32' ? 0xedb88320 : 0x82f63b78);
  h.init();
  for (const p of pieces) h.update(p);
  return Buffer.from(h.digest('hex'), 'hex').toString('base64');
}

// --- compatibility layer -------------------------------------------------------------------

function header(ctx: KoaContext, name: string): string | undefined {
  const v = ctx.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function queryParam(ctx: KoaContext, name: string): string | undefined {
  const v = ctx.query[name];
  return Array.isArray(v) ? v[0] : v;
}

function hasQuery(ctx: KoaContext, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(ctx.query, name);
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function xmlUnescape(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#(\d+);/g, (_m, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&amp;/g, '&');
}

function sendXml(ctx: KoaContext, status: number, xml: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
}

async function readBody(req: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The request body, read in full and handed back for s3rver to read again. */
async function bufferedBody(ctx: KoaContext): Promise<Buffer> {
  const body = await readBody(ctx.req);
  replayBody(ctx, body);
  return body;
}

/** Hand s3rver a body we already consumed. */
function replayBody(ctx: KoaContext, body: Buffer): void {
  const replay = new PassThrough();
  replay.end(body);
  ctx.req = replay;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Wait until s3rver's write stream has flushed the whole file (see the module comment). */
async function waitForSize(path: string, size: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await stat(path)).size >= size) return;
    } catch {
      // not created yet
    }
    await sleep(10);
  }
}

function accessKeyOf(ctx: KoaContext): string | undefined {
  const auth = header(ctx, 'authorization');
  if (auth) return /Credential=([^/,\s]+)\//.exec(auth)?.[1] ?? /^AWS ([^:]+):/.exec(auth)?.[1];
  return queryParam(ctx, 'X-Amz-Credential')?.split('/')[0] ?? queryParam(ctx, 'AWSAccessKeyId');
}

function compatibilityLayer(store: FilesystemStore, minPartSize: number): Middleware {
  const uploadDir = (bucket: string, uploadId: string): string =>
    join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);

  async function requireUpload(bucket: string, key: string, uploadId: string): Promise<string> {
    const dir = uploadDir(bucket, uploadId);
    let storedKey: string | undefined;
    if (/^[0-9a-f]+$/i.test(uploadId)) storedKey = await readFile(join(dir, 'key'), 'utf8').catch(() => undefined);
    if (storedKey !== key) {
      throw new S3Error(
        'NoSuchUpload',
        'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
        { UploadId: uploadId },
      );
    }
    return dir;
  }

  async function requireBucket(bucket: string): Promise<void> {
    if (!(await store.getBucket(bucket))) {
      throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
    }
  }

  interface StoredPart {
    number: number;
    size: number;
    md5: string;
    lastModified: Date;
  }

  /** Completed parts only: s3rver writes N.md5 after the part's bytes. */
  async function storedParts(dir: string): Promise<StoredPart[]> {
    const names = await readdir(dir);
    const parts: StoredPart[] = [];
    for (const name of names) {
      if (!/^\d+$/.test(name) || !names.includes(`${name}.md5`)) continue;
      const [st, md5] = await Promise.all([stat(join(dir, name)), readFile(join(dir, `${name}.md5`), 'utf8')]);
      parts.push({ number: Number(name), size: st.size, md5: md5.trim(), lastModified: st.mtime });
    }
    return parts.sort((a, b) => a.number - b.number);
  }

  /** Verifies Content-MD5 (if sent) and returns the body length that s3rver must end up writing. */
  async function checkContentMd5(ctx: KoaContext): Promise<number | undefined> {
    const md5Header = header(ctx, 'content-md5');
    if (md5Header === undefined) {
      const len = header(ctx, 'content-length');
      return len === undefined ? undefined : Number(len);
    }
    const expected = Buffer.from(md5Header, 'base64');
    if (expected.length !== 16 || expected.toString('base64') !== md5Header.trim()) {
      throw new S3Error('InvalidDigest', 'The Content-MD5 you specified is not valid.', { 'Content-MD5': md5Header });
    }
    const body = await bufferedBody(ctx);
    const actual = createHash('md5').update(body).digest();
    if (!actual.equals(expected)) {
      throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.', {
        ExpectedDigest: md5Header,
        CalculatedDigest: actual.toString('base64'),
      });
    }
    return body.length;
  }

  /** A signed payload hash (x-amz-content-sha256 of 64 hex digits) must be the body's, as S3 checks it. */
  async function checkPayloadSha256(ctx: KoaContext): Promise<void> {
    const claimed = header(ctx, 'x-amz-content-sha256');
    if (claimed === undefined || !/^[0-9a-f]{64}$/i.test(claimed)) return;
    const actual = createHash('sha256').update(await bufferedBody(ctx)).digest('hex');
    if (actual !== claimed.toLowerCase()) {
      // A 400 in S3; s3rver's table does not know the code (it would answer 500).
      throw Object.assign(
        new S3Error('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", {
          ClientComputedContentSHA256: claimed,
          S3ComputedContentSHA256: actual,
        }),
        { status: 400, expose: true },
      );
    }
  }

  async function ifMatch(ctx: KoaContext, bucket: string, key: string): Promise<void> {
    const wanted = header(ctx, 'if-match');
    if (wanted === undefined) return;
    let etag: string;
    try {
      etag = await currentEtag(bucket, key);
    } catch {
      return; // missing object: s3rver answers NoSuchKey
    }
    const candidates = wanted.split(',').map((s) => s.trim().replace(/^W\//, '').replace(/"/g, ''));
    if (!candidates.includes('*') && !candidates.includes(etag)) {
      throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
        Condition: 'If-Match',
      });
    }
  }

  async function listParts(ctx: KoaContext, bucket: string, key: string, uploadId: string): Promise<void> {
    const dir = await requireUpload(bucket, key, uploadId);
    const marker = Number(queryParam(ctx, 'part-number-marker') ?? 0);
    const maxParts = Math.min(Number(queryParam(ctx, 'max-parts') ?? 1000), 1000);
    const after = (await storedParts(dir)).filter((p) => p.number > marker);
    const page = after.slice(0, maxParts);
    const truncated = after.length > page.length;
    const last = page[page.length - 1];
    sendXml(
      ctx,
      200,
      `<ListPartsResult xmlns="${XMLNS}"><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key>` +
        `<UploadId>${xmlEscape(uploadId)}</UploadId><PartNumberMarker>${marker}</PartNumberMarker>` +
        (truncated && last ? `<NextPartNumberMarker>${last.number}</NextPartNumberMarker>` : '') +
        `<MaxParts>${maxParts}</MaxParts><IsTruncated>${truncated}</IsTruncated><StorageClass>STANDARD</StorageClass>` +
        page
          .map(
            (p) =>
              `<Part><PartNumber>${p.number}</PartNumber><LastModified>${p.lastModified.toISOString()}</LastModified>` +
              `<ETag>&quot;${p.md5}&quot;</ETag><Size>${p.size}</Size></Part>`,
          )
          .join('') +
        '</ListPartsResult>',
    );
  }

  async function complete(ctx: KoaContext, next: () => Promise<void>, bucket: string, key: string, uploadId: string): Promise<void> {
    const dir = await requireUpload(bucket, key, uploadId);
    const body = await readBody(ctx.req);
    const requested = [...body.toString('utf8').matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => {
      const inner = m[1] ?? '';
      const number = Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(inner)?.[1] ?? NaN);
      const etag = xmlUnescape(/<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1] ?? '').replace(/"/g, '').trim();
      return { number, etag };
    });
    if (requested.length === 0 || requested.some((p) => !Number.isInteger(p.number))) {
      throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
    }
    const stored = new Map((await storedParts(dir)).map((p) => [p.number, p]));
    const md5s: Buffer[] = [];
    const sizes: number[] = [];
    let total = 0;
    for (const [i, p] of requested.entries()) {
      const prev = requested[i - 1];
      if (prev && prev.number >= p.number) {
        throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
      }
      const s = stored.get(p.number);
      if (!s || s.md5.toLowerCase() !== p.etag.toLowerCase()) {
        throw new S3Error(
          'InvalidPart',
          "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
          { UploadId: uploadId, PartNumber: p.number, ETag: p.etag },
        );
      }
      if (i < requested.length - 1 && s.size < minPartSize) {
        throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
          ProposedSize: s.size,
          MinSizeAllowed: minPartSize,
          PartNumber: p.number,
        });
      }
      md5s.push(Buffer.from(s.md5, 'hex'));
      sizes.push(s.size);
      total += s.size;
    }
    const upload = await uploadFacts(dir);
    const md5OfMd5s = createHash('md5').update(Buffer.concat(md5s)).digest('hex');
    // SSE-KMS ETags are not MD5s of the bytes: an opaque digest of the same count stands in.
    const multipartEtag = `${upload.kms ? createHash('md5').update(`kms ${uploadId} ${md5OfMd5s}`).digest('hex') : md5OfMd5s}-${requested.length}`;
    let composite: { algorithm: string; value: string; type: 'COMPOSITE' } | undefined;
    if (upload.algorithm) {
      const partChecksums = await Promise.all(
        requested.map((p) => readFile(join(dir, `${p.number}.checksum`), 'utf8').catch(() => undefined)),
      );
      if (partChecksums.some((c) => c === undefined)) {
        throw new S3Error('InvalidRequest', `The upload was created using a ${upload.algorithm} checksum. The complete request must include the checksum for each part.`);
      }
      const raw = Buffer.concat(partChecksums.map((c) => Buffer.from(c!, 'base64')));
      composite = { algorithm: upload.algorithm, value: `${await fullObjectChecksum(upload.algorithm, [raw])}-${requested.length}`, type: 'COMPOSITE' };
    }
    const checksum = requestedChecksum(ctx);
    if (checksum) {
      const parts = await Promise.all(requested.map((p) => readFile(join(dir, String(p.number)))));
      const actual = await fullObjectChecksum(checksum.algorithm, parts);
      if (actual !== checksum.value) {
        throw new S3Error('BadDigest', `The ${checksum.algorithm} you specified did not match the calculated checksum.`);
      }
    }
    replayBody(ctx, body);
    await next();
    if (ctx.status !== 200) return;
    const objectPath = store.getResourcePath(bucket, key, 'object');
    await waitForSize(objectPath, total);
    // s3rver reads an object's ETag from this file, so HEAD/GET/list report the multipart ETag too.
    await writeFile(`${objectPath}.md5`, multipartEtag);
    await keepBeside(objectPath, 'parts', multipartEtag, { sizes });
    const kept = checksum ?? composite;
    if (kept) await keepBeside(objectPath, 'checksum', multipartEtag, kept);
    if (upload.kms) await keepBeside(objectPath, 'sse', multipartEtag, { serverSideEncryption: 'aws:kms' });
    ctx.body = String(ctx.body).replace(/<ETag>[\s\S]*?<\/ETag>/, `<ETag>&quot;${multipartEtag}&quot;</ETag>`);
  }

  /** After s3rver's HEAD or whole-object GET: the object's kept checksum, when asked for and still the object's. */
  /** The current object's ETag, unquoted. */
  async function currentEtag(bucket: string, key: string): Promise<string> {
    return String((await store.getMetadata(bucket, key))['etag']).replace(/"/g, '');
  }

  /**
   * Facts about an object that s3rver does not keep (its part layout, its checksum), written beside it
   * at its complete and stamped with its ETag: an object written later under the key has another ETag,
   * which retires them (keptBeside).
   */
  async function keepBeside(objectPath: string, suffix: string, etag: string, facts: object): Promise<void> {
    await writeFile(`${objectPath}.${suffix}`, JSON.stringify({ ...facts, etag }));
  }

  /** What keepBeside kept for the object now under the key, if anything. */
  async function keptBeside<T>(bucket: string, key: string, suffix: string): Promise<T | undefined> {
    let kept: T & { etag: string };
    try {
      kept = JSON.parse(await readFile(`${store.getResourcePath(bucket, key, 'object')}.${suffix}`, 'utf8')) as T & { etag: string };
    } catch {
      return undefined;
    }
    return kept.etag === (await currentEtag(bucket, key)) ? kept : undefined;
  }

  async function reportChecksum(ctx: KoaContext, bucket: string, key: string): Promise<void> {
    if (ctx.status !== 200 || header(ctx, 'x-amz-checksum-mode')?.toUpperCase() !== 'ENABLED') return;
    const kept = await keptBeside<{ algorithm: string; value: string; type?: string }>(bucket, key, 'checksum');
    if (!kept) return;
    ctx.set(`x-amz-checksum-${kept.algorithm.toLowerCase()}`, kept.value);
    ctx.set('x-amz-checksum-type', kept.type ?? 'FULL_OBJECT');
  }

  async function reportEncryption(ctx: KoaContext, bucket: string, key: string): Promise<void> {
    if (ctx.status !== 200 && ctx.status !== 206) return;
    const kept = await keptBeside<{ serverSideEncryption: string }>(bucket, key, 'sse');
    if (kept) ctx.set('x-amz-server-side-encryption', kept.serverSideEncryption);
  }

  /** What CreateMultipartUpload asked for that s3rver does not keep: a composite checksum algorithm, SSE-KMS. */
  async function uploadFacts(dir: string): Promise<{ algorithm?: (typeof CHECKSUM_ALGORITHMS)[number]; kms: boolean }> {
    try {
      return JSON.parse(await readFile(join(dir, 'facts.json'), 'utf8')) as { algorithm?: (typeof CHECKSUM_ALGORITHMS)[number]; kms: boolean };
    } catch {
      return { kms: false };
    }
  }

  async function createUpload(ctx: KoaContext, next: () => Promise<void>, bucket: string): Promise<void> {
    const requested = header(ctx, 'x-amz-checksum-algorithm')?.toUpperCase();
    const algorithm = CHECKSUM_ALGORITHMS.find((a) => a === requested);
    if (requested !== undefined && (!algorithm || algorithm === 'CRC64NVME')) {
      // CRC64NVME uploads are full-object only; this server keeps composite ones.
      throw new S3Error('InvalidRequest', `Checksum algorithm ${requested} is not supported here as a composite checksum.`);
    }
    const composite = algorithm !== undefined && header(ctx, 'x-amz-checksum-type')?.toUpperCase() !== 'FULL_OBJECT';
    const kms = header(ctx, 'x-amz-server-side-encryption') === 'aws:kms';
    await next();
    if (ctx.status !== 200 || (!composite && !kms)) return;
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(String(ctx.body))?.[1];
    if (!uploadId) return;
    await writeFile(join(uploadDir(bucket, uploadId), 'facts.json'), JSON.stringify({ ...(composite ? { algorithm } : {}), kms }));
  }

  /** A part of an upload with a composite checksum: its checksum must come with it, and is kept for the complete. */
  async function checkPartChecksum(ctx: KoaContext, dir: string): Promise<(() => Promise<void>) | undefined> {
    const { algorithm } = await uploadFacts(dir);
    if (!algorithm) return undefined;
    const sent = header(ctx, `x-amz-checksum-${algorithm.toLowerCase()}`);
    if (sent === undefined) {
      throw new S3Error('InvalidRequest', `The upload was created using a ${algorithm} checksum. The part upload must include the checksum.`);
    }
    const actual = await fullObjectChecksum(algorithm, [await bufferedBody(ctx)]);
    if (actual !== sent) throw new S3Error('BadDigest', `The ${algorithm} you specified did not match the calculated checksum.`);
    return () => writeFile(join(dir, `${queryParam(ctx, 'partNumber')}.checksum`), actual);
  }

  async function headPart(ctx: KoaContext, next: () => Promise<void>, bucket: string, key: string): Promise<void> {
    const raw = queryParam(ctx, 'partNumber');
    const partNumber = Number(raw);
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10000) {
      throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
        ArgumentName: 'partNumber',
        ArgumentValue: String(raw),
      });
    }
    await ifMatch(ctx, bucket, key);
    await next(); // s3rver's HEAD of the whole object: every header but the part's
    if (ctx.status !== 200) return;
    const sizes = (await keptBeside<{ sizes: number[] }>(bucket, key, 'parts'))?.sizes;
    if (!sizes && partNumber === 1) return; // not uploaded in parts: the whole object, no part count
    if (!sizes || partNumber > sizes.length) {
      throw Object.assign(new S3Error('InvalidPartNumber', 'The requested partnumber is not satisfiable', { PartNumberRequested: partNumber }), {
        status: 416,
      });
    }
    const start = sizes.slice(0, partNumber - 1).reduce((a, b) => a + b, 0);
    const length = sizes[partNumber - 1]!;
    const total = sizes.reduce((a, b) => a + b, 0);
    ctx.status = 206;
    ctx.set('Content-Length', String(length));
    ctx.set('Content-Range', `bytes ${start}-${start + length - 1}/${total}`);
    ctx.set('x-amz-mp-parts-count', String(sizes.length));
  }

  async function listObjectsV2(ctx: KoaContext, bucket: string): Promise<void> {
    await requireBucket(bucket);
    const prefix = queryParam(ctx, 'prefix') ?? '';
    const delimiter = queryParam(ctx, 'delimiter') ?? '';
    const startAfter = queryParam(ctx, 'start-after') ?? '';
    const token = queryParam(ctx, 'continuation-token');
    const urlEncoding = queryParam(ctx, 'encoding-type') === 'url';
    const maxKeysRaw = queryParam(ctx, 'max-keys') ?? '1000';
    if (!/^\d+$/.test(maxKeysRaw)) {
      throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', {
        ArgumentName: 'max-keys',
        ArgumentValue: maxKeysRaw,
      });
    }
    const maxKeys = Math.min(Number(maxKeysRaw), 1000);
    let after = startAfter;
    if (token !== undefined) {
      after = Buffer.from(token, 'base64url').toString('utf8');
      if (Buffer.from(after, 'utf8').toString('base64url') !== token) {
        throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
      }
    }
    const afterBytes = Buffer.from(after, 'utf8');

    const root = store.getBucketPath(bucket);
    const keys: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
        const relPath = rel === '' ? entry.name : posix.join(rel, entry.name);
        if (entry.isDirectory()) {
          if (!entry.name.startsWith('._S3rver_')) await walk(relPath);
        } else if (entry.name.endsWith(OBJECT_SUFFIX)) {
          keys.push(relPath.slice(0, -OBJECT_SUFFIX.length));
        }
      }
    };
    await walk('');
    const sorted = keys
      .filter((k) => k.startsWith(prefix) && Buffer.compare(Buffer.from(k, 'utf8'), afterBytes) > 0)
      .map((k) => ({ k, b: Buffer.from(k, 'utf8') }))
      .sort((x, y) => Buffer.compare(x.b, y.b))
      .map((x) => x.k);

    const contents: string[] = [];
    const prefixes: string[] = [];
    let lastReturned: string | undefined;
    let truncated = false;
    for (const key of sorted) {
      const common = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
      const entry = common >= 0 ? key.slice(0, common + delimiter.length) : key;
      if (common >= 0 && prefixes[prefixes.length - 1] === entry) continue;
      if (contents.length + prefixes.length >= maxKeys) {
        truncated = true;
        break;
      }
      if (common >= 0) {
        prefixes.push(entry);
        // Continue after every key under this common prefix.
        lastReturned = entry + '\u{10FFFF}';
      } else {
        contents.push(key);
        lastReturned = key;
      }
    }
    // S3's encoding-type=url is form-style: a space becomes '+', '/' stays as is.
    const enc = (s: string): string =>
      xmlEscape(urlEncoding ? encodeURIComponent(s).replace(/%20/g, '+').replace(/%2F/g, '/') : s);
    const items = await Promise.all(
      contents.map(async (key) => {
        const meta = await store.getMetadata(bucket, key);
        const storageClass = String(meta['x-amz-storage-class'] ?? 'STANDARD');
        return (
          `<Contents><Key>${enc(key)}</Key><LastModified>${new Date(String(meta['last-modified'])).toISOString()}</LastModified>` +
          `<ETag>${xmlEscape(String(meta['etag']))}</ETag><Size>${meta['content-length']}</Size>` +
          `<StorageClass>${xmlEscape(storageClass)}</StorageClass></Contents>`
        );
      }),
    );
    sendXml(
      ctx,
      200,
      `<ListBucketResult xmlns="${XMLNS}"><Name>${xmlEscape(bucket)}</Name><Prefix>${enc(prefix)}</Prefix>` +
        (delimiter ? `<Delimiter>${enc(delimiter)}</Delimiter>` : '') +
        `<MaxKeys>${maxKeys}</MaxKeys><KeyCount>${contents.length + prefixes.length}</KeyCount>` +
        `<IsTruncated>${truncated}</IsTruncated>` +
        (urlEncoding ? '<EncodingType>url</EncodingType>' : '') +
        (token !== undefined ? `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>` : '') +
        (startAfter && token === undefined ? `<StartAfter>${enc(startAfter)}</StartAfter>` : '') +
        (truncated && lastReturned !== undefined
          ? `<NextContinuationToken>${Buffer.from(lastReturned, 'utf8').toString('base64url')}</NextContinuationToken>`
          : '') +
        items.join('') +
        prefixes.map((p) => `<CommonPrefixes><Prefix>${enc(p)}</Prefix></CommonPrefixes>`).join('') +
        '</ListBucketResult>',
    );
  }

  return async function s3Compatibility(ctx, next) {
    // Only path-style requests (what the tests and forcePathStyle clients send).
    if (!(isIP(ctx.hostname) || ctx.hostname === 'localhost')) return next();
    const m = /^\/([^/]+)(?:\/(.*))?$/s.exec(ctx.path);
    if (!m || m[1] === undefined) return next();
    const bucket = decodeURIComponent(m[1]);
    const key = m[2] ? decodeURIComponent(m[2]) : undefined;

    // The routes below bypass or precede s3rver's authentication; keep its one check.
    const ak = accessKeyOf(ctx);
    if (ak !== undefined && !accountRegistry.has(ak)) {
      throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
        AWSAccessKeyId: ak,
      });
    }

    if (key === undefined) {
      if (ctx.method === 'GET' && queryParam(ctx, 'list-type') === '2') return listObjectsV2(ctx, bucket);
      return next();
    }

    const uploadId = queryParam(ctx, 'uploadId');
    if (uploadId !== undefined) {
      await requireBucket(bucket);
      switch (ctx.method) {
        case 'GET':
          return listParts(ctx, bucket, key, uploadId);
        case 'DELETE': {
          const dir = await requireUpload(bucket, key, uploadId);
          await rm(dir, { recursive: true, force: true });
          ctx.status = 204;
          return;
        }
        case 'POST':
          return complete(ctx, next, bucket, key, uploadId);
        case 'PUT': {
          if (header(ctx, 'x-amz-copy-source') !== undefined) return next();
          const dir = await requireUpload(bucket, key, uploadId);
          const partNumber = Number(queryParam(ctx, 'partNumber'));
          if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10000) {
            throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
              ArgumentName: 'partNumber',
              ArgumentValue: String(queryParam(ctx, 'partNumber')),
            });
          }
          const size = await checkContentMd5(ctx);
          await checkPayloadSha256(ctx);
          const keepChecksum = await checkPartChecksum(ctx, dir);
          await next();
          if (ctx.status === 200 && size !== undefined) await waitForSize(join(uploadDir(bucket, uploadId), String(partNumber)), size);
          if (ctx.status === 200) await keepChecksum?.();
          return;
        }
        default:
          return next();
      }
    }

    if (ctx.method === 'POST' && hasQuery(ctx, 'uploads')) return createUpload(ctx, next, bucket);
    if (ctx.method === 'HEAD' && hasQuery(ctx, 'partNumber')) return headPart(ctx, next, bucket, key);
    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && !hasQuery(ctx, 'tagging') && !hasQuery(ctx, 'acl')) {
      await ifMatch(ctx, bucket, key);
      await next();
      if (header(ctx, 'range') === undefined) await reportChecksum(ctx, bucket, key);
      await reportEncryption(ctx, bucket, key);
      return;
    }
    if (
      ctx.method === 'PUT' &&
      !['tagging', 'acl', 'uploads', 'partNumber'].some((q) => hasQuery(ctx, q)) &&
      header(ctx, 'x-amz-copy-source') === undefined
    ) {
      await requireBucket(bucket);
      const size = await checkContentMd5(ctx);
      await checkPayloadSha256(ctx);
      await next();
      if (ctx.status === 200 && size !== undefined) await waitForSize(store.getResourcePath(bucket, key, 'object'), size);
      return;
    }
    return next();
  };
}
