/**
 * The one contract every storage backend implements. Replication and scans only
 * speak this interface; they never see an SDK type. Adapters translate each
 * provider's headers and errors into these shapes (see storage/errors.ts).
 */
import type { Readable } from 'node:stream';

/** The standard HTTP headers that are carried across clouds (DESIGN.md §4). */
export interface ContentHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  /** Kept as the raw header string: providers disagree on date formats. */
  expires?: string;
}

/** Provider-neutral storage classes. */
export type StorageClass = 'STANDARD' | 'STANDARD_IA' | 'ARCHIVE' | 'OTHER';

/** The full-object checksums S3 can report, most preferred (cheapest to verify) first. */
export const S3_CHECKSUM_ALGORITHMS = ['CRC64NVME', 'CRC32C', 'CRC32', 'SHA1', 'SHA256'] as const;
export type S3ChecksumAlgorithm = (typeof S3_CHECKSUM_ALGORITHMS)[number];

export interface ObjectHead extends ContentHeaders {
  key: string;
  size: number;
  /** ETag without surrounding quotes, case as the provider returned it. */
  etag: string;
  lastModified: Date;
  /** User metadata, keys lower-cased, without the x-amz-meta-/x-oss-meta- prefix. */
  userMetadata: Record<string, string>;
  storageClass: StorageClass;
  /** The provider's own storage class string (e.g. "IA", "GLACIER"). */
  rawStorageClass?: string;
  /** CRC-64/XZ (what OSS calls crc64ecma) as an unsigned decimal string, when the store reports one. */
  crc64?: string;
  /**
   * S3's checksum of the whole object's bytes (x-amz-checksum-*, asked for with
   * x-amz-checksum-mode: ENABLED), when the store reports one of the full-object
   * type: S3 computes a CRC64NVME for every object written since 2025, or the
   * one the uploader chose. Composite checksums (a checksum of part checksums,
   * "…-N") are compositeChecksum. Value in S3's form: base64 of the big-endian digest.
   */
  checksum?: { algorithm: S3ChecksumAlgorithm; value: string };
  /**
   * S3's composite checksum of an object uploaded in parts with a checksum
   * algorithm chosen per part (x-amz-checksum-type COMPOSITE): the checksum of
   * the concatenated part checksums (`value`, base64), over `count` parts — the
   * "…-N" value S3 reports, split. Checkable only with the part layout
   * (src/replication/source-parts.ts).
   */
  compositeChecksum?: { algorithm: S3ChecksumAlgorithm; value: string; count: number };
  /** True when the ETag is a multipart ETag ("md5-of-md5s-N"), i.e. not the MD5 of the bytes. */
  multipartEtag: boolean;
  /** True when the object must be restored before it can be read (S3 Glacier, OSS Archive). */
  needsRestore: boolean;
  /** True when a restore is in progress. */
  restoreInProgress: boolean;
  /** Server-side encryption with a customer key: unreadable without that key. */
  sseCustomerAlgorithm?: string;
  /** Server-side encryption at rest as the store reports it (S3 `AES256` / `aws:kms`, OSS `AES256` / `KMS`). */
  serverSideEncryption?: string;
  /** The KMS key the store says it used, when it reports one. */
  sseKmsKeyId?: string;
}

/**
 * Server-side encryption of a write. S3 takes `AES256` or `aws:kms`, OSS `AES256`
 * or `KMS`; `keyId` only with a KMS mode. An adapter refuses a mode its provider
 * does not know (StorageError InvalidRequest) instead of writing unencrypted.
 */
export interface ServerSideEncryption {
  mode: 'AES256' | 'aws:kms' | 'KMS';
  keyId?: string;
}

export interface PutOptions extends ContentHeaders {
  userMetadata?: Record<string, string>;
  storageClass?: StorageClass;
  /** Base64 MD5 of the body: the server rejects the write if the bytes differ. */
  contentMd5?: string;
  /**
   * Hex SHA-256 of a Buffer body, computed by the caller as the bytes arrived
   * (see payloadSha256Wanted); the store signs it instead of hashing the body again.
   */
  payloadSha256?: string;
  /**
   * Server-side encryption for this write (PUT, or the multipart upload being
   * created). Overrides the store's default; `null` writes with none.
   */
  encryption?: ServerSideEncryption | null;
}

export interface WriteResult {
  etag: string;
  /** CRC-64/XZ decimal string the server computed, when it reports one (OSS). */
  crc64?: string;
  /** False when the server says the ETag is not the MD5 of the bytes (SSE-KMS, SSE-C); unset when it said nothing. */
  etagIsMd5?: boolean;
}

export interface PartInfo {
  partNumber: number;
  etag: string;
  size: number;
}

/** One part of a multipart-uploaded object, as HEAD ?partNumber=N reports it. */
export interface PartHead {
  /** Bytes in part N. */
  size: number;
  /** Parts the object was uploaded in. */
  partsCount: number;
}

export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
  storageClass: StorageClass;
}

