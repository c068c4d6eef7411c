/**
 * ObjectStore over AWS S3 and S3-compatible stores (@aws-sdk/client-s3 v3).
 *
 * Choices that are not obvious from the SDK's documentation:
 *  - requestChecksumCalculation / responseChecksumValidation = WHEN_REQUIRED:
 *    since 3.729 the SDK adds CRC32 trailers (aws-chunked encoding) to every
 *    PutObject/UploadPart and validates response checksums. S3-compatible stores
 *    (s3rver, older MinIO/Ceph, many vendors) do not understand aws-chunked and
 *    would store the chunk framing as object bytes. We verify integrity
 *    ourselves (Content-MD5 on writes, MD5/CRC-64 comparisons in replication).
 *  - maxAttempts 2: the replication layer owns retries (with backoff and
 *    markers); SDK retries only smooth over one dropped keep-alive socket.
 *    Streaming bodies are never retried by the SDK.
 *  - socketTimeout (idle) rather than requestTimeout: in this SDK version
 *    requestTimeout bounds the time until the response headers, which for a
 *    large PUT includes the whole upload; an idle timeout also covers a GET body
 *    that stalls mid-stream.
 *  - S3's x-amz-checksum-crc64nvme is NOT the CRC-64/XZ OSS reports; it never
 *    goes into ObjectHead.crc64.
 *  - AWS_CA_BUNDLE: SDK v3 for JavaScript does not read it (only v2 and the CLI
 *    did), so it cannot break plain-http endpoints; custom CAs go through
 *    NODE_EXTRA_CA_CERTS or an https agent. A task's `caBundleFile` becomes the
 *    `ca` of this store's https agent (replacing the default roots, as curl's
 *    --cacert does); certificates are always verified.
 *  - SSE-C: S3 answers a HEAD of an SSE-C object without the key with a bare
 *    400 (no body), and a GET with 400 InvalidRequest "...stored using a form of
 *    Server Side Encryption...". Sending SSE-C headers for an object that is NOT
 *    SSE-C is also a 400, so a store given a customer key reads plainly first
 *    and retries with the key only when refused. Without a key, a 400 HEAD is
 *    confirmed with a 1-byte GET and reported as SseCustomerKeyRequired.
 *    Keys whose HEAD needed the customer key are remembered (a bounded set), so
 *    the GETs of a copy that follow send it at once instead of being refused first.
 *  - HEAD, GET, PUT of a Buffer and UploadPart bypass the SDK's middleware stack
 *    (s3-requests.ts: same endpoint rules, credentials, signer and error mapping,
 *    a quarter of the CPU per request); everything else, and any bucket whose
 *    endpoint rules need more than plain SigV4, goes through the SDK.
 */
import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  RestoreObjectCommand,
  S3Client,
  UploadPartCommand,
  type StorageClass as S3StorageClass,
} from '@aws-sdk/client-s3';
import { checkListedKey, codeFromStatus, StorageError } from './errors.js';
import type {
  ContentHeaders,
  GetOptions,
  HeadOptions,
  ListedObject,
  ListPage,
  MultipartUploadInfo,
  ObjectHead,
  ObjectStore,
  OpenedObject,
  PartHead,
  PartInfo,
  PutOptions,
  S3ChecksumAlgorithm,
  ServerSideEncryption,
  StorageClass,
  WriteResult,
} from './object-store.js';
import { S3_CHECKSUM_ALGORITHMS } from './object-store.js';
import { unquoteEtag } from './etag.js';
import { DirectResponse } from './direct-http.js';
import { headFields, S3Requests, type S3HeadFields } from './s3-requests.js';

export interface S3StoreOptions {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Omitted → the SDK's default provider chain (env, profile, IMDS, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Per-host socket limit of the keep-alive agent. Default 64. */
  maxSockets?: number;
  /** Idle time on a socket (connecting, waiting or streaming) before the request fails with Timeout. Default 120 s. */
  requestTimeoutMs?: number;
  /** PEM CA certificate(s) that https endpoints must chain to, instead of the default roots. */
  ca?: string | Buffer;
  /** Server-side encryption of every write unless PutOptions.encryption says otherwise. */
  encryption?: ServerSideEncryption;
  /** 32-byte SSE-C key used for reads the store refuses without it (see the module comment). */
  sseCustomerKey?: Buffer;
  /**
   * Send HEAD, GET, PUT (of a Buffer) and UploadPart without the SDK's middleware
   * stack (s3-requests.ts). Default true; false sends every request through the SDK.
   */
  leanRequests?: boolean;
  /**
   * On the lean path, GET bodies are read from the socket straight into the
   * reader's buffers (direct-http.ts). Default true; false reads them through
   * node:http (comparisons).
   */
  directGets?: boolean;
}

/** The SSE parameters of PutObject / CreateMultipartUpload for `encryption`; refuses OSS-only modes. */
export function s3EncryptionParams(encryption: ServerSideEncryption | null | undefined): {
  ServerSideEncryption?: 'AES256' | 'aws:kms';
  SSEKMSKeyId?: string;
} {
  if (!encryption) return {};
  if (encryption.mode !== 'AES256' && encryption.mode !== 'aws:kms') {
    throw new StorageError('InvalidRequest', `S3 does not support server-side encryption mode ${encryption.mode} (use AES256 or aws:kms)`);
  }
  if (encryption.keyId !== undefined && encryption.mode !== 'aws:kms') {
    throw new StorageError('InvalidRequest', 'an S3 KMS key id needs server-side encryption mode aws:kms');
  }
  return {
    ServerSideEncryption: encryption.mode,
    ...(encryption.keyId !== undefined ? { SSEKMSKeyId: encryption.keyId } : {}),
  };
}

