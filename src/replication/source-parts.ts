/**
 * Checking the bytes read from an S3 object that was uploaded in parts.
 *
 * Such an object's ETag is not the MD5 of its bytes but the MD5 of its parts'
 * MD5s, followed by "-N" (N parts), and most large S3 objects are like that:
 * every SDK upload manager, the AWS CLI and rclone upload them in parts. Without
 * a CRC-64 (OSS) or an MD5 ETag the bytes read could not be checked against the
 * source at all, so a byte damaged on the way in would be copied and, checked
 * only against what was sent, be recorded `completed`. The ETag can be
 * recomputed from the bytes once the part boundaries are known: S3 reports part
 * N's size and the part count to `HEAD ?partNumber=N`.
 *
 * Used when no cheaper digest describes the bytes: an OSS CRC-64, a
 * single-part MD5 ETag, or an S3 full-object checksum (source-checksum.ts)
 * come first.
 *
 * One HEAD (part 1) per copy: uploaders cut every part but the last to one size,
 * so part 1's size and the count give every boundary. A layout that does not
 * fit that size is read part by part (N HEADs, 8 at a time) before the copy;
 * one that fits but was not uniform (parts 8, 5, 8 MiB and 8, 8, 5 MiB have the
 * same count, first size and total) shows as a mismatch, and then the sizes are
 * read to tell the two apart: same layout as assumed → the bytes are wrong (the
 * attempt fails and is retried); another layout → the bytes were hashed at the
 * wrong boundaries and cannot be checked in this attempt, which goes on
 * unchecked against the source (as before this check existed), with a warning.
 *
 * The ETags of SSE-KMS and SSE-C objects are not MD5s of the bytes. Such an
 * object uploaded in parts is checked the same way against a composite checksum
 * when it has one (ObjectHead.compositeChecksum: an upload whose uploader chose
 * CRC32, CRC32C, SHA-1 or SHA-256 per part, e.g. an SDK's ChecksumAlgorithm or
 * the AWS CLI's --checksum-algorithm): the checksum of its part checksums, over
 * the same part boundaries. Checksums are of the bytes as uploaded, before the
 * store encrypts them, so they hold whatever the ETag is.
 *
 * Not checkable, and copied as before: SSE-KMS and SSE-C objects without a
 * checksum, stores that answer no part count (they ignore partNumber, or the
 * object was not uploaded in parts), and objects whose count in the ETag or
 * checksum disagrees with the one HEAD reports.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { StorageError } from '../storage/errors.js';
import type { ObjectHead, ObjectStore, S3ChecksumAlgorithm } from '../storage/object-store.js';
import { IntegrityError } from './integrity-error.js';
import { createChecksumHasher, restartingHash, type RestartingDigest } from './source-checksum.js';

const MULTIPART_ETAG = /^([0-9a-f]{32})-(\d+)$/i;
/** Part HEADs in flight when every part's size must be read. */
const HEAD_CONCURRENCY = 8;

/** What the source's part digests are checked against, and over how many parts. */
export type PartDigestTarget =
  /** The multipart ETag's digest: hex MD5 of the concatenated part MD5s. */
  | { kind: 'etag'; count: number; md5OfMd5s: string }
  /** A composite checksum: base64 of `algorithm` over the concatenated part checksums. */
  | { kind: 'checksum'; count: number; algorithm: S3ChecksumAlgorithm; value: string };

export interface SourcePartLayout {
  /** Size of each part, in order. */
  sizes: number[];
  /** True when the sizes were inferred from part 1's (and so may be wrong); false when every part was HEADed. */
  assumed: boolean;
  target: PartDigestTarget;
}

/** The digest (hex MD5 of the part MD5s, lower-case) and part count an "md5-N" ETag is made of, or undefined for any other ETag. */
export function parseMultipartEtag(etag: string): { md5OfMd5s: string; count: number } | undefined {
  const m = MULTIPART_ETAG.exec(etag);
  return m ? { md5OfMd5s: m[1]!.toLowerCase(), count: Number(m[2]) } : undefined;
}