export interface ListPage {
  objects: ListedObject[];
  /** Opaque token for the next page; undefined on the last page. */
  nextToken?: string;
}

export interface GetOptions {
  /** Inclusive byte range. */
  range?: { start: number; end: number };
  /** Fail with PreconditionFailed when the object's ETag is no longer this one. */
  ifMatch?: string;
  /**
   * 32-byte customer key of an SSE-C object (S3). Without it an S3 store that
   * was given a customer key retries a refused (400) read with that key.
   */
  sseCustomerKey?: Buffer;
}

/**
 * A body stream that can also fill a reader's buffer straight from the socket,
 * with no chunk allocated per read (the S3 store's GETs: direct-http.ts). Read
 * it one way only: with readInto, or as a stream.
 */
export interface BufferFillingBody {
  /**
   * Fill `buf` with the next bytes, giving each piece to `sink` as it lands;
   * resolves with the bytes filled (fewer than `buf.length` only at the end of
   * the body), rejects with the body's error (a StorageError).
   */
  readInto(buf: Buffer, sink: (piece: Buffer) => void): Promise<number>;
}

export function fillsBuffers(body: Readable): body is Readable & BufferFillingBody {
  return typeof (body as Partial<BufferFillingBody>).readInto === 'function';
}

/** An object being read: its head and the stream of all its bytes. */
export interface OpenedObject {
  head: ObjectHead;
  body: Readable;
}

export interface HeadOptions {
  /** As GetOptions.sseCustomerKey. */
  sseCustomerKey?: Buffer;
}

export interface MultipartUploadInfo {
  uploadId: string;
  initiated?: Date;
}

export interface ObjectStore {
  readonly provider: 's3' | 'oss';
  readonly bucket: string;
  /** Metadata of the current object, or null when the key does not exist. */
  head(key: string, options?: HeadOptions): Promise<ObjectHead | null>;
  /** A stream of the object's bytes (or of the range). */
  get(key: string, options?: GetOptions): Promise<Readable>;
  /**
   * GET of the whole current object together with its head (the GET answer
   * carries the same headers as a HEAD, for exactly the version whose bytes
   * follow), or null when the key does not exist: one request where HEAD then
   * GET would be two. Fails like get() (InvalidObjectState for an archived
   * object, SseCustomerKeyRequired, ...). Optional: a store (or wrapper)
   * without it is read with head() then get().
   */
  open?(key: string, options?: HeadOptions): Promise<OpenedObject | null>;
  /** Single-request upload of `size` bytes. */
  put(key: string, body: Readable | Buffer, size: number, options?: PutOptions): Promise<WriteResult>;
  /**
   * The id of the upload this call made, only when it can have made no other: a create retried
   * inside the store's client (its first answer lost, so that upload may exist unseen) throws
   * instead, since recording the second would hide the first (src/queue/upload-intents.ts).
   */
  createMultipartUpload(key: string, options?: PutOptions): Promise<string>;
  uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
    options?: Pick<PutOptions, 'contentMd5' | 'payloadSha256'>,
  ): Promise<WriteResult>;
  /**
   * True when this store's writes sign their body's SHA-256 (S3 SigV4 over
   * plain http; over https a body sent with Content-MD5 is not hashed). A
   * caller that reads the bytes anyway hashes them as they arrive and passes
   * `payloadSha256`: hashing an 8 MiB part again before sending it is a second
   * pass over memory long out of cache (bench/README.md, "## Copy").
   */
  payloadSha256Wanted?(): Promise<boolean>;
  completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
  ): Promise<WriteResult>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  listParts(key: string, uploadId: string): Promise<PartInfo[]>;
  /**
   * Multipart uploads in progress for exactly this key (ListMultipartUploads), to find
   * one whose create answer was lost (src/queue/upload-intents.ts). Every page is
   * followed (one that cannot be is an error); an answer naming a key outside the
   * prefix asked for was damaged in transit and is refused (checkListedKey), never
   * read as "no upload". Optional: a
   * store without it cannot have such an upload cleaned up.
   */
  listMultipartUploads?(key: string): Promise<MultipartUploadInfo[]>;
  /**
   * Size of part `partNumber` of the object version `ifMatch` and the object's
   * part count (S3 HEAD ?partNumber=N), or undefined when the store reports no
   * part count: the object was not uploaded in parts, or the store does not
   * serve part-level HEADs. Optional: only S3 has it (an OSS object carries a
   * CRC-64, which verifies its bytes whatever their part layout).
   */
  headPart?(key: string, partNumber: number, ifMatch: string): Promise<PartHead | undefined>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** One page of keys in UTF-8 binary order. */
  listPage(options: { prefix?: string; startAfter?: string; token?: string; maxKeys?: number }): Promise<ListPage>;
  /** Ask for an archived object to be made readable for `days`. */
  restore(key: string, days: number): Promise<void>;
  /** Release sockets. */
  close(): Promise<void>;
}