function sseCustomerParams(key: Buffer | undefined): { SSECustomerAlgorithm?: string; SSECustomerKey?: string } {
  if (key === undefined) return {};
  if (key.length !== 32) throw new StorageError('InvalidRequest', `an SSE-C key must be 32 bytes, got ${key.length}`);
  // A base64 string of 32 bytes is sent as is; the SDK adds the key's MD5.
  return { SSECustomerAlgorithm: 'AES256', SSECustomerKey: key.toString('base64') };
}

/** The SSE-C request headers the SDK sends for sseCustomerParams(key). */
function sseCustomerHeaders(key: Buffer | undefined): Record<string, string> {
  const p = sseCustomerParams(key);
  if (p.SSECustomerKey === undefined || key === undefined) return {};
  return {
    'x-amz-server-side-encryption-customer-algorithm': p.SSECustomerAlgorithm!,
    'x-amz-server-side-encryption-customer-key': p.SSECustomerKey,
    'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(key).digest('base64'),
  };
}

/** What HeadObject answers, from either request path. */
type HeadOutput = S3HeadFields & { Expires?: Date };

/** The write parameters of #writeHeaders and s3EncryptionParams as the HTTP headers the SDK serializes them to. */
function writeHttpHeaders(params: WriteHeaderParams & ReturnType<typeof s3EncryptionParams>): Record<string, string> {
  const h: Record<string, string> = {};
  if (params.ContentType !== undefined) h['content-type'] = params.ContentType;
  if (params.ContentEncoding !== undefined) h['content-encoding'] = params.ContentEncoding;
  if (params.ContentDisposition !== undefined) h['content-disposition'] = params.ContentDisposition;
  if (params.ContentLanguage !== undefined) h['content-language'] = params.ContentLanguage;
  if (params.CacheControl !== undefined) h['cache-control'] = params.CacheControl;
  if (params.StorageClass !== undefined) h['x-amz-storage-class'] = params.StorageClass;
  if (params.ServerSideEncryption !== undefined) h['x-amz-server-side-encryption'] = params.ServerSideEncryption;
  if (params.SSEKMSKeyId !== undefined) h['x-amz-server-side-encryption-aws-kms-key-id'] = params.SSEKMSKeyId;
  for (const [k, v] of Object.entries(params.Metadata ?? {})) h[`x-amz-meta-${k.toLowerCase()}`] = v;
  return h;
}

interface WriteHeaderParams {
  ContentType?: string;
  ContentEncoding?: string;
  ContentDisposition?: string;
  ContentLanguage?: string;
  CacheControl?: string;
  Metadata?: Record<string, string>;
  StorageClass?: S3StorageClass;
}

const SSE_C_REFUSAL = /server.side.encryption/i;
/** Asks S3 to report the object's checksum (ObjectHead.checksum) on HEAD and whole-object GET. */
const CHECKSUM_MODE = { 'x-amz-checksum-mode': 'ENABLED' } as const;
const CONNECTION_TIMEOUT_MS = 10_000;