/** The ETag's digest and part count, when the ETag is a multipart ETag that digests the bytes. */
export function multipartEtagOf(head: ObjectHead): { md5OfMd5s: string; count: number } | undefined {
  if (!head.multipartEtag || head.crc64 !== undefined) return undefined;
  // SSE-KMS and SSE-C ETags are not MD5s of the bytes (S3 API reference, "Common Response Headers").
  if (head.sseCustomerAlgorithm !== undefined || head.serverSideEncryption?.startsWith('aws:kms')) return undefined;
  const parsed = parseMultipartEtag(head.etag);
  if (!parsed || !Number.isSafeInteger(parsed.count) || parsed.count < 1 || parsed.count > 10_000) return undefined;
  return parsed;
}

/**
 * What the bytes of a source uploaded in parts can be checked against: its
 * multipart ETag (cheapest: the copy's own part MD5s may serve), else its
 * composite checksum.
 */
export function partDigestTarget(head: ObjectHead): PartDigestTarget | undefined {
  const etag = multipartEtagOf(head);
  if (etag) return { kind: 'etag', ...etag };
  const composite = head.compositeChecksum;
  if (!composite || head.crc64 !== undefined) return undefined;
  return { kind: 'checksum', ...composite };
}

/**
 * HEAD ?partNumber=N of the version `head.etag`. A refusal (a store without
 * part-level HEADs answering 400 or 501, a 404, a 403) means "cannot check";
 * a transient failure or a changed source (PreconditionFailed) fails the attempt.
 */
async function headPart(store: ObjectStore, head: ObjectHead, partNumber: number): Promise<{ size: number; partsCount: number } | undefined> {
  try {
    return await store.headPart!(head.key, partNumber, head.etag);
  } catch (err) {
    if (err instanceof StorageError && !err.retryable && err.code !== 'PreconditionFailed') return undefined;
    throw err;
  }
}

/** Every part's size, read with HEAD ?partNumber (part 1's already known); undefined when one cannot be read. */
async function readPartSizes(store: ObjectStore, head: ObjectHead, count: number, first: number): Promise<number[] | undefined> {
  const sizes = new Array<number>(count);
  sizes[0] = first;
  let next = 2;
  let unreadable = false;
  const worker = async (): Promise<void> => {
    while (next <= count && !unreadable) {
      const n = next++;
      const part = await headPart(store, head, n);
      if (!part || part.partsCount !== count) unreadable = true;
      else sizes[n - 1] = part.size;
    }
  };
  await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, count - 1) }, worker));
  return unreadable ? undefined : sizes;
}

function uniformSizes(size: number, count: number, first: number): number[] | undefined {
  const last = size - first * (count - 1);
  if (last <= 0 || last > first) return undefined;
  const sizes = new Array<number>(count).fill(first);
  sizes[count - 1] = last;
  return sizes;
}

/**
 * The part layout the source's ETag was computed over, or undefined when the
 * object cannot be checked this way (module comment).
 */
export async function sourcePartLayout(store: ObjectStore, head: ObjectHead): Promise<SourcePartLayout | undefined> {
  const target = partDigestTarget(head);
  if (!target || !store.headPart) return undefined;
  const first = await headPart(store, head, 1);
  if (!first || first.partsCount !== target.count || first.size <= 0 || first.size > head.size) return undefined;
  const uniform = uniformSizes(head.size, target.count, first.size);
  if (uniform) return { sizes: uniform, assumed: true, target };
  const sizes = await readPartSizes(store, head, target.count, first.size);
  if (!sizes || sizes.reduce((a, b) => a + b, 0) !== head.size) return undefined;
  return { sizes, assumed: false, target };
}

/**
 * True when the source is checked by its multipart ETag and its parts are
 * exactly `partSize` bytes each but the last: the copy's own part MD5s are the source's.
 */
