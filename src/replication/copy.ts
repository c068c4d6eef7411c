/**
 * Copies one object version, verified end to end.
 *
 * Every upload unit (a whole small object, or one part) is read into memory
 * under the process byte budget, hashed (MD5 + CRC-64), checked against what
 * the source promised, and sent with Content-MD5 so the destination rejects
 * altered bytes; what the destination answers (part ETag, OSS CRC-64, final
 * ETag) is checked again. The source is read with If-Match on the ETag seen at
 * HEAD, so an object overwritten mid-copy aborts the attempt instead of
 * producing a mixture of two versions.
 *
 * Large objects go multipart with parts read by ranged GETs in parallel. The
 * upload id and each finished part are persisted, so an attempt after a crash
 * re-checks the parts already on the destination (re-reading the source range
 * and comparing its MD5 to the part's ETag) and uploads only the rest.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { MultipartRepo, PartRecord } from '../db/multipart-repo.js';
import { crc64Combine, crc64Of } from '../storage/crc64.js';
import { StorageError } from '../storage/errors.js';
import type { ObjectHead, ObjectStore, PutOptions } from '../storage/object-store.js';
import type { ByteBudget } from './byte-budget.js';
import { Semaphore } from './byte-budget.js';
import { isMd5Etag } from './compare.js';

export const MAX_PARTS = 10_000;
const MIB = 1024 * 1024;

export class IntegrityError extends StorageError {
  constructor(
    readonly side: 'source' | 'destination',
    message: string,
  ) {
    super('IntegrityMismatch', message);
  }
}

export interface CopyOptions {
  multipartThresholdBytes: number;
  partSizeBytes: number;
  partConcurrency: number;
}

export interface CopyContext {
  taskId: string;
  key: string;
  head: ObjectHead;
  source: ObjectStore;
  destination: ObjectStore;
  putOptions: PutOptions;
  options: CopyOptions;
  budget: ByteBudget;
  uploads: MultipartRepo;
  /** False when the destination's ETags are not MD5s of the bytes (e.g. SSE-KMS). */
  destinationEtagIsMd5: boolean;
  /** Keep an unfinished multipart upload for the next attempt (transient failure) instead of aborting it. */
  keepUploadOnError: boolean;
  log: Logger;
}

export interface CopyResult {
  bytes: number;
  destinationEtag: string;
  crc64: string;
  parts: number;
  partsReused: number;
}

/** Part size: the configured size, grown (in whole MiB) so the object fits in 10,000 parts. */
export function choosePartSize(size: number, configured: number): number {
  const minimum = Math.ceil(size / MAX_PARTS);
  if (configured >= minimum) return configured;
  return Math.ceil(minimum / MIB) * MIB;
}

/** Read exactly `size` bytes; a short or long body is a source integrity failure. */
async function readExactly(stream: Readable, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let offset = 0;
  try {
    for await (const chunk of stream) {
      const c = chunk as Buffer;
      if (offset + c.length > size) throw new IntegrityError('source', `source returned more than the expected ${size} bytes`);
      c.copy(buf, offset);
      offset += c.length;
    }
  } catch (err) {
    stream.destroy();
    if (err instanceof StorageError) throw err;
    throw new StorageError('NetworkError', `reading the source failed: ${(err as Error).message}`, undefined, undefined, {
      cause: err,
    });
  }
  if (offset !== size) throw new IntegrityError('source', `source returned ${offset} bytes, expected ${size}`);
  return buf;
}

function md5(buf: Buffer): Buffer {
  return createHash('md5').update(buf).digest();
}