/** The fields of SDK errors we read; SDK service exceptions and Node socket errors both fit. */
interface SdkErrorLike {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Translate anything the SDK (or the socket under it) throws into a StorageError. */
export function s3Error(err: unknown, operation: string, where: string): StorageError {
  if (err instanceof StorageError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorLike;
  const status = e.$metadata?.httpStatusCode;
  // With an HTTP answer the service's code is authoritative; without one, the
  // socket error code (ECONNREFUSED...) says more than the generic name "Error".
  const providerCode = status !== undefined ? (e.Code ?? e.name) : (e.code ?? e.name);
  // Node refuses a request it cannot even send (e.g. a header with characters
  // outside latin1): retrying cannot help, so it is not a network error.
  const code = status === undefined && isLocalRequestError(e) ? 'InvalidRequest' : codeFromStatus(status, providerCode);
  const detail = e.message && e.message !== 'UnknownError' ? e.message : (providerCode ?? 'unknown error');
  return new StorageError(code, `S3 ${operation} ${where}: ${detail}`, status, providerCode, { cause: err });
}

function isLocalRequestError(e: SdkErrorLike): boolean {
  return e.name === 'TypeError' || e.name === 'RangeError' || /^ERR_(INVALID|HTTP_INVALID)/.test(e.code ?? '');
}

const PRINTABLE_ASCII = /^[\x20-\x7e\t]*$/;

/**
 * S3 accepts only US-ASCII in headers; non-ASCII user metadata must be sent
 * RFC 2047-encoded (S3 decodes it on PUT and re-encodes it on GET/HEAD).
 */
export function encodeMetadataValue(value: string): string {
  if (PRINTABLE_ASCII.test(value)) return value;
  return `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

const ENCODED_WORDS = /=\?([^?]+)\?([BbQq])\?([^?]*)\?=(?:\s+(?==\?[^?]+\?[BbQq]\?[^?]*\?=))?/g;

/** Inverse of encodeMetadataValue, for UTF-8 / ISO-8859-1 encoded-words in B or Q form. */
export function decodeMetadataValue(value: string): string {
  if (!value.includes('=?')) return wireToText(value);
  return value.replace(ENCODED_WORDS, (word, charset: string, enc: string, text: string) => {
    const cs = charset.toLowerCase();
    if (cs !== 'utf-8' && cs !== 'iso-8859-1') return word;
    const bytes =
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64')
        : Buffer.from(
            text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          );
    return bytes.toString(cs === 'utf-8' ? 'utf8' : 'latin1');
  });
}

/**
 * Node decodes response header bytes as latin1. Stores that send raw UTF-8
 * (MinIO, Ceph, OSS) then show mojibake; re-decode when the bytes are valid UTF-8.
 */
export function wireToText(value: string): string {
  if (!/[\x80-\xff]/.test(value) || /[^\x00-\xff]/.test(value)) return value;
  const bytes = Buffer.from(value, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : value;
}

function asciiHeader(name: string, value: string): string {
  if (!PRINTABLE_ASCII.test(value)) {
    throw new StorageError('InvalidRequest', `${name} contains non-ASCII characters, which S3 cannot store in a header: ${JSON.stringify(value)}`);
  }
  return value;
}

const RESTORE_DONE = /ongoing-request\s*=\s*"false"/i;
const RESTORE_ONGOING = /ongoing-request\s*=\s*"true"/i;

/** S3 → neutral. GLACIER_IR is readable without a restore, so it is not ARCHIVE. */
export function fromS3StorageClass(raw: string | undefined): StorageClass {
  switch (raw ?? 'STANDARD') {
    case 'STANDARD':
    case 'REDUCED_REDUNDANCY':
      return 'STANDARD';
    case 'STANDARD_IA':
    case 'ONEZONE_IA':
      return 'STANDARD_IA';
    case 'GLACIER':
    case 'DEEP_ARCHIVE':
      return 'ARCHIVE';
    default:
      // GLACIER_IR, INTELLIGENT_TIERING, EXPRESS_ONEZONE, OUTPOSTS, SNOW...: no neutral twin.
      return 'OTHER';
  }
}

function toS3StorageClass(c: StorageClass | undefined): S3StorageClass | undefined {
  switch (c) {
    case 'STANDARD':
      return 'STANDARD';
    case 'STANDARD_IA':
      return 'STANDARD_IA';
    case 'ARCHIVE':
      return 'GLACIER';
    default:
      return undefined; // OTHER / unset: the bucket's default
  }
}

/** SSE-KMS and SSE-C objects have ETags that are not the MD5 of their bytes. */
function writeResult(out: { ETag?: string; ServerSideEncryption?: string; SSECustomerAlgorithm?: string }): WriteResult {
  const result: WriteResult = { etag: unquoteEtag(out.ETag) };
  if (out.ServerSideEncryption === 'aws:kms' || out.ServerSideEncryption === 'aws:kms:dsse' || out.SSECustomerAlgorithm !== undefined) {
    result.etagIsMd5 = false;
  }
  return result;
}

function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function checkRange(range: { start: number; end: number }): string {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new StorageError('InvalidRequest', `invalid byte range ${start}-${end}`);
  }
  return `bytes=${start}-${end}`;
}

/**
 * Re-emit a body stream so that errors in mid-stream (socket reset, idle
 * timeout) reach the consumer as StorageError too, and destroying the result
 * releases the socket.
 */
function translateStreamErrors(body: Readable, mapError: (err: unknown) => StorageError): Readable {
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  body.on('error', (err) => out.destroy(mapError(err)));
  out.on('close', () => {
    if (!body.destroyed && !body.readableEnded) body.destroy();
  });
  body.pipe(out);
  return out;
}

/** The ObjectHead of what a HEAD or a whole-object GET answered (the same headers). */
function headFromOutput(key: string, out: HeadOutput): ObjectHead {
  const etag = unquoteEtag(out.ETag);
  const rawClass = out.StorageClass ?? 'STANDARD';
  const restore = out.Restore;
  const archived = rawClass === 'GLACIER' || rawClass === 'DEEP_ARCHIVE' || out.ArchiveStatus !== undefined;
  const head: ObjectHead = {
    key,
    size: out.ContentLength ?? 0,
    etag,
    lastModified: out.LastModified ?? new Date(0),
    userMetadata: Object.fromEntries(
      Object.entries(out.Metadata ?? {}).map(([k, v]) => [k.toLowerCase(), decodeMetadataValue(v)]),
    ),
    storageClass: fromS3StorageClass(rawClass),
    rawStorageClass: rawClass,
    // "Not the MD5 of the bytes": multipart, and also SSE-KMS / SSE-C objects,
    // whose single-part ETags are 32 hex digits that are not an MD5 of the data.
    multipartEtag:
      /-\d+$/.test(etag) ||
      out.ServerSideEncryption === 'aws:kms' ||
      out.ServerSideEncryption === 'aws:kms:dsse' ||
      out.SSECustomerAlgorithm !== undefined,
    needsRestore: archived && !(restore !== undefined && RESTORE_DONE.test(restore)),
    restoreInProgress: restore !== undefined && RESTORE_ONGOING.test(restore),
  };
  if (out.ContentType !== undefined) head.contentType = wireToText(out.ContentType);
  if (out.ContentEncoding !== undefined) head.contentEncoding = wireToText(out.ContentEncoding);
  if (out.ContentDisposition !== undefined) head.contentDisposition = wireToText(out.ContentDisposition);
  if (out.ContentLanguage !== undefined) head.contentLanguage = wireToText(out.ContentLanguage);
  if (out.CacheControl !== undefined) head.cacheControl = wireToText(out.CacheControl);
  // ExpiresString is the raw header; Expires is a parsed Date (undefined when unparsable).
  const expires = out.ExpiresString ?? out.Expires?.toUTCString();
  if (expires !== undefined) head.expires = expires;
  if (out.SSECustomerAlgorithm !== undefined) head.sseCustomerAlgorithm = out.SSECustomerAlgorithm;
  if (out.ServerSideEncryption !== undefined) head.serverSideEncryption = out.ServerSideEncryption;
  if (out.SSEKMSKeyId !== undefined) head.sseKmsKeyId = out.SSEKMSKeyId;
  const checksum = fullObjectChecksum(out);
  if (checksum) head.checksum = checksum;
  const composite = compositeChecksum(out);
  if (composite) head.compositeChecksum = composite;
  return head;
}

const CHECKSUM_FIELDS = {
  CRC64NVME: 'ChecksumCRC64NVME',
  CRC32C: 'ChecksumCRC32C',
  CRC32: 'ChecksumCRC32',
  SHA1: 'ChecksumSHA1',
  SHA256: 'ChecksumSHA256',
} as const satisfies Record<S3ChecksumAlgorithm, keyof HeadOutput>;

/**
 * The object's full-object checksum, if it reports one. A composite one (of an
 * upload in parts that chose it) says so in x-amz-checksum-type or, from stores
 * that predate that header, by its "-N" suffix; it digests part digests, not the
 * bytes, and is reported apart (compositeChecksum).
 */
function fullObjectChecksum(out: HeadOutput): ObjectHead['checksum'] {
  if (out.ChecksumType !== undefined && out.ChecksumType !== 'FULL_OBJECT') return undefined;
  for (const algorithm of S3_CHECKSUM_ALGORITHMS) {
    const value = out[CHECKSUM_FIELDS[algorithm]];
    if (value !== undefined && /^[A-Za-z0-9+/]+=*$/.test(value)) return { algorithm, value };
  }
  return undefined;
}

/**
 * The object's composite checksum, if it reports one: "<base64>-<parts>", of
 * the type COMPOSITE (or, from stores that predate x-amz-checksum-type, by that
 * suffix alone).
 */
function compositeChecksum(out: HeadOutput): ObjectHead['compositeChecksum'] {
  if (out.ChecksumType !== undefined && out.ChecksumType !== 'COMPOSITE') return undefined;
  for (const algorithm of S3_CHECKSUM_ALGORITHMS) {
    const m = /^([A-Za-z0-9+/]+=*)-(\d+)$/.exec(out[CHECKSUM_FIELDS[algorithm]] ?? '');
    if (!m) continue;
    const count = Number(m[2]);
    return count >= 1 && count <= 10_000 ? { algorithm, value: m[1]!, count } : undefined;
  }
  return undefined;
}

export class S3Store implements ObjectStore {
  readonly provider = 's3' as const;
  readonly bucket: string;
  readonly #client: S3Client;
  readonly #encryption: ServerSideEncryption | undefined;
  readonly #sseCustomerKey: Buffer | undefined;
  /** Object keys known to be SSE-C (insertion-ordered, bounded): reads send the store's key at once. */
  readonly #sseCObjects = new Set<string>();
  /** Set once the bucket is known to exist; see #checkBucketAfter404. */
  #bucketSeen = false;
  /** The lean request path (s3-requests.ts), resolved on first use; undefined inside = use the SDK. */
  #lean: Promise<S3Requests | undefined> | undefined;
  readonly #leanWanted: boolean;
  readonly #directGets: boolean;
  readonly #httpAgent: HttpAgent;
  readonly #httpsAgent: HttpsAgent;
  readonly #socketTimeoutMs: number;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    // Checked now: a bad mode must fail the store's creation, never a write later.
    s3EncryptionParams(options.encryption);
    sseCustomerParams(options.sseCustomerKey);
    this.#encryption = options.encryption;
    this.#sseCustomerKey = options.sseCustomerKey;
    const maxSockets = options.maxSockets ?? 64;
    const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: Math.min(maxSockets, 32) };
    this.#leanWanted = options.leanRequests ?? true;
    this.#directGets = options.directGets ?? true;
    this.#httpAgent = new HttpAgent(agentOptions);
    this.#httpsAgent = new HttpsAgent({ ...agentOptions, ...(options.ca !== undefined ? { ca: options.ca } : {}), rejectUnauthorized: true });
    this.#socketTimeoutMs = options.requestTimeoutMs ?? 120_000;
    this.#client = new S3Client({
      region: options.region,
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      maxAttempts: 2,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        httpAgent: this.#httpAgent,
        httpsAgent: this.#httpsAgent,
        connectionTimeout: CONNECTION_TIMEOUT_MS,
        socketTimeout: this.#socketTimeoutMs,
      },
    });
  }

  /** The lean request path for this bucket, or undefined to use the SDK. */
  #leanPath(): Promise<S3Requests | undefined> {
    if (!this.#leanWanted) return Promise.resolve(undefined);
    this.#lean ??= S3Requests.open(this.#client, this.bucket, {
      httpAgent: this.#httpAgent,
      httpsAgent: this.#httpsAgent,
      socketTimeoutMs: this.#socketTimeoutMs,
      connectionTimeoutMs: CONNECTION_TIMEOUT_MS,
      directGets: this.#directGets,
    }).catch(() => undefined); // endpoint rules the SDK refuses: let the SDK say so, request by request
    return this.#lean;
  }

  /** Writes through the lean path over plain http sign their body's SHA-256 (s3-requests.ts, "Payload"). */
  async payloadSha256Wanted(): Promise<boolean> {
    const lean = await this.#leanPath();
    return lean !== undefined && !lean.https;
  }

  /** HeadObject (with the SSE-C key when given); errors as the SDK throws them, for s3Error. */
  async #headOutput(key: string, customerKey: Buffer | undefined): Promise<HeadOutput> {
    const lean = await this.#leanPath();
    if (!lean) {
      return this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED', ...sseCustomerParams(customerKey) }));
    }
    const res = await lean.send({ method: 'HEAD', key, headers: { ...CHECKSUM_MODE, ...sseCustomerHeaders(customerKey) } });
    res.resume();
    return headFields(res.headers);
  }

  /** #headOutput, with a 404 answered as null where the lean path can (no error built); the SDK path still throws. */
  async #headOrMissing(key: string, customerKey: Buffer | undefined): Promise<HeadOutput | null> {
    const lean = await this.#leanPath();
    if (!lean) return this.#headOutput(key, customerKey);
    const res = await lean.send({ method: 'HEAD', key, headers: { ...CHECKSUM_MODE, ...sseCustomerHeaders(customerKey) }, missingOk: true });
    if (!res) return null;
    res.resume();
    return headFields(res.headers);
  }

  /** GetObject: the body stream and Content-Range; errors as the SDK throws them, for s3Error. */
  async #getOutput(
    key: string,
    options: { range?: string; ifMatch?: string; customerKey?: Buffer | undefined },
  ): Promise<{ body: unknown; contentRange: string | undefined; fields: HeadOutput }> {
    const lean = await this.#leanPath();
    if (!lean) {
      const out = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(options.range !== undefined ? { Range: options.range } : {}),
          ...(options.ifMatch !== undefined ? { IfMatch: options.ifMatch } : {}),
          ...sseCustomerParams(options.customerKey),
        }),
      );
      return { body: out.Body, contentRange: out.ContentRange, fields: out };
    }
    const res = await lean.send({
      method: 'GET',
      key,
      headers: {
        // A whole-object GET reports the checksum (a ranged one never does). The SDK path above leaves it
        // out: asked for it, the SDK validates the body itself, a second pass over every byte in JavaScript
        // that the copy's own check (src/replication/source-checksum.ts) already makes.
        ...(options.range === undefined ? CHECKSUM_MODE : {}),
        ...(options.range !== undefined ? { range: options.range } : {}),
        ...(options.ifMatch !== undefined ? { 'if-match': options.ifMatch } : {}),
        ...sseCustomerHeaders(options.customerKey),
      },
    });
    const contentRange = res.headers['content-range'];
    return { body: res, contentRange, fields: headFields(res.headers) };
  }

  #where(key?: string): string {
    return key === undefined ? `s3://${this.bucket}` : `s3://${this.bucket}/${key}`;
  }

  async #send<T>(operation: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw s3Error(err, operation, this.#where(key));
    }
  }

  /**
   * HEAD answers a bare 404 both for a missing key and a missing bucket. A
   * misconfigured source bucket must not look like "every key was deleted"
   * (that would delete the destination), so confirm the bucket once.
   */
  async #checkBucketAfter404(): Promise<void> {
    if (this.#bucketSeen) return;
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.#bucketSeen = true;
    } catch (err) {
      const e = s3Error(err, 'HeadBucket', this.#where());
      if (e.status === 404) {
        throw new StorageError('NoSuchBucket', `S3 bucket ${this.#where()} does not exist`, 404, 'NoSuchBucket', { cause: err });
      }
      // 403: we may not list the bucket, but it exists; anything else is transient.
      if (e.status === 403) this.#bucketSeen = true;
      else throw e;
    }
  }

  async head(key: string, options: HeadOptions = {}): Promise<ObjectHead | null> {
    let out: HeadOutput | null;
    try {
      // A caller that knows the object is SSE-C sends the key at once; the store's own key is a fallback.
      out = await this.#headOrMissing(key, options.sseCustomerKey);
    } catch (err) {
      const e = s3Error(err, 'HeadObject', this.#where(key));
      if (e.status === 404) {
        await this.#checkBucketAfter404();
        return null;
      }
      if (e.status === 400 && options.sseCustomerKey === undefined) {
        out = await this.#headSseC(key, e);
        this.#rememberSseC(key, true);
      } else if (e.status === 403 && options.sseCustomerKey !== undefined) throw wrongCustomerKey(e, this.#where(key));
      else throw e;
    }
    if (out === null) {
      await this.#checkBucketAfter404();
      return null;
    }
    this.#bucketSeen = true;
    if (out.SSECustomerAlgorithm === undefined) this.#rememberSseC(key, false);
    return headFromOutput(key, out);
  }

  #rememberSseC(key: string, sseC: boolean): void {
    if (this.#sseCustomerKey === undefined) return;
    if (!sseC) {
      this.#sseCObjects.delete(key);
      return;
    }
    this.#sseCObjects.add(key);
    if (this.#sseCObjects.size > 10_000) this.#sseCObjects.delete(this.#sseCObjects.values().next().value!);
  }

  /**
   * A plain HEAD answered 400: with the store's customer key, HEAD again with it;
   * without one, confirm with a 1-byte GET (whose error has a body) that the
   * object is SSE-C and say so, or rethrow the 400.
   */
  async #headSseC(key: string, refused: StorageError): Promise<HeadOutput> {
    const where = this.#where(key);
    if (this.#sseCustomerKey !== undefined) {
      try {
        return await this.#headOutput(key, this.#sseCustomerKey);
      } catch (err) {
        const e = s3Error(err, 'HeadObject (SSE-C)', where);
        if (e.status === 403) throw wrongCustomerKey(e, where);
        throw e;
      }
    }
    try {
      const probe = await this.#getOutput(key, { range: 'bytes=0-0' });
      (probe.body as Readable | undefined)?.destroy();
    } catch (err) {
      const e = s3Error(err, 'GetObject', where);
      if (e.status === 400 && SSE_C_REFUSAL.test(e.message)) {
        throw new StorageError(
          'SseCustomerKeyRequired',
          `S3 object ${where} is encrypted with a customer-provided key (SSE-C) and no key was given`,
          400,
          e.providerCode,
          { cause: err },
        );
      }
    }
    throw refused;
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    return (await this.#getObject(key, options)).body;
  }

  async open(key: string, options: HeadOptions = {}): Promise<OpenedObject | null> {
    let opened;
    try {
      opened = await this.#getObject(key, options.sseCustomerKey !== undefined ? { sseCustomerKey: options.sseCustomerKey } : {});
    } catch (err) {
      if (err instanceof StorageError && err.status === 404 && err.code !== 'NoSuchBucket') {
        await this.#checkBucketAfter404();
        return null;
      }
      throw err;
    }
    this.#bucketSeen = true;
    return { head: headFromOutput(key, opened.fields), body: opened.body };
  }

  /** GetObject (with the SSE-C handling of the module comment): the answer's head fields and the body. */
  async #getObject(key: string, options: GetOptions): Promise<{ body: Readable; fields: HeadOutput }> {
    const where = this.#where(key);
    const range = options.range ? checkRange(options.range) : undefined;
    const request = (customerKey: Buffer | undefined) =>
      this.#getOutput(key, {
        ...(range !== undefined ? { range } : {}),
        ...(options.ifMatch !== undefined ? { ifMatch: quoteEtag(options.ifMatch) } : {}),
        customerKey,
      });
    const known = options.sseCustomerKey ?? (this.#sseCObjects.has(key) ? this.#sseCustomerKey : undefined);
    let out;
    try {
      out = await request(known);
    } catch (err) {
      const e = s3Error(err, 'GetObject', where);
      if (known !== undefined) throw e.status === 403 ? wrongCustomerKey(e, where) : e;
      if (e.status !== 400 || !SSE_C_REFUSAL.test(e.message)) throw e;
      if (this.#sseCustomerKey === undefined) {
        throw new StorageError('SseCustomerKeyRequired', `S3 object ${where} is encrypted with a customer-provided key (SSE-C) and no key was given`, 400, e.providerCode, { cause: err });
      }
      try {
        out = await request(this.#sseCustomerKey);
      } catch (err2) {
        const e2 = s3Error(err2, 'GetObject (SSE-C)', where);
        throw e2.status === 403 ? wrongCustomerKey(e2, where) : e2;
      }
    }
    const body = out.body;
    if (!(body instanceof Readable)) {
      throw new StorageError('Unknown', `S3 GetObject ${where}: response has no readable body`);
    }
    // A store that ignores Range answers 200 with the whole object; never hand that out as the range.
    if (range !== undefined && out.contentRange === undefined) {
      body.destroy();
      throw new StorageError('InvalidRequest', `S3 GetObject ${where}: the store ignored Range ${range}`);
    }
    const mapError = (err: unknown): StorageError => s3Error(err, 'GetObject (body)', where);
    // A direct GET's body maps its own errors: no stream in between, so its readInto reaches the socket.
    if (body instanceof DirectResponse) {
      body.mapErrors(mapError);
      return { body, fields: out.fields };
    }
    return { body: translateStreamErrors(body, mapError), fields: out.fields };
  }

  #writeHeaders(options: PutOptions): WriteHeaderParams {
    const storageClass = toS3StorageClass(options.storageClass);
    let metadata: Record<string, string> | undefined;
    if (options.userMetadata !== undefined) {
      metadata = {};
      for (const [k, v] of Object.entries(options.userMetadata)) {
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) {
          throw new StorageError('InvalidRequest', `user metadata name ${JSON.stringify(k)} is not a valid HTTP header name`);
        }
        metadata[k] = encodeMetadataValue(v);
      }
    }
    // Validation errors are thrown before any request, so the caller fails fast (not retryable).
    return {
      ...(options.contentType !== undefined ? { ContentType: asciiHeader('Content-Type', options.contentType) } : {}),
      ...(options.contentEncoding !== undefined ? { ContentEncoding: asciiHeader('Content-Encoding', options.contentEncoding) } : {}),
      ...(options.contentDisposition !== undefined
        ? { ContentDisposition: asciiHeader('Content-Disposition', options.contentDisposition) }
        : {}),
      ...(options.contentLanguage !== undefined ? { ContentLanguage: asciiHeader('Content-Language', options.contentLanguage) } : {}),
      ...(options.cacheControl !== undefined ? { CacheControl: asciiHeader('Cache-Control', options.cacheControl) } : {}),
      ...(metadata !== undefined ? { Metadata: metadata } : {}),
      ...(storageClass !== undefined ? { StorageClass: storageClass } : {}),
    };
  }

  /** The write's encryption: the call's choice (null = none), else the store's default. */
  #encryptionFor(options: PutOptions) {
    return s3EncryptionParams(options.encryption === undefined ? this.#encryption : options.encryption);
  }

  async put(key: string, body: Readable | Buffer, size: number, options: PutOptions = {}): Promise<WriteResult> {
    // A stream cannot be hashed for the signature before it is sent: the SDK handles those.
    const lean = Buffer.isBuffer(body) ? await this.#leanPath() : undefined;
    if (lean && Buffer.isBuffer(body)) {
      if (body.length !== size) throw new StorageError('InvalidRequest', `S3 PutObject ${this.#where(key)}: body is ${body.length} bytes, size says ${size}`);
      const headers = writeHttpHeaders({ ...this.#writeHeaders(options), ...this.#encryptionFor(options) });
      if (options.contentMd5 !== undefined) headers['content-md5'] = options.contentMd5;
      if (options.expires !== undefined) headers['expires'] = asciiHeader('Expires', options.expires);
      const payloadSha256 = options.payloadSha256 !== undefined ? { payloadSha256: options.payloadSha256 } : {};
      return this.#send('PutObject', key, async () => writeResult(headFields((await drained(lean.send({ method: 'PUT', key, headers, body, ...payloadSha256 }))).headers)));
    }
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: size,
      ...(options.contentMd5 !== undefined ? { ContentMD5: options.contentMd5 } : {}),
      ...this.#writeHeaders(options),
      ...this.#encryptionFor(options),
    });
    withRawExpires(command, options);
    const out = await this.#send('PutObject', key, () => this.#client.send(command));
    return writeResult(out);
  }

  async createMultipartUpload(key: string, options: PutOptions = {}): Promise<string> {
    const command = new CreateMultipartUploadCommand({
      Bucket: this.bucket,
      Key: key,
      ...this.#writeHeaders(options),
      ...this.#encryptionFor(options),
    });
    withRawExpires(command, options);
    const out = await this.#send('CreateMultipartUpload', key, () => this.#client.send(command));
    if (!out.UploadId) throw new StorageError('Unknown', `S3 CreateMultipartUpload ${this.#where(key)}: no UploadId in the answer`);
    // The SDK retries a create whose answer was lost (maxAttempts 2): the first attempt's upload
    // may exist, its id never seen, and recording this one would make it look accounted for
    // (src/queue/upload-intents.ts). One call must mean at most one upload we do not know: give
    // this one back and fail; the caller's intent stays, so the next attempt lists and aborts the rest.
    if ((out.$metadata.attempts ?? 1) > 1) {
      await this.abortMultipartUpload(key, out.UploadId).catch(() => {});
      throw new StorageError(
        'NetworkError',
        `S3 CreateMultipartUpload ${this.#where(key)}: answered only after ${out.$metadata.attempts} attempts; an earlier attempt may have created an upload`,
      );
    }
    return out.UploadId;
  }

  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
    options: Pick<PutOptions, 'contentMd5' | 'payloadSha256'> = {},
  ): Promise<WriteResult> {
    const lean = await this.#leanPath();
    if (lean) {
      return this.#send(`UploadPart #${partNumber}`, key, async () => {
        const res = await lean.send({
          method: 'PUT',
          key,
          query: { partNumber: String(partNumber), uploadId },
          headers: options.contentMd5 !== undefined ? { 'content-md5': options.contentMd5 } : {},
          body,
          ...(options.payloadSha256 !== undefined ? { payloadSha256: options.payloadSha256 } : {}),
        });
        return writeResult(headFields((await drained(res)).headers));
      });
    }
    const out = await this.#send(`UploadPart #${partNumber}`, key, () =>
      this.#client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
          ...(options.contentMd5 !== undefined ? { ContentMD5: options.contentMd5 } : {}),
        }),
      ),
    );
    return writeResult(out);
  }

  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
  ): Promise<WriteResult> {
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    const out = await this.#send('CompleteMultipartUpload', key, () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: sorted.map((p) => ({ PartNumber: p.partNumber, ETag: quoteEtag(p.etag) })) },
        }),
      ),
    );
    return writeResult(out);
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    await this.#send('AbortMultipartUpload', key, () =>
      this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })),
    );
  }

  async listMultipartUploads(key: string): Promise<MultipartUploadInfo[]> {
    const uploads: MultipartUploadInfo[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (let page = 0; page < 100; page++) {
      const out = await this.#send('ListMultipartUploads', key, () =>
        this.#client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: key,
            ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        ),
      );
      for (const u of out.Uploads ?? []) {
        checkListedKey(u.Key, key, `S3 ListMultipartUploads ${this.#where(key)}`);
        if (u.Key === key && u.UploadId) uploads.push({ uploadId: u.UploadId, ...(u.Initiated ? { initiated: u.Initiated } : {}) });
      }
      if (!out.IsTruncated) return uploads;
      // Truncated, yet no marker to go on from: a partial answer must not pass for the whole list.
      if (out.NextKeyMarker === keyMarker && out.NextUploadIdMarker === uploadIdMarker) break;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
    }
    throw new StorageError('IntegrityMismatch', `S3 ListMultipartUploads ${this.#where(key)}: the listing is truncated and cannot be followed to its end`);
  }

  async headPart(key: string, partNumber: number, ifMatch: string): Promise<PartHead | undefined> {
    const out = await this.#send('HeadObject', key, () =>
      this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, PartNumber: partNumber, IfMatch: quoteEtag(ifMatch) })),
    );
    // A store that ignores partNumber answers the whole object, without a part count.
    if (out.PartsCount === undefined || out.ContentLength === undefined) return undefined;
    return { size: out.ContentLength, partsCount: out.PartsCount };
  }

  async listParts(key: string, uploadId: string): Promise<PartInfo[]> {
    const parts: PartInfo[] = [];
    let marker: string | undefined;
    for (;;) {
      const out = await this.#send('ListParts', key, () =>
        this.#client.send(
          new ListPartsCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            ...(marker !== undefined ? { PartNumberMarker: marker } : {}),
          }),
        ),
      );
      for (const p of out.Parts ?? []) {
        if (p.PartNumber === undefined) continue;
        parts.push({ partNumber: p.PartNumber, etag: unquoteEtag(p.ETag), size: p.Size ?? 0 });
      }
      const next = out.NextPartNumberMarker;
      // Guard against a store that says "truncated" without advancing the marker.
      if (!out.IsTruncated || next === undefined || next === marker) break;
      marker = next;
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const e = s3Error(err, 'DeleteObject', this.#where(key));
      // S3 answers 204 for a missing key; some compatible stores answer NoSuchKey.
      if (e.code === 'NoSuchKey') return;
      throw e;
    }
  }

  async listPage(options: { prefix?: string; startAfter?: string; token?: string; maxKeys?: number }): Promise<ListPage> {
    const out = await this.#send('ListObjectsV2', options.prefix, () =>
      this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          // url encoding keeps keys with characters XML 1.0 cannot carry (e.g. \x01) listable.
          EncodingType: 'url',
          ...(options.prefix !== undefined ? { Prefix: options.prefix } : {}),
          ...(options.startAfter !== undefined ? { StartAfter: options.startAfter } : {}),
          ...(options.token !== undefined ? { ContinuationToken: options.token } : {}),
          ...(options.maxKeys !== undefined ? { MaxKeys: options.maxKeys } : {}),
        }),
      ),
    );
    // Decode only when the store says it encoded: a store that ignores the
    // parameter returns raw keys, and decoding "100%" or "a+b" would corrupt them.
    const encoded = out.EncodingType === 'url';
    const decode = (k: string): string => (encoded ? decodeURIComponent(k.replace(/\+/g, ' ')) : k);
    const objects: ListedObject[] = (out.Contents ?? []).flatMap((o) =>
      o.Key === undefined
        ? []
        : [
            {
              key: decode(o.Key),
              size: o.Size ?? 0,
              etag: unquoteEtag(o.ETag),
              lastModified: o.LastModified ?? new Date(0),
              storageClass: fromS3StorageClass(o.StorageClass),
            },
          ],
    );
    const page: ListPage = { objects };
    if (out.IsTruncated && out.NextContinuationToken) page.nextToken = out.NextContinuationToken;
    return page;
  }

  async restore(key: string, days: number): Promise<void> {
    try {
      await this.#client.send(
        new RestoreObjectCommand({
          Bucket: this.bucket,
          Key: key,
          RestoreRequest: { Days: days, GlacierJobParameters: { Tier: 'Standard' } },
        }),
      );
    } catch (err) {
      const e = s3Error(err, 'RestoreObject', this.#where(key));
      // Asking again while a restore runs is not a failure: the restore we want is under way.
      if (e.providerCode === 'RestoreAlreadyInProgress') return;
      throw e;
    }
  }

  async close(): Promise<void> {
    (await this.#lean)?.close();
    this.#client.destroy();
  }
}