export function sameLayout(layout: SourcePartLayout, size: number, partSize: number): boolean {
  if (layout.target.kind !== 'etag') return false;
  const sizes = uniformSizes(size, layout.sizes.length, partSize);
  return sizes !== undefined && sizes.every((s, i) => s === layout.sizes[i]);
}

/** Hex MD5 of the concatenated part MD5s (the digest in a multipart ETag). */
export function md5OfMd5s(md5s: Buffer[]): string {
  return createHash('md5').update(Buffer.concat(md5s)).digest('hex');
}

/**
 * The digest of each source part (MD5, or the composite checksum's algorithm),
 * fed the object's bytes in order, in pieces of any size.
 */
export class SourcePartHasher {
  readonly #sizes: number[];
  readonly #target: PartDigestTarget;
  readonly #digester: RestartingDigest;
  readonly #digests: Buffer[] = [];
  #left: number;

  private constructor(layout: SourcePartLayout, digester: RestartingDigest) {
    this.#sizes = layout.sizes;
    this.#target = layout.target;
    this.#digester = digester;
    this.#left = layout.sizes[0]!;
  }

  static async create(layout: SourcePartLayout): Promise<SourcePartHasher> {
    const t = layout.target;
    return new SourcePartHasher(layout, t.kind === 'etag' ? restartingHash('md5') : await createChecksumHasher(t.algorithm));
  }

  update(piece: Buffer): void {
    let offset = 0;
    while (offset < piece.length) {
      if (this.#digests.length === this.#sizes.length) throw new IntegrityError('source', 'source returned more bytes than its parts hold');
      const take = Math.min(this.#left, piece.length - offset);
      this.#digester.update(offset === 0 && take === piece.length ? piece : piece.subarray(offset, offset + take));
      offset += take;
      this.#left -= take;
      if (this.#left === 0) {
        this.#digests.push(this.#digester.digestRaw());
        const next = this.#sizes[this.#digests.length];
        if (next !== undefined) this.#left = next;
      }
    }
  }

  /**
   * The digest of the bytes given in the target's form, once every part is
   * complete: hex MD5 of the part MD5s, or base64 of the checksum of the part checksums.
   */
  digest(): string {
    if (this.#digests.length !== this.#sizes.length) throw new Error(`${this.#digests.length} of ${this.#sizes.length} source parts hashed`);
    if (this.#target.kind === 'etag') return md5OfMd5s(this.#digests);
    this.#digester.update(Buffer.concat(this.#digests));
    return this.#digester.digestRaw().toString('base64');
  }
}

/**
 * Compare the digest of the bytes read with the source's multipart ETag or
 * composite checksum (layout.target). A mismatch under an assumed layout is
 * first told apart from a layout that was not uniform (module comment): that
 * one is logged and let through, a real one throws.
 */
export async function verifySourceParts(
  store: ObjectStore,
  head: ObjectHead,
  layout: SourcePartLayout,
  digest: string,
  log: Logger,
): Promise<void> {
  const t = layout.target;
  if (digest === (t.kind === 'etag' ? t.md5OfMd5s : t.value)) return;
  const against = t.kind === 'etag' ? 'its multipart ETag' : `its composite ${t.algorithm} checksum`;
  if (layout.assumed) {
    const sizes = await readPartSizes(store, head, layout.sizes.length, layout.sizes[0]!);
    if (!sizes || sizes.some((s, i) => s !== layout.sizes[i])) {
      log.warn(
        { parts: layout.sizes.length, firstPartSize: layout.sizes[0] },
        sizes
          ? `source parts are not of one size: the bytes read could not be checked against ${against}`
          : `source part sizes could not be read: the bytes read could not be checked against ${against}`,
      );
      return;
    }
  }
  const n = layout.sizes.length;
  throw new IntegrityError(
    'source',
    t.kind === 'etag'
      ? `bytes read have multipart MD5 ${digest}-${n}, source ETag is ${head.etag}`
      : `bytes read have composite ${t.algorithm} ${digest}-${n}, source reports ${t.value}-${t.count}`,
  );
}