function sameHex(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Check a whole-object digest against what the source HEAD promised. */
function verifySource(head: ObjectHead, crc64: string, md5Hex: (() => string) | undefined): void {
  if (head.crc64 && head.crc64 !== crc64) {
    throw new IntegrityError('source', `bytes read have CRC-64 ${crc64}, source reports ${head.crc64}`);
  }
  if (!head.crc64 && md5Hex && isMd5Etag(head) && !sameHex(md5Hex(), head.etag)) {
    throw new IntegrityError('source', `bytes read have MD5 ${md5Hex()}, source ETag is ${head.etag}`);
  }
}

async function copySingle(ctx: CopyContext): Promise<CopyResult> {
  const { head } = ctx;
  const release = await ctx.budget.acquire(head.size);
  try {
    const body = head.size === 0 ? Buffer.alloc(0) : await readExactly(await ctx.source.get(ctx.key, { ifMatch: head.etag }), head.size);
    const digest = md5(body);
    const md5Hex = digest.toString('hex');
    const crc = await crc64Of(body);
    verifySource(head, crc, () => md5Hex);
    const res = await ctx.destination.put(ctx.key, body, head.size, { ...ctx.putOptions, contentMd5: digest.toString('base64') });
    if (res.crc64 && res.crc64 !== crc) {
      throw new IntegrityError('destination', `destination stored CRC-64 ${res.crc64}, sent ${crc}`);
    }
    if (ctx.destinationEtagIsMd5 && /^[0-9a-f]{32}$/i.test(res.etag) && !sameHex(res.etag, md5Hex)) {
      throw new IntegrityError('destination', `destination ETag ${res.etag} is not the MD5 ${md5Hex} of the bytes sent`);
    }
    return { bytes: head.size, destinationEtag: res.etag, crc64: crc, parts: 1, partsReused: 0 };
  } finally {
    release();
  }
}

/** Feeds part buffers into one MD5 in part order, whatever order they are read in. */
class OrderedHasher {
  private readonly hash = createHash('md5');
  private next = 1;
  private readonly waiting = new Map<number, () => void>();

  async feed(partNumber: number, buf: Buffer): Promise<void> {
    if (partNumber !== this.next) await new Promise<void>((r) => this.waiting.set(partNumber, r));
    this.hash.update(buf);
    this.next++;
    const wake = this.waiting.get(this.next);
    if (wake) {
      this.waiting.delete(this.next);
      wake();
    }
  }

  /** Unblock everyone (an attempt is failing; nobody will feed the missing part). */
  abandon(): void {
    for (const wake of this.waiting.values()) wake();
    this.waiting.clear();
  }

  digestHex(): string {
    return this.hash.digest('hex');
  }
}

function destinationId(store: ObjectStore): string {
  return `${store.provider}:${store.bucket}`;
}

async function abortQuietly(ctx: CopyContext, uploadId: string): Promise<void> {
  try {
    await ctx.destination.abortMultipartUpload(ctx.key, uploadId);
  } catch (err) {
    if (!(err instanceof StorageError && err.code === 'NoSuchUpload')) {
      ctx.log.warn({ err, uploadId }, 'abort of multipart upload failed');
      return; // keep the record: the orphan sweep retries the abort
    }
  }
  await ctx.uploads.delete(uploadId);
}

/** Reuse a recorded upload when it is for this same source version and layout. */
async function resumableParts(
  ctx: CopyContext,
  partSize: number,
): Promise<{ uploadId: string; done: Map<number, PartRecord> } | undefined> {
  const record = await ctx.uploads.find(ctx.taskId, ctx.key);
  if (!record) return undefined;
  if (
    record.sourceEtag !== ctx.head.etag ||
    record.size !== ctx.head.size ||
    record.partSize !== partSize ||
    record.destination !== destinationId(ctx.destination)
  ) {
    await abortQuietly(ctx, record.uploadId);
    return undefined;
  }
  let listed;
  try {
    listed = await ctx.destination.listParts(ctx.key, record.uploadId);
  } catch (err) {
    if (err instanceof StorageError && err.code === 'NoSuchUpload') {
      await ctx.uploads.delete(record.uploadId);
      return undefined;
    }
    throw err;
  }
  const recorded = new Map((await ctx.uploads.parts(record.uploadId)).map((p) => [p.partNumber, p]));
  const done = new Map<number, PartRecord>();
  for (const part of listed) {
    const mine = recorded.get(part.partNumber);
    // Trust a part only when the destination and our record agree on it.
    if (mine && sameHex(mine.etag, part.etag) && mine.size === part.size) done.set(part.partNumber, mine);
  }
  return { uploadId: record.uploadId, done };
}

async function copyMultipart(ctx: CopyContext): Promise<CopyResult> {
  const { head } = ctx;
  const partSize = choosePartSize(head.size, ctx.options.partSizeBytes);
  const count = Math.ceil(head.size / partSize);
  const resumed = await resumableParts(ctx, partSize);
  let uploadId: string;
  let done: Map<number, PartRecord>;
  if (resumed) {
    ({ uploadId, done } = resumed);
    ctx.log.info({ uploadId, partsDone: done.size, parts: count }, 'resuming multipart copy');
  } else {
    uploadId = await ctx.destination.createMultipartUpload(ctx.key, ctx.putOptions);
    done = new Map();
    await ctx.uploads.insert({
      uploadId,
      taskId: ctx.taskId,
      key: ctx.key,
      destination: destinationId(ctx.destination),
      sourceEtag: head.etag,
      size: head.size,
      partSize,
    });
  }
  // MD5 of the whole object is only needed to check a source that promises one.
  const ordered = !head.crc64 && isMd5Etag(head) ? new OrderedHasher() : undefined;
  const partCrcs: string[] = new Array<string>(count);
  const partMd5s: Buffer[] = new Array<Buffer>(count);
  const etags: string[] = new Array<string>(count);
  const sizes: number[] = new Array<number>(count);
  let reused = 0;
  let failure: unknown;
  const slots = new Semaphore(ctx.options.partConcurrency);

  const copyPart = async (partNumber: number): Promise<void> => {
    if (failure) return;
    const start = (partNumber - 1) * partSize;
    const end = Math.min(head.size, start + partSize) - 1;
    const length = end - start + 1;
    const release = await ctx.budget.acquire(length);
    try {
      if (failure) return;
      const body = await readExactly(await ctx.source.get(ctx.key, { range: { start, end }, ifMatch: head.etag }), length);
      const digest = md5(body);
      const crc = await crc64Of(body);
      if (ordered) await ordered.feed(partNumber, body);
      partMd5s[partNumber - 1] = digest;
      partCrcs[partNumber - 1] = crc;
      sizes[partNumber - 1] = length;
      const prior = done.get(partNumber);
      if (prior && prior.crc64 === crc && (!ctx.destinationEtagIsMd5 || sameHex(prior.etag, digest.toString('hex')))) {
        etags[partNumber - 1] = prior.etag;
        reused++;
        return;
      }
      const res = await ctx.destination.uploadPart(ctx.key, uploadId, partNumber, body, { contentMd5: digest.toString('base64') });
      if (res.crc64 && res.crc64 !== crc) {
        throw new IntegrityError('destination', `part ${partNumber}: destination CRC-64 ${res.crc64}, sent ${crc}`);
      }
      if (ctx.destinationEtagIsMd5 && /^[0-9a-f]{32}$/i.test(res.etag) && !sameHex(res.etag, digest.toString('hex'))) {
        throw new IntegrityError('destination', `part ${partNumber}: destination ETag ${res.etag} is not the MD5 of the bytes sent`);
      }
      etags[partNumber - 1] = res.etag;
      await ctx.uploads.recordPart(uploadId, { partNumber, size: length, etag: res.etag, crc64: crc });
    } catch (err) {
      failure ??= err;
      ordered?.abandon();
    } finally {
      release();
    }
  };

  const running: Promise<void>[] = [];
  for (let n = 1; n <= count && !failure; n++) running.push(slots.run(() => copyPart(n)));
  await Promise.all(running);
  if (failure) {
    if (!ctx.keepUploadOnError || failure instanceof IntegrityError || (failure instanceof StorageError && failure.code === 'PreconditionFailed')) {
      await abortQuietly(ctx, uploadId);
    }
    throw failure;
  }

  let wholeCrc = partCrcs[0]!;
  for (let i = 1; i < count; i++) wholeCrc = crc64Combine(wholeCrc, partCrcs[i]!, sizes[i]!);
  try {
    verifySource(head, wholeCrc, ordered ? () => ordered.digestHex() : undefined);
  } catch (err) {
    await abortQuietly(ctx, uploadId);
    throw err;
  }
  let res;
  try {
    res = await ctx.destination.completeMultipartUpload(
      ctx.key,
      uploadId,
      etags.map((etag, i) => ({ partNumber: i + 1, etag })),
    );
  } catch (err) {
    if (!ctx.keepUploadOnError || !(err instanceof StorageError && err.retryable)) await abortQuietly(ctx, uploadId);
    throw err;
  }
  await ctx.uploads.delete(uploadId);
  if (res.crc64 && res.crc64 !== wholeCrc) {
    throw new IntegrityError('destination', `destination object CRC-64 ${res.crc64}, expected ${wholeCrc}`);
  }
  const multipartEtag = /^([0-9a-f]{32})-(\d+)$/i.exec(res.etag);
  if (ctx.destinationEtagIsMd5 && multipartEtag) {
    const expected = md5(Buffer.concat(partMd5s)).toString('hex');
    if (!sameHex(multipartEtag[1]!, expected) || Number(multipartEtag[2]) !== count) {
      throw new IntegrityError('destination', `destination ETag ${res.etag}, expected ${expected}-${count}`);
    }
  }
  return { bytes: head.size, destinationEtag: res.etag, crc64: wholeCrc, parts: count, partsReused: reused };
}

/** Copy the version of `ctx.key` described by `ctx.head`. */
export async function copyObject(ctx: CopyContext): Promise<CopyResult> {
  if (ctx.head.size <= ctx.options.multipartThresholdBytes) return copySingle(ctx);
  return copyMultipart(ctx);
}