/** A response whose (empty) body has been read to the end, so its socket goes back to the pool. */
async function drained<T extends Readable>(res: T | Promise<T>): Promise<T> {
  const r = await res;
  r.resume();
  if (!r.readableEnded) await new Promise<void>((resolve, reject) => r.once('end', resolve).once('error', reject));
  return r;
}

function wrongCustomerKey(e: StorageError, where: string): StorageError {
  return new StorageError(
    'SseCustomerKeyRequired',
    `S3 refused the customer-provided key for ${where} (HTTP ${e.status ?? '?'}): it is not the key the object was encrypted with`,
    e.status,
    e.providerCode,
    { cause: e },
  );
}

/**
 * The SDK models Expires as a Date, which loses values that are not valid
 * HTTP dates ("0", "-1" are legal and mean "already expired"). Send the
 * caller's raw string instead; the build step runs before signing.
 */
function withRawExpires(command: PutObjectCommand | CreateMultipartUploadCommand, options: ContentHeaders): void {
  const expires = options.expires === undefined ? undefined : asciiHeader('Expires', options.expires);
  if (expires === undefined) return;
  const middleware =
    <A extends { request: unknown }, R>(next: (args: A) => Promise<R>) =>
    async (args: A): Promise<R> => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['expires'] = expires;
      return next(args);
    };
  const options_ = { step: 'build', name: 'bucketbridgeRawExpires' } as const;
  if (command instanceof PutObjectCommand) command.middlewareStack.add(middleware, options_);
  else command.middlewareStack.add(middleware, options_);
}
