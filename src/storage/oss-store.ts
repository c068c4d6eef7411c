/**
 * ObjectStore over Alibaba Cloud OSS (ali-oss 6.x, OSS V1 signatures).
 *
 * ali-oss quirks this adapter works around:
 *  - `uploadPart(name, uploadId, partNo, file, start, end)` wants a file path
 *    (it opens a read stream on it). A Buffer part goes through the client's
 *    request layer instead, with `content` = the buffer, so the exact bytes
 *    and our Content-MD5 are sent (and the SDK can resend them if needed).
 *  - `getStream` turns every error status into a body-less error (404 →
 *    NoSuchKey, 412 → PreconditionFailed, anything else "Unknow error"), so an
 *    archived object (403 InvalidObjectState) would look like AccessDenied.
 *    get() therefore issues the GET itself, accepts any status and parses the
 *    OSS error XML on failure.
 *  - `listV2` drops the response's EncodingType, which we need to decode
 *    url-encoded keys safely; listPage() issues the request itself.
 *  - Object names are stripped of leading "/" by the client; OSS forbids such
 *    names anyway, so we refuse them instead of silently addressing another key.
 *  - With an IP endpoint (http://127.0.0.1:PORT) ali-oss keeps the bucket out
 *    of the URL and sends `Host: {bucket}.{region}.aliyuncs.com`.
 *  - Network failures carry status -1 (request error) or -2 (connect timeout);
 *    a response timeout carries no status at all.
 *  - ali-oss 6.23 performs no CRC-64 check of its own on these calls, so there
 *    is nothing to disable; we report the server's `x-oss-hash-crc64ecma` and
 *    the replication layer compares it with what it computed.
 *  - By default all clients share one module-level keep-alive agent; we give
 *    each store its own so close() can release its sockets.
 *  - Non-ASCII header values (Chinese metadata, UTF-8 filenames) need
 *    headerEncoding 'latin1', and a UTF-8 Content-Disposition needs a streamed
 *    body because of a node:http quirk; see the constructor and put().
 *  - ali-oss hands `httpsAgent` to urllib, and node merges an agent's own
 *    options over the request's, so a `ca` on our https agent is what the TLS
 *    handshake verifies against (a task's `caBundleFile`).
 *  - Server-side encryption: `x-oss-server-side-encryption` (AES256 | KMS) and
 *    `-key-id` on PutObject and InitiateMultipartUpload (parts inherit it). OSS
 *    has no customer-provided keys (SSE-C): asking for one is refused.
 */
import { Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import OSS from 'ali-oss';
import { checkListedKey, codeFromStatus, StorageError } from './errors.js';
import { wireToText } from './s3-store.js';
import type {
  GetOptions,
  HeadOptions,
  ListedObject,
  ListPage,
  MultipartUploadInfo,
  ObjectHead,
  ObjectStore,
  OpenedObject,
  PartInfo,
  PutOptions,
  ServerSideEncryption,
  StorageClass,
  WriteResult,
} from './object-store.js';
import { unquoteEtag } from './etag.js';

export interface OssStoreOptions {
  bucket: string;
  /** e.g. "oss-cn-hangzhou"; with an IP endpoint it also names the virtual Host ali-oss sends. */
  region: string;
  endpoint?: string;
  credentials: { accessKeyId: string; accessKeySecret: string; securityToken?: string };
  /** https when the endpoint has no scheme (or there is no endpoint). Default true (ali-oss's own default is http). */
  secure?: boolean;
  /**
   * Time allowed to connect, and then to send the request body and receive the
   * response headers (ali-oss/urllib semantics, so it must cover a whole part
   * upload). A GET body that stays idle this long also fails. Default 300 s.
   */
  timeoutMs?: number;
  /** Per-host socket limit of the keep-alive agent. Default 64. */
  maxSockets?: number;
  /** PEM CA certificate(s) that https endpoints must chain to, instead of the default roots. */
  ca?: string | Buffer;
  /** Server-side encryption of every write unless PutOptions.encryption says otherwise. */
  encryption?: ServerSideEncryption;
}

/** The `x-oss-server-side-encryption[-key-id]` headers for `encryption`; refuses S3-only modes. */
export function ossEncryptionHeaders(encryption: ServerSideEncryption | null | undefined): Record<string, string> {
  if (!encryption) return {};
  if (encryption.mode !== 'AES256' && encryption.mode !== 'KMS') {
    throw new StorageError('InvalidRequest', `OSS does not support server-side encryption mode ${encryption.mode} (use AES256 or KMS)`);
  }
  if (encryption.keyId !== undefined && encryption.mode !== 'KMS') {
    throw new StorageError('InvalidRequest', 'an OSS KMS key id needs server-side encryption mode KMS');
  }
  return {
    'x-oss-server-side-encryption': encryption.mode,
    ...(encryption.keyId !== undefined ? { 'x-oss-server-side-encryption-key-id': encryption.keyId } : {}),
  };
}

type HeaderBag = Record<string, string | string[] | undefined>;

/** The request-level parts of ali-oss we use; not in @types/ali-oss but stable across 6.x. */
interface OssRequestParams {
  object?: string;
  bucket?: string;
  method: string;
  subres?: Record<string, string | number> | string;
  headers?: Record<string, string | number>;
  query?: Record<string, string | number>;
  content?: Buffer;
  mime?: string;
  successStatuses?: number[];
  xmlResponse?: boolean;
  customResponse?: boolean;
  timeout?: number;
}

interface OssRawResult {
  status: number;
  headers: HeaderBag;
  data: unknown;
  res: IncomingMessage & { status?: number; headers: HeaderBag };
}

interface OssInternals {
  request(params: OssRequestParams): Promise<OssRawResult>;
  _objectRequestParams(
    method: string,
    name: string,
    options?: { subres?: Record<string, string | number>; headers?: Record<string, string | number>; timeout?: number },
  ): OssRequestParams;
  parseXML(data: Buffer | string): Promise<unknown>;
}

/** Fields of ali-oss / urllib errors we read. */
interface OssErrorLike {
  name?: string;
  code?: string;
  status?: number;
  message?: string;
  requestId?: string;
}

/** Translate an ali-oss / urllib error into a StorageError. */
export function ossError(err: unknown, operation: string, where: string): StorageError {
  if (err instanceof StorageError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as OssErrorLike;
  const status = typeof e.status === 'number' && e.status > 0 ? e.status : undefined;
  let providerCode = e.code ?? e.name;
  let code;
  if (status === undefined) {
    // No HTTP answer: -1 request error, -2 / ResponseTimeoutError / SocketAssignTimeoutError timeouts;
    // a TypeError is node refusing to send the request at all (retrying cannot help).
    code =
      e.name === 'TypeError' || e.code === 'TypeError'
        ? ('InvalidRequest' as const)
        : e.status === -2 || /timeout/i.test(e.name ?? '')
          ? ('Timeout' as const)
          : ('NetworkError' as const);
    providerCode = e.name ?? e.code;
  } else {
    code = codeFromStatus(status, e.code);
  }
  const message = (e.message ?? String(providerCode ?? 'unknown error')).split('\n')[0] ?? '';
  return new StorageError(code, `OSS ${operation} ${where}: ${message}`, status, providerCode, { cause: err });
}

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** OSS → neutral. */
export function fromOssStorageClass(raw: string | undefined): StorageClass {
  switch (raw ?? 'Standard') {
    case 'Standard':
      return 'STANDARD';
    case 'IA':
      return 'STANDARD_IA';
    case 'Archive':
    case 'ColdArchive':
    case 'DeepColdArchive':
      return 'ARCHIVE';
    default:
      return 'OTHER';
  }
}

function toOssStorageClass(c: StorageClass | undefined): string | undefined {
  switch (c) {
    case 'STANDARD':
      return 'Standard';
    case 'STANDARD_IA':
      return 'IA';
    case 'ARCHIVE':
      return 'Archive';
    default:
      return undefined;
  }
}

function needsRestoreClass(raw: string): boolean {
  return raw === 'Archive' || raw === 'ColdArchive' || raw === 'DeepColdArchive';
}

function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m?.[1]
    ?.replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** xml2js (explicitArray: false) gives an object for one element and an array for several. */
function asArray<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function checkRange(range: { start: number; end: number }): string {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new StorageError('InvalidRequest', `invalid byte range ${start}-${end}`);
  }
  return `bytes=${start}-${end}`;
}

/** Read a small body; beyond `limit` bytes either stop (error bodies) or fail (size mismatch). */
async function readAll(stream: Readable, limit: number, onExceed: 'truncate' | 'throw'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const c = chunk as Buffer;
    total += c.length;
    if (total > limit) {
      stream.destroy();
      if (onExceed === 'throw') throw new StorageError('InvalidRequest', `body is longer than the ${limit} bytes announced`);
      break;
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** The ObjectHead of what a HEAD or a whole-object GET answered (the same headers). */
function headFromHeaders(key: string, h: HeaderBag): ObjectHead {
  const etag = unquoteEtag(header(h, 'etag'));
  const rawClass = header(h, 'x-oss-storage-class') ?? 'Standard';
  const restore = header(h, 'x-oss-restore');
  const objectType = header(h, 'x-oss-object-type');
  const userMetadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith('x-oss-meta-') && value !== undefined) {
      // OSS sends metadata as raw UTF-8 bytes, which node decoded as latin1.
      userMetadata[name.slice('x-oss-meta-'.length).toLowerCase()] = wireToText(Array.isArray(value) ? value.join(',') : value);
    }
  }
  const lastModified = header(h, 'last-modified');
  const out: ObjectHead = {
    key,
    size: Number(header(h, 'content-length') ?? 0),
    etag,
    lastModified: lastModified ? new Date(lastModified) : new Date(0),
    userMetadata,
    storageClass: fromOssStorageClass(rawClass),
    rawStorageClass: rawClass,
    // Multipart and appendable objects' ETags are not the MD5 of the bytes; nor,
    // conservatively, are KMS-encrypted ones (OSS's CRC-64 still verifies those).
    multipartEtag:
      /-\d+$/.test(etag) ||
      objectType === 'Multipart' ||
      objectType === 'Appendable' ||
      header(h, 'x-oss-server-side-encryption') === 'KMS',
    needsRestore: needsRestoreClass(rawClass) && !(restore !== undefined && /ongoing-request\s*=\s*"false"/i.test(restore)),
    restoreInProgress: restore !== undefined && /ongoing-request\s*=\s*"true"/i.test(restore),
  };
  const crc64 = header(h, 'x-oss-hash-crc64ecma');
  if (crc64 !== undefined) out.crc64 = crc64;
  const sse = header(h, 'x-oss-server-side-encryption');
  if (sse !== undefined) out.serverSideEncryption = sse;
  const sseKey = header(h, 'x-oss-server-side-encryption-key-id');
  if (sseKey !== undefined) out.sseKmsKeyId = sseKey;
  const set = (field: 'contentType' | 'contentEncoding' | 'contentDisposition' | 'contentLanguage' | 'cacheControl' | 'expires', name: string): void => {
    const v = header(h, name);
    if (v !== undefined) out[field] = wireToText(v);
  };
  set('contentType', 'content-type');
  set('contentEncoding', 'content-encoding');
  set('contentDisposition', 'content-disposition');
  set('contentLanguage', 'content-language');
  set('cacheControl', 'cache-control');
  set('expires', 'expires');
  return out;
}

export class OssStore implements ObjectStore {
  readonly provider = 'oss' as const;
  readonly bucket: string;
  readonly #client: OSS;
  readonly #internals: OssInternals;
  readonly #agents: [HttpAgent, HttpsAgent];
  readonly #timeoutMs: number;
  readonly #encryption: ServerSideEncryption | undefined;
  #bucketSeen = false;

  constructor(options: OssStoreOptions) {
    this.bucket = options.bucket;
    this.#timeoutMs = options.timeoutMs ?? 300_000;
    // Checked now: a bad mode must fail the store's creation, never a write later.
    ossEncryptionHeaders(options.encryption);
    this.#encryption = options.encryption;
    const maxSockets = options.maxSockets ?? 64;
    const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: Math.min(maxSockets, 32) };
    this.#agents = [
      new HttpAgent(agentOptions),
      new HttpsAgent({ ...agentOptions, ...(options.ca !== undefined ? { ca: options.ca } : {}), rejectUnauthorized: true }),
    ];
    const clientOptions: OSS.Options & {
      agent: HttpAgent;
      httpsAgent: HttpsAgent;
      retryMax: number;
      headerEncoding: string;
      refreshSTSTokenInterval?: number;
    } = {
      bucket: options.bucket,
      region: options.region,
      accessKeyId: options.credentials.accessKeyId,
      accessKeySecret: options.credentials.accessKeySecret,
      // https unless the endpoint names its scheme; ali-oss itself defaults to http.
      secure: options.secure ?? true,
      timeout: this.#timeoutMs,
      agent: this.#agents[0],
      httpsAgent: this.#agents[1],
      // The replication layer owns retries. (And a create retried here could make a second upload
      // while the first one's answer is lost: ObjectStore.createMultipartUpload.)
      retryMax: 0,
      // V1 signatures: what ali-oss defaults to and every OSS endpoint accepts.
      authorizationV4: false,
      // With the default 'utf-8' ali-oss hands header strings to node:http as
      // they are, and node refuses any character above U+00FF (Chinese
      // metadata, a UTF-8 filename in Content-Disposition). 'latin1' makes it
      // send the UTF-8 bytes and sign those same bytes, which is what OSS stores.
      headerEncoding: 'latin1',
    };
    if (options.endpoint !== undefined) clientOptions.endpoint = options.endpoint;
    if (options.credentials.securityToken !== undefined) {
      clientOptions.stsToken = options.credentials.securityToken;
      // Only silences ali-oss's "set refreshSTSToken" console warning; without a
      // refresh function the interval is never used. Rotation = a new store.
      clientOptions.refreshSTSTokenInterval = 3_600_000;
    }
    this.#client = new OSS(clientOptions);
    const internals = this.#client as unknown as Partial<OssInternals>;
    if (
      typeof internals.request !== 'function' ||
      typeof internals._objectRequestParams !== 'function' ||
      typeof internals.parseXML !== 'function'
    ) {
      throw new Error('ali-oss client lacks request/_objectRequestParams/parseXML: unsupported ali-oss version');
    }
    this.#internals = internals as OssInternals;
  }

  #where(key?: string): string {
    return key === undefined ? `oss://${this.bucket}` : `oss://${this.bucket}/${key}`;
  }

  /** ali-oss strips leading slashes from names; OSS forbids them, so refuse rather than touch another key. */
  #checkKey(key: string, operation: string): void {
    if (key === '' || key.startsWith('/') || key.startsWith('\\')) {
      throw new StorageError('InvalidRequest', `OSS ${operation} ${this.#where(key)}: OSS object names cannot be empty or start with / or \\`);
    }
  }

  async #call<T>(operation: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    if (key !== undefined) this.#checkKey(key, operation);
    try {
      return await run();
    } catch (err) {
      throw ossError(err, operation, this.#where(key));
    }
  }

  #params(
    method: string,
    key: string,
    options: { subres?: Record<string, string | number>; headers?: Record<string, string | number> } = {},
  ): OssRequestParams {
    return this.#internals._objectRequestParams.call(this.#client, method, key, options);
  }

  /** See S3Store: a bare 404 on HEAD must not be mistaken for "deleted" when the bucket is missing. */
  async #checkBucketAfter404(): Promise<void> {
    if (this.#bucketSeen) return;
    try {
      await this.#internals.request.call(this.#client, {
        ...this.#params('GET', ''),
        query: { 'list-type': 2, 'max-keys': 1 },
        successStatuses: [200],
      });
      this.#bucketSeen = true;
    } catch (err) {
      const e = ossError(err, 'ListObjectsV2', this.#where());
      if (e.code === 'NoSuchBucket') throw e;
      if (e.status === 403) this.#bucketSeen = true;
      else throw e;
    }
  }

  async head(key: string, options: HeadOptions = {}): Promise<ObjectHead | null> {
    this.#checkKey(key, 'HeadObject');
    this.#noCustomerKey(options.sseCustomerKey, key);
    let result;
    try {
      result = await this.#client.head(key);
    } catch (err) {
      const e = ossError(err, 'HeadObject', this.#where(key));
      if (e.status === 404 && e.code !== 'NoSuchBucket') {
        await this.#checkBucketAfter404();
        return null;
      }
      throw e;
    }
    this.#bucketSeen = true;
    return headFromHeaders(key, result.res.headers as HeaderBag);
  }

  #noCustomerKey(key: Buffer | undefined, objectKey: string): void {
    if (key !== undefined) {
      throw new StorageError('InvalidRequest', `OSS ${this.#where(objectKey)}: OSS has no customer-provided keys (SSE-C)`);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    this.#checkKey(key, 'GetObject');
    this.#noCustomerKey(options.sseCustomerKey, key);
    return (await this.#getObject(key, options)).body;
  }

  async open(key: string, options: HeadOptions = {}): Promise<OpenedObject | null> {
    this.#checkKey(key, 'GetObject');
    this.#noCustomerKey(options.sseCustomerKey, key);
    let opened;
    try {
      opened = await this.#getObject(key, {});
    } catch (err) {
      if (err instanceof StorageError && err.code === 'NoSuchKey') {
        await this.#checkBucketAfter404();
        return null;
      }
      throw err;
    }
    this.#bucketSeen = true;
    return { head: headFromHeaders(key, opened.headers), body: opened.body };
  }

  /** GetObject: the answer's headers and a body stream that fails with StorageErrors (idle timeout, cut connection). */
  async #getObject(key: string, options: GetOptions): Promise<{ headers: HeaderBag; body: Readable }> {
    const where = this.#where(key);
    const range = options.range ? checkRange(options.range) : undefined;
    const headers: Record<string, string> = {};
    if (range !== undefined) headers['Range'] = range;
    if (options.ifMatch !== undefined) headers['If-Match'] = options.ifMatch.startsWith('"') ? options.ifMatch : `"${options.ifMatch}"`;
    let result: OssRawResult;
    try {
      // No successStatuses: ali-oss then hands back every answer with its body unread.
      result = await this.#internals.request.call(this.#client, { ...this.#params('GET', key, { headers }), customResponse: true });
    } catch (err) {
      throw ossError(err, 'GetObject', where);
    }
    const res = result.res;
    const status = result.status;
    if (status !== 200 && status !== 206) {
      const xml = (await readAll(res, 64 * 1024, 'truncate').catch(() => Buffer.alloc(0))).toString('utf8');
      const code = xmlText(xml, 'Code');
      const message = xmlText(xml, 'Message') ?? `HTTP ${status}`;
      throw new StorageError(codeFromStatus(status, code), `OSS GetObject ${where}: ${message}`, status, code);
    }
    if (range !== undefined && status !== 206) {
      // OSS ignores an unsatisfiable or malformed Range and sends the whole object.
      res.destroy();
      throw new StorageError('InvalidRequest', `OSS GetObject ${where}: the store ignored Range ${range} (HTTP ${status})`, status);
    }
    const out = new PassThrough({ highWaterMark: 256 * 1024 });
    // The first failure wins: destroying `res` on a timeout also emits 'aborted'.
    let failed = false;
    const fail = (err: StorageError): void => {
      if (failed) return;
      failed = true;
      out.destroy(err);
      if (!res.destroyed) res.destroy();
    };
    // urllib stops timing once the headers arrive; keep a stalled body from hanging forever.
    res.setTimeout(this.#timeoutMs, () => fail(new StorageError('Timeout', `OSS GetObject ${where}: body idle for ${this.#timeoutMs} ms`)));
    res.on('error', (err) => fail(ossError(err, 'GetObject (body)', where)));
    res.on('aborted', () => fail(new StorageError('NetworkError', `OSS GetObject ${where}: connection closed mid-body`)));
    out.on('close', () => {
      if (!res.readableEnded && !res.destroyed) res.destroy();
    });
    res.pipe(out);
    return { headers: res.headers as HeaderBag, body: out };
  }

  #writeHeaders(options: PutOptions): Record<string, string> {
    // The call's choice (null = none), else the store's default.
    const headers: Record<string, string> = ossEncryptionHeaders(options.encryption === undefined ? this.#encryption : options.encryption);
    if (options.contentType !== undefined) headers['Content-Type'] = options.contentType;
    if (options.contentEncoding !== undefined) headers['Content-Encoding'] = options.contentEncoding;
    if (options.contentDisposition !== undefined) headers['Content-Disposition'] = options.contentDisposition;
    if (options.contentLanguage !== undefined) headers['Content-Language'] = options.contentLanguage;
    if (options.cacheControl !== undefined) headers['Cache-Control'] = options.cacheControl;
    if (options.expires !== undefined) headers['Expires'] = options.expires;
    const storageClass = toOssStorageClass(options.storageClass);
    if (storageClass !== undefined) headers['x-oss-storage-class'] = storageClass;
    return headers;
  }

  #writeResult(headers: HeaderBag, body?: unknown): WriteResult {
    let etag = header(headers, 'etag');
    if (etag === undefined && Buffer.isBuffer(body)) etag = xmlText(body.toString('utf8'), 'ETag');
    const result: WriteResult = { etag: unquoteEtag(etag) };
    const crc64 = header(headers, 'x-oss-hash-crc64ecma');
    if (crc64 !== undefined) result.crc64 = crc64;
    if (header(headers, 'x-oss-server-side-encryption') === 'KMS') result.etagIsMd5 = false;
    return result;
  }

  async put(key: string, body: Readable | Buffer, size: number, options: PutOptions = {}): Promise<WriteResult> {
    return this.#call('PutObject', key, async () => {
      // 'Content-MD5' spelled exactly so: ali-oss computes its own unless it finds this key.
      const headers = { ...this.#writeHeaders(options), ...(options.contentMd5 !== undefined ? { 'Content-MD5': options.contentMd5 } : {}) };
      const putOptions = { headers, ...(options.userMetadata !== undefined ? { meta: options.userMetadata } : {}) };
      let buffer: Buffer | undefined = Buffer.isBuffer(body) ? body : undefined;
      // Node (>= 18.15, nodejs/node#46528) re-encodes a Content-Disposition header
      // when the body length is known up front (req.end(buffer)), which mangles the
      // UTF-8 bytes ali-oss sends for a non-ASCII filename. Streamed bodies are not
      // affected, so such uploads go through putStream.
      if (buffer !== undefined && buffer.length > 0 && /[^\x20-\x7e\t]/.test(options.contentDisposition ?? '')) {
        if (buffer.length !== size) throw new StorageError('InvalidRequest', `body is ${buffer.length} bytes, size says ${size}`);
        body = Readable.from([buffer]);
        buffer = undefined;
      }
      // putStream treats contentLength 0 as "unknown" and switches to chunked encoding.
      if (buffer === undefined && size === 0) buffer = await readAll(body as Readable, 0, 'throw');
      if (buffer !== undefined) {
        if (buffer.length !== size) throw new StorageError('InvalidRequest', `body is ${buffer.length} bytes, size says ${size}`);
        // ali-oss's types declare meta values as numbers; OSS takes strings.
        const result = await this.#client.put(key, buffer, putOptions as OSS.PutObjectOptions);
        return this.#writeResult(result.res.headers as HeaderBag);
      }
      const result = await this.#client.putStream(key, body, { ...putOptions, contentLength: size } as OSS.PutStreamOptions);
      return this.#writeResult(result.res.headers as HeaderBag);
    });
  }

  async createMultipartUpload(key: string, options: PutOptions = {}): Promise<string> {
    return this.#call('InitiateMultipartUpload', key, async () => {
      const result = await this.#client.initMultipartUpload(key, {
        headers: this.#writeHeaders(options),
        ...(options.userMetadata !== undefined ? { meta: options.userMetadata } : {}),
      } as OSS.InitMultipartUploadOptions);
      if (!result.uploadId) throw new StorageError('Unknown', 'no UploadId in the answer');
      return result.uploadId;
    });
  }

  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
    options: { contentMd5?: string } = {},
  ): Promise<WriteResult> {
    return this.#call(`UploadPart #${partNumber}`, key, async () => {
      const headers: Record<string, string | number> = { 'Content-Length': body.length };
      if (options.contentMd5 !== undefined) headers['Content-MD5'] = options.contentMd5;
      const result = await this.#internals.request.call(this.#client, {
        ...this.#params('PUT', key, { subres: { partNumber, uploadId }, headers }),
        content: body,
        successStatuses: [200],
      });
      return this.#writeResult(result.headers);
    });
  }

  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
  ): Promise<WriteResult> {
    return this.#call('CompleteMultipartUpload', key, async () => {
      const result = await this.#client.completeMultipartUpload(
        key,
        uploadId,
        parts.map((p) => ({ number: p.partNumber, etag: p.etag.startsWith('"') ? p.etag : `"${p.etag}"` })),
      );
      const res = result.res as { headers: HeaderBag; data?: unknown };
      return this.#writeResult(res.headers, res.data);
    });
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    await this.#call('AbortMultipartUpload', key, () => this.#client.abortMultipartUpload(key, uploadId));
  }

  async listMultipartUploads(key: string): Promise<MultipartUploadInfo[]> {
    return this.#call('ListMultipartUploads', key, async () => {
      const uploads: MultipartUploadInfo[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (let page = 0; page < 100; page++) {
        const query: Record<string, string> = { prefix: key, 'max-uploads': '1000' };
        if (keyMarker !== undefined) query['key-marker'] = keyMarker;
        if (uploadIdMarker !== undefined) query['upload-id-marker'] = uploadIdMarker;
        // @types/ali-oss marks every query field required; OSS treats them all as optional.
        const result = await this.#client.listUploads(query as unknown as OSS.ListUploadsQuery);
        for (const u of result.uploads as unknown as { name: string; uploadId: string; initiated?: string }[]) {
          checkListedKey(u.name, key, `OSS ListMultipartUploads ${this.#where(key)}`);
          if (u.name !== key || !u.uploadId) continue;
          const initiated = u.initiated ? new Date(u.initiated) : undefined;
          uploads.push({ uploadId: u.uploadId, ...(initiated && !Number.isNaN(initiated.getTime()) ? { initiated } : {}) });
        }
        const r = result as unknown as { isTruncated?: boolean; nextKeyMarker?: string; nextUploadIdMarker?: string };
        if (!r.isTruncated) return uploads;
        // Truncated, yet no marker to go on from: a partial answer must not pass for the whole list.
        if (r.nextKeyMarker === keyMarker && r.nextUploadIdMarker === uploadIdMarker) break;
        keyMarker = r.nextKeyMarker;
        uploadIdMarker = r.nextUploadIdMarker;
      }
      throw new StorageError('IntegrityMismatch', `OSS ListMultipartUploads ${this.#where(key)}: the listing is truncated and cannot be followed to its end`);
    });
  }

  async listParts(key: string, uploadId: string): Promise<PartInfo[]> {
    return this.#call('ListParts', key, async () => {
      const parts: PartInfo[] = [];
      let marker: string | undefined;
      for (;;) {
        const query: Record<string, string> = { 'max-parts': '1000' };
        if (marker !== undefined) query['part-number-marker'] = marker;
        // @types/ali-oss marks every query field required; OSS treats them all as optional.
        const result = await this.#client.listParts(key, uploadId, query as unknown as OSS.ListPartsQuery);
        const page = asArray(result.parts as unknown as { PartNumber: string; ETag: string; Size: string } | { PartNumber: string; ETag: string; Size: string }[]);
        for (const p of page) parts.push({ partNumber: Number(p.PartNumber), etag: unquoteEtag(p.ETag), size: Number(p.Size) });
        const next = result.nextPartNumberMarker === undefined ? undefined : String(result.nextPartNumberMarker);
        const truncated = String(result.isTruncated) === 'true';
        if (!truncated || next === undefined || next === '' || next === marker) break;
        marker = next;
      }
      return parts.sort((a, b) => a.partNumber - b.partNumber);
    });
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#call('DeleteObject', key, () => this.#client.delete(key));
    } catch (err) {
      // OSS answers 204 for a missing key; accept NoSuchKey from stores that don't.
      if (err instanceof StorageError && err.code === 'NoSuchKey' && err.providerCode !== 'NoSuchBucket') return;
      throw err;
    }
  }

  async listPage(options: { prefix?: string; startAfter?: string; token?: string; maxKeys?: number }): Promise<ListPage> {
    return this.#call('ListObjectsV2', undefined, async () => {
      const query: Record<string, string | number> = {
        'list-type': 2,
        // url encoding keeps keys with characters XML 1.0 cannot carry listable.
        'encoding-type': 'url',
        'max-keys': options.maxKeys ?? 1000,
      };
      if (options.prefix !== undefined) query['prefix'] = options.prefix;
      if (options.startAfter !== undefined) query['start-after'] = options.startAfter;
      // OSS signs continuation-token as a sub-resource (as ali-oss's listV2 does).
      const subres = options.token !== undefined ? { 'continuation-token': options.token } : undefined;
      const result = await this.#internals.request.call(this.#client, {
        ...this.#params('GET', '', subres ? { subres } : {}),
        query,
        xmlResponse: true,
        successStatuses: [200],
      });
      const data = (result.data ?? {}) as {
        EncodingType?: string;
        IsTruncated?: string;
        NextContinuationToken?: string;
        Contents?: OssListEntry | OssListEntry[];
      };
      const encoded = data.EncodingType === 'url';
      const decode = (k: string): string => (encoded ? decodeURIComponent(k.replace(/\+/g, ' ')) : k);
      const objects: ListedObject[] = asArray(data.Contents).map((o) => ({
        key: decode(o.Key),
        size: Number(o.Size),
        etag: unquoteEtag(o.ETag),
        lastModified: new Date(o.LastModified),
        storageClass: fromOssStorageClass(o.StorageClass),
      }));
      const page: ListPage = { objects };
      if (data.IsTruncated === 'true' && data.NextContinuationToken) page.nextToken = data.NextContinuationToken;
      return page;
    });
  }

  async restore(key: string, days: number): Promise<void> {
    try {
      await this.#call('RestoreObject', key, () => this.#client.restore(key, { Days: days } as OSS.RequestOptions));
    } catch (err) {
      if (err instanceof StorageError) {
        // Already under way: the restore we asked for is happening.
        if (err.providerCode === 'RestoreAlreadyInProgress') return;
        // OSS answers 200 (not 202) when the object is already restored; ali-oss expects 202 only.
        if (err.status === 200) return;
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    for (const agent of this.#agents) agent.destroy();
  }
}

interface OssListEntry {
  Key: string;
  Size: string;
  ETag: string;
  LastModified: string;
  StorageClass?: string;
}
