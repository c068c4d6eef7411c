/**
 * In-memory state of the OSS test server: buckets, objects and in-progress
 * multipart uploads, plus the fixed facts about the fake account (region,
 * owner). Pure data — no HTTP, no XML — so handlers stay readable and the
 * public `getObject`/`pendingUploads` accessors read the same maps.
 */

/** The region the fake claims to be in; also ali-oss's default `region`. */
export const SERVER_REGION = 'oss-cn-hangzhou';
/** Owner id/display name reported in listings and bucket info. */
export const OWNER_ID = 'oss-test-server-owner';

export const STORAGE_CLASSES = ['Standard', 'IA', 'Archive', 'ColdArchive', 'DeepColdArchive'] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** Storage classes whose objects must be restored before GET/copy can read them. */
export function needsRestore(storageClass: StorageClass): boolean {
  return storageClass === 'Archive' || storageClass === 'ColdArchive' || storageClass === 'DeepColdArchive';
}

/** The standard HTTP headers OSS persists with an object and returns on GET/HEAD. */
export const CONTENT_HEADERS = [
  'content-type',
  'content-encoding',
  'content-disposition',
  'content-language',
  'cache-control',
  'expires',
] as const;

/** What the uploader chose for an object; a REPLACE copy swaps all of it, a COPY copy keeps it. */
export interface ObjectAttributes {
  /** Lower-cased names from CONTENT_HEADERS → value as received. */
  readonly contentHeaders: Readonly<Record<string, string>>;
  /** User metadata: lower-cased name without `x-oss-meta-` → value as received on the wire. */
  readonly meta: Readonly<Record<string, string>>;
  readonly storageClass: StorageClass;
  readonly encryption?: { readonly algorithm: string; readonly keyId?: string };
}

export type ObjectType = 'Normal' | 'Multipart' | 'Appendable';

/** Times in epoch milliseconds. A restore is "ongoing" until readyAt and lapses at expiresAt. */
export interface RestoreState {
  readonly readyAt: number;
  readonly expiresAt: number;
}

export interface StoredObject {
  readonly key: string;
  readonly body: Buffer;
  readonly attributes: ObjectAttributes;
  /** Upper-case hex, unquoted; `…-N` for multipart objects. */
  readonly etag: string;
  /** CRC-64/XZ of the whole body as an unsigned decimal string. */
  readonly crc64: string;
  /** MD5 of the body; OSS only reports Content-MD5 for objects written in one request. */
  readonly contentMd5?: Buffer;
  /** Whole seconds, like OSS, so If-Modified-Since round-trips exactly. */
  readonly lastModified: Date;
  readonly type: ObjectType;
  restore?: RestoreState;
}

export interface StoredPart {
  readonly partNumber: number;
  readonly body: Buffer;
  readonly md5: Buffer;
  readonly etag: string;
  readonly crc64: string;
  readonly lastModified: Date;
}

export interface MultipartUpload {
  readonly uploadId: string;
  readonly key: string;
  readonly initiated: Date;
  /** Captured at initiate time: Complete must not be able to change them (ali-oss even strips SSE/storage-class headers from it). */
  readonly attributes: ObjectAttributes;
  readonly parts: Map<number, StoredPart>;
}

export type RestoreStatus = 'none' | 'ongoing' | 'restored';

export function restoreStatus(object: StoredObject, now = Date.now()): RestoreStatus {
  const restore = object.restore;
  if (restore === undefined || now >= restore.expiresAt) return 'none';
  return now < restore.readyAt ? 'ongoing' : 'restored';
}

/** OSS keeps one-second resolution for Last-Modified. */
export function wholeSecondsNow(): Date {
  return new Date(Math.floor(Date.now() / 1000) * 1000);
}

/** OSS lists keys in the byte order of their UTF-8 encoding, which differs from JS UTF-16 order above U+FFFF. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class BucketState {
  private readonly objectMap = new Map<string, StoredObject>();
  readonly uploads = new Map<string, MultipartUpload>();
  /** Cached byte-ordered key list; rebuilt lazily after any write. */
  private sortedKeys: string[] | undefined;

  constructor(
    readonly name: string,
    readonly createdAt: Date,
  ) {}

  get objectCount(): number {
    return this.objectMap.size;
  }

  getObject(key: string): StoredObject | undefined {
    return this.objectMap.get(key);
  }

  putObject(object: StoredObject): void {
    if (!this.objectMap.has(object.key)) this.sortedKeys = undefined;
    this.objectMap.set(object.key, object);
  }

  deleteObject(key: string): boolean {
    const existed = this.objectMap.delete(key);
    if (existed) this.sortedKeys = undefined;
    return existed;
  }

  keysInByteOrder(): readonly string[] {
    if (this.sortedKeys === undefined) {
      this.sortedKeys = [...this.objectMap.keys()]
        .map((key) => ({ key, bytes: Buffer.from(key, 'utf8') }))
        .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
        .map(({ key }) => key);
    }
    return this.sortedKeys;
  }
}

/** OSS bucket naming: 3–63 of [a-z0-9-], starting and ending with a letter or digit. */
export function isValidBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name);
}

export class OssStore {
  private readonly buckets = new Map<string, BucketState>();

  /** Creates the bucket unless it exists; returns whether it was created. */
  createBucket(name: string): boolean {
    if (!isValidBucketName(name)) throw new Error(`invalid OSS bucket name: ${JSON.stringify(name)}`);
    if (this.buckets.has(name)) return false;
    this.buckets.set(name, new BucketState(name, wholeSecondsNow()));
    return true;
  }

  bucket(name: string): BucketState | undefined {
    return this.buckets.get(name);
  }

  deleteBucket(name: string): void {
    this.buckets.delete(name);
  }

  allBuckets(): BucketState[] {
    return [...this.buckets.values()].sort((a, b) => compareKeys(a.name, b.name));
  }
}
