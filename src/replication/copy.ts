/**
 * Copies one object version, verified end to end.
 *
 * Every upload unit (a whole small object, or one part) is read into memory
 * under the process byte budget and hashed (MD5 + CRC-64) while it streams
 * in, checked against what the source promised, and sent with Content-MD5 so
 * the destination rejects altered bytes; what the destination answers (part
 * ETag, OSS CRC-64, final ETag) is checked again. The source is read with
 * If-Match on the ETag seen at HEAD, so an object overwritten mid-copy aborts
 * the attempt instead of producing a mixture of two versions.
 *
 * Large objects go multipart: the source is read front to back through one
 * GET (re-opened by range, If-Match, where it breaks: sequential-source.ts)
 * while up to partConcurrency earlier parts upload in parallel. The upload id
 * and each finished part are persisted, so an attempt after a crash re-checks
 * the parts already on the destination (reading their bytes again and
 * comparing MD5 and CRC-64 to the part's record) and uploads only the rest.
 * An upload is kept for the next attempt only when the failure is transient;
 * otherwise it is aborted, so none is left behind.
 *
 * A destination that acknowledges a write but reports a different checksum
 * holds a wrong object under a fingerprint that says "copied": the object is
 * deleted before the attempt fails, so no later comparison can call it in sync.
 *
 * Client-side envelope encryption (task option clientSideEncryption, format in
 * src/crypto/envelope.ts): each copy attempt draws a fresh data key and IV.
 * Every unit is first read and checked as plaintext exactly as above, then
 * encrypted in place (AES-256-CTR positioned at the unit's byte offset, so
 * parts are encrypted independently and in parallel, with no second buffer);
 * Content-MD5, the CRC-64 and ETags the destination must report are those of
 * the ciphertext. The envelope goes into the metadata of the single PUT, or of
 * CreateMultipartUpload. Encrypted multipart uploads are never resumed: the
 * data key exists only in this attempt's memory (its wrapped form is on the
 * upload, but the service cannot unwrap it without the private key, which it
 * must never hold), so parts uploaded by an earlier attempt are undecryptable
 * under a new key. The upload is aborted on failure, and a record a crash left
 * behind is aborted by the next attempt, which starts over.
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { encryptInPlace, envelopeMetadata, newDataKey, type DataKey } from '../crypto/envelope.js';
import type { MultipartRepo, PartRecord } from '../db/multipart-repo.js';
import { Crc64, crc64Combine, crc64Of } from '../storage/crc64.js';
import { SegmentHasher } from '../storage/segment-hasher.js';
import { StorageError } from '../storage/errors.js';
import { fillsBuffers, type ObjectHead, type ObjectStore, type PutOptions } from '../storage/object-store.js';
import type { BufferPool, ByteBudget } from './byte-budget.js';
import { Semaphore } from './byte-budget.js';
import { isMd5Etag } from './compare.js';
import { IntegrityError } from './integrity-error.js';
import { FINGERPRINT_CRC64 } from './metadata.js';
import { SequentialSource } from './sequential-source.js';
import { checksumToVerify, createSourceChecksum, verifySourceChecksum } from './source-checksum.js';
import { md5OfMd5s, parseMultipartEtag, sameLayout, SourcePartHasher, sourcePartLayout, verifySourceParts, type SourcePartLayout } from './source-parts.js';

export const MAX_PARTS = 10_000;
/** S3's largest part (and single PUT). */
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
const MIB = 1024 * 1024;
const MD5_HEX = /^[0-9a-f]{32}$/i;

/** The attempt was stopped from outside (process shutting down); the job is handed back. */
export class CopyAbortedError extends Error {
  readonly code = 'ABORTED';
  constructor() {
    super('copy aborted: the worker is shutting down');
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
  /**
   * The whole object's bytes, already opened by the GET that also gave `head`;
   * without it the source is read with If-Match on head.etag.
   */
  body?: Readable;
  source: ObjectStore;
  destination: ObjectStore;
  /** Headers, metadata and storage class of the copy (see metadata.ts); the CRC fingerprint is added here when known. */
  putOptions: PutOptions;
  options: CopyOptions;
  budget: ByteBudget;
  /** Recycles unit buffers across parts and copies; without one, every unit is a fresh allocation. */
  pool?: BufferPool;
  uploads: MultipartRepo;
  /** False when the destination's ETags are not MD5s of the bytes (e.g. SSE-KMS). */
  destinationEtagIsMd5: boolean;
  /** Keep an unfinished multipart upload for the next attempt (transient failure) instead of aborting it. */
  keepUploadOnError: boolean;
  /** Encrypt the replica client-side for this RSA public key (loaded before anything is written); absent: copy the bytes as they are. */
  clientSideEncryption?: { publicKey: KeyObject };
  log: Logger;
  signal?: AbortSignal;
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
  if (configured >= minimum) return Math.min(configured, MAX_PART_SIZE);
  return Math.ceil(minimum / MIB) * MIB;
}

/** The multipart layout of an object: part size and count. */
export function partPlan(size: number, configured: number): { partSize: number; count: number } {
  const partSize = choosePartSize(size, configured);
  return { partSize, count: Math.max(1, Math.ceil(size / partSize)) };
}

interface Unit {
  body: Buffer;
  md5: Buffer;
  crc64: string;
  /** Hex SHA-256 of the body, when the destination signs it (payloadHashWanted). */
  sha256?: string;
}

/** The digests of what is sent to the destination for a unit: the plaintext's, or after encryption the ciphertext's. */
interface Sent {
  md5: Buffer;
  crc64: string;
}

/**
 * True when the destination signs each write's SHA-256 and the bytes go out as
 * read (no client-side encryption): the copy then hashes them as they arrive,
 * while each piece is still in cache, instead of the store hashing the whole
 * unit again before sending it (ObjectStore.payloadSha256Wanted).
 */
async function payloadHashWanted(ctx: CopyContext): Promise<boolean> {
  return !ctx.clientSideEncryption && (await ctx.destination.payloadSha256Wanted?.()) === true;
}

/** Read exactly `buf.length` bytes into `buf`, hashing as they arrive; a short or long body is a source integrity failure. */
async function readUnit(stream: Readable, buf: Buffer, hashPayload: boolean): Promise<Unit> {
  const size = buf.length;
  const md5 = createHash('md5');
  const crc = await Crc64.create();
  const sha = hashPayload ? createHash('sha256') : undefined;
  let offset = 0;
  try {
    if (fillsBuffers(stream)) {
      // Straight from the socket into `buf` (direct-http.ts); then the body must have ended.
      offset = await stream.readInto(buf, (piece) => {
        md5.update(piece);
        crc.update(piece);
        sha?.update(piece);
      });
      if (offset === size && (await stream.readInto(Buffer.allocUnsafe(1), () => {})) > 0) {
        throw new IntegrityError('source', `source returned more than the expected ${size} bytes`);
      }
    } else for await (const chunk of stream) {
      const c = chunk as Buffer;
      if (offset + c.length > size) throw new IntegrityError('source', `source returned more than the expected ${size} bytes`);
      c.copy(buf, offset);
      md5.update(c);
      crc.update(c);
      sha?.update(c);
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
  return { body: buf, md5: md5.digest(), crc64: crc.digest(), ...(sha ? { sha256: sha.digest('hex') } : {}) };
}

/** Something that also hashes the object's bytes, in order. */
interface PieceSink {
  update(piece: Buffer): unknown;
}

/**
 * Read the next part of a sequential source into `buf`, hashing as the bytes
 * arrive: the part's MD5 and CRC-64, and the whole object's MD5 in the same
 * pass when `hasher` is the copy's shared one (segment-hasher.ts). A part size
 * that is not a multiple of 64 cannot share MD5 blocks with the whole object:
 * then `hasher` is undefined, the part gets a hasher of its own and the whole
 * object's MD5, if needed, comes from `whole`; `whole` is also where a source
 * uploaded in parts of another size has its own parts hashed (source-parts.ts).
 */
async function readPart(
  reader: SequentialSource,
  buf: Buffer,
  hasher: SegmentHasher | undefined,
  whole: PieceSink | undefined,
  hashPayload: boolean,
): Promise<Unit> {
  const h = hasher ?? new SegmentHasher();
  const sha = hashPayload ? createHash('sha256') : undefined;
  await reader.read(buf, (piece) => {
    h.update(piece);
    whole?.update(piece);
    sha?.update(piece);
  });
  const { md5, crc64 } = h.endSegment();
  if (!hasher) h.end();
  return { body: buf, md5, crc64, ...(sha ? { sha256: sha.digest('hex') } : {}) };
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

/**
 * Look up the source's part layout (source-parts.ts) from now on, alongside
 * the copy's first requests; the answer is awaited where it is needed, and a
 * failure meanwhile waits there too instead of going unhandled.
 */
function startSourceLayout(ctx: CopyContext): () => Promise<SourcePartLayout | undefined> {
  // A full-object checksum checks the bytes without part HEADs (source-checksum.ts).
  const layout = checksumToVerify(ctx.head) ? Promise.resolve(undefined) : sourcePartLayout(ctx.source, ctx.head);
  const looked = layout.then(
    (layout) => ({ layout }),
    (err: unknown) => ({ err }),
  );
  return async () => {
    const r = await looked;
    if ('err' in r) throw r.err;
    return r.layout;
  };
}

function checkAborted(ctx: CopyContext): void {
  if (ctx.signal?.aborted) throw new CopyAbortedError();
}

/** A committed object failed verification: remove it, then fail the attempt. */
async function rejectWritten(ctx: CopyContext, err: IntegrityError): Promise<never> {
  try {
    await ctx.destination.delete(ctx.key);
    ctx.log.warn({ err: err.message }, 'destination object failed verification and was deleted');
  } catch (deleteError) {
    ctx.log.error({ err: deleteError }, 'destination object failed verification and could not be deleted');
  }
  throw err;
}

async function copySingle(ctx: CopyContext): Promise<CopyResult> {
  const { head } = ctx;
  const sourceLayout = startSourceLayout(ctx);
  const release = await ctx.budget.acquire(head.size);
  const buf = takeBuffer(ctx, head.size);
  try {
    checkAborted(ctx);
    const hashPayload = await payloadHashWanted(ctx);
    const unit: Unit = ctx.body
      ? await readUnit(ctx.body, buf, hashPayload)
      : head.size === 0
        ? { body: buf, md5: createHash('md5').digest(), crc64: await crc64Of(buf) }
        : await readUnit(await ctx.source.get(ctx.key, { ifMatch: head.etag }), buf, hashPayload);
    const md5Hex = unit.md5.toString('hex');
    verifySource(head, unit.crc64, () => md5Hex);
    const checksum = checksumToVerify(head);
    if (checksum) {
      const computed = await createSourceChecksum(checksum.algorithm);
      computed.update(unit.body);
      verifySourceChecksum(head, computed);
    }
    const layout = await sourceLayout();
    if (layout) {
      const parts = await SourcePartHasher.create(layout);
      parts.update(unit.body);
      await verifySourceParts(ctx.source, head, layout, parts.digest(), ctx.log);
    }
    checkAborted(ctx);
    let userMetadata = ctx.putOptions.userMetadata ? { ...ctx.putOptions.userMetadata } : undefined;
    // The CRC of the bytes is known before the write: fingerprint it, so a later compare can check the destination's own CRC.
    if (userMetadata && userMetadata[FINGERPRINT_CRC64] === undefined) userMetadata[FINGERPRINT_CRC64] = unit.crc64;
    let sent: Sent = unit;
    if (ctx.clientSideEncryption) {
      const dataKey = newDataKey();
      const envelope = envelopeMetadata(dataKey, ctx.clientSideEncryption.publicKey, { size: head.size, crc64: unit.crc64, md5Hex });
      userMetadata = { ...userMetadata, ...envelope };
      sent = await encryptInPlace(dataKey, 0, unit.body);
    }
    const sentMd5Hex = sent.md5.toString('hex');
    const putOptions: PutOptions = { ...ctx.putOptions, contentMd5: sent.md5.toString('base64') };
    if (userMetadata) putOptions.userMetadata = userMetadata;
    if (sent === unit && unit.sha256 !== undefined) putOptions.payloadSha256 = unit.sha256;
    const res = await ctx.destination.put(ctx.key, unit.body, head.size, putOptions);
    if (res.crc64 && res.crc64 !== sent.crc64) {
      await rejectWritten(ctx, new IntegrityError('destination', `destination stored CRC-64 ${res.crc64}, sent ${sent.crc64}`));
    }
    if (ctx.destinationEtagIsMd5 && res.etagIsMd5 !== false && MD5_HEX.test(res.etag) && !sameHex(res.etag, sentMd5Hex)) {
      await rejectWritten(ctx, new IntegrityError('destination', `destination ETag ${res.etag} is not the MD5 ${sentMd5Hex} of the bytes sent`));
    }
    return { bytes: head.size, destinationEtag: res.etag, crc64: unit.crc64, parts: 1, partsReused: 0 };
  } finally {
    ctx.pool?.release(buf);
    release();
  }
}

function takeBuffer(ctx: CopyContext, size: number): Buffer {
  return ctx.pool ? ctx.pool.take(size) : Buffer.allocUnsafe(size);
}

function destinationId(store: ObjectStore): string {
  return `${store.provider}:${store.bucket}`;
}

/** Abort an upload on the destination and forget it. An abort that fails keeps the record, so a later attempt retries it. */
export async function abortUpload(
  destination: ObjectStore,
  uploads: MultipartRepo,
  key: string,
  uploadId: string,
  log: Logger,
): Promise<void> {
  try {
    await destination.abortMultipartUpload(key, uploadId);
  } catch (err) {
    if (!(err instanceof StorageError && err.code === 'NoSuchUpload')) {
      log.warn({ err, uploadId }, 'abort of multipart upload failed');
      return;
    }
  }
  await uploads.delete(uploadId);
}

function abortQuietly(ctx: CopyContext, uploadId: string): Promise<void> {
  return abortUpload(ctx.destination, ctx.uploads, ctx.key, uploadId, ctx.log);
}

/** A failure the next attempt can pick up from: transient, and not about the data itself. */
function resumable(ctx: CopyContext, err: unknown): boolean {
  if (!ctx.keepUploadOnError) return false;
  // An encrypted upload's data key dies with this attempt (module comment): nothing to resume.
  if (ctx.clientSideEncryption) return false;
  if (err instanceof CopyAbortedError) return true;
  if (err instanceof IntegrityError) return false;
  if (err instanceof StorageError) return err.retryable && err.code !== 'PreconditionFailed';
  return true; // database hiccup recording a part: the parts on the destination are still good
}

/** Reuse a recorded upload when it is for this same source version, destination and layout. */
async function resumableParts(
  ctx: CopyContext,
  partSize: number,
): Promise<{ uploadId: string; done: Map<number, PartRecord> } | undefined> {
  const record = await ctx.uploads.find(ctx.taskId, ctx.key);
  if (!record) return undefined;
  if (
    // Encrypted uploads are never resumed (module comment): a crash's leftover is aborted and the copy starts over.
    ctx.clientSideEncryption ||
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
    // A store that refuses to list an upload's parts (s3rver and other partial S3 implementations answer
    // 405 MethodNotAllowed, some 501; a role without s3:ListMultipartUploadParts gets 403) leaves nothing
    // to check its parts against, so nothing to resume: start over. Thrown, the refusal would fail this
    // key at every attempt for as long as the record lasts. An abort that fails keeps the record, and the
    // new upload's intent is then held until a sweep (src/queue/upload-intents.ts).
    if (err instanceof StorageError && !err.retryable) {
      ctx.log.warn({ err, uploadId: record.uploadId }, 'the parts of the recorded upload cannot be listed; copying from the start');
      await abortQuietly(ctx, record.uploadId);
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

/**
 * Create options of an encrypted upload: the envelope of `dataKey`. The
 * metadata is fixed before any byte is read, so the plaintext digest recorded
 * is the one the source promises, and only one that verifySource checks
 * against the bytes before Complete (the source's CRC-64, else its MD5 ETag).
 */
function encryptedCreateOptions(ctx: CopyContext, dataKey: DataKey, publicKey: KeyObject): PutOptions {
  const { head } = ctx;
  const plaintext = {
    size: head.size,
    ...(head.crc64 !== undefined ? { crc64: head.crc64 } : isMd5Etag(head) ? { md5Hex: head.etag } : {}),
  };
  return { ...ctx.putOptions, userMetadata: { ...ctx.putOptions.userMetadata, ...envelopeMetadata(dataKey, publicKey, plaintext) } };
}

async function copyMultipart(ctx: CopyContext): Promise<CopyResult> {
  const { head } = ctx;
  const { partSize, count } = partPlan(head.size, ctx.options.partSizeBytes);
  const dataKey = ctx.clientSideEncryption ? newDataKey() : undefined;
  const sourceLayout = startSourceLayout(ctx);
  const checksum = checksumToVerify(head);
  const sourceChecksum = checksum ? await createSourceChecksum(checksum.algorithm) : undefined;
  const resumed = await resumableParts(ctx, partSize);
  let uploadId: string;
  let done: Map<number, PartRecord>;
  if (resumed) {
    ({ uploadId, done } = resumed);
    ctx.log.info({ uploadId, partsDone: done.size, parts: count }, 'resuming multipart copy');
  } else {
    checkAborted(ctx);
    const createOptions = dataKey && ctx.clientSideEncryption ? encryptedCreateOptions(ctx, dataKey, ctx.clientSideEncryption.publicKey) : ctx.putOptions;
    uploadId = await ctx.destination.createMultipartUpload(ctx.key, createOptions);
    done = new Map();
    try {
      await ctx.uploads.insert({
        uploadId,
        taskId: ctx.taskId,
        key: ctx.key,
        destination: destinationId(ctx.destination),
        sourceEtag: head.etag,
        size: head.size,
        partSize,
      });
    } catch (err) {
      // Unrecorded, the upload could never be resumed nor found again: do not leave it behind.
      await ctx.destination.abortMultipartUpload(ctx.key, uploadId).catch(() => {});
      throw err;
    }
  }
  let layout: SourcePartLayout | undefined;
  try {
    layout = await sourceLayout();
  } catch (err) {
    if (!resumable(ctx, err)) await abortQuietly(ctx, uploadId);
    throw err;
  }
  // A source uploaded in parts is checked against its multipart ETag: with this copy's own part MD5s
  // when its parts have this copy's size, else with a lane of its own; or against its composite
  // checksum, always with a lane of its own (source-parts.ts).
  const ownParts = layout !== undefined && sameLayout(layout, head.size, partSize);
  const sourceParts = layout && !ownParts ? await SourcePartHasher.create(layout) : undefined;
  /** Plaintext MD5 of each part (ownParts only): the source's part MD5s. */
  const plainMd5s: Buffer[] = ownParts ? new Array<Buffer>(count) : [];
  // MD5 of the whole object is only needed to check a source that promises one; the parts arrive in order.
  const needWholeMd5 = !head.crc64 && isMd5Etag(head);
  const hasher = partSize % 64 === 0 ? new SegmentHasher() : undefined;
  const wholeMd5 = needWholeMd5 && !hasher ? createHash('md5') : undefined;
  const hashPayload = await payloadHashWanted(ctx);
  /** CRC-64 of each part's plaintext (checked against the source) and of what was sent (checked against the destination). */
  const partCrcs: string[] = new Array<string>(count);
  const sentCrcs: string[] = new Array<string>(count);
  /** MD5 of each part as sent: the destination's multipart ETag is built from these. */
  const partMd5s: Buffer[] = new Array<Buffer>(count);
  const etags: string[] = new Array<string>(count);
  const sizes: number[] = new Array<number>(count);
  let reused = 0;
  let failure: unknown;
  const slots = new Semaphore(ctx.options.partConcurrency);
  const reader = new SequentialSource({
    store: ctx.source,
    key: ctx.key,
    etag: head.etag,
    size: head.size,
    ...(ctx.body ? { opened: ctx.body } : {}),
    onReopen: (offset, err) => ctx.log.info({ offset, err: (err as Error).message }, 'source stream failed; re-opened from where it stopped'),
  });

  /** Upload one part read into `buf`; owns `buf` and its budget from here. Never rejects: a failure is recorded for the attempt. */
  const uploadPart = async (partNumber: number, start: number, unit: Unit, release: () => void): Promise<void> => {
    try {
      if (failure) return;
      checkAborted(ctx);
      const sent: Sent = dataKey ? await encryptInPlace(dataKey, start, unit.body) : unit;
      const md5Hex = sent.md5.toString('hex');
      partMd5s[partNumber - 1] = sent.md5;
      sentCrcs[partNumber - 1] = sent.crc64;
      const res = await ctx.destination.uploadPart(ctx.key, uploadId, partNumber, unit.body, {
        contentMd5: sent.md5.toString('base64'),
        ...(sent === unit && unit.sha256 !== undefined ? { payloadSha256: unit.sha256 } : {}),
      });
      if (res.crc64 && res.crc64 !== sent.crc64) {
        throw new IntegrityError('destination', `part ${partNumber}: destination CRC-64 ${res.crc64}, sent ${sent.crc64}`);
      }
      if (ctx.destinationEtagIsMd5 && res.etagIsMd5 !== false && MD5_HEX.test(res.etag) && !sameHex(res.etag, md5Hex)) {
        throw new IntegrityError('destination', `part ${partNumber}: destination ETag ${res.etag} is not the MD5 of the bytes sent`);
      }
      etags[partNumber - 1] = res.etag;
      // The record is of what the destination holds (ciphertext when encrypting); only resume reads it.
      // Written after the slot is freed: on the bench machine a record took 15–24 ms (p90 45 ms) to come
      // back to this busy event loop, time in which the slot could not start the next part. Settled
      // before the upload is completed or aborted (a record's failure fails the attempt, as before).
      recording.push(
        ctx.uploads.recordPart(uploadId, { partNumber, size: unit.body.length, etag: res.etag, crc64: sent.crc64 }).catch((err: unknown) => {
          failure ??= err;
        }),
      );
    } catch (err) {
      failure ??= err;
    } finally {
      // The upload has returned (or failed): nothing reads the buffer any more.
      ctx.pool?.release(unit.body);
      release();
    }
  };

  // The source is read part after part through one stream (sequential-source.ts) while up to
  // partConcurrency earlier parts upload: at most partConcurrency + 1 part buffers per copy.
  const uploading: Promise<void>[] = [];
  /** Parts' resume records being written (uploadPart); settled before the upload completes or is aborted. */
  const recording: Promise<void>[] = [];
  for (let partNumber = 1; partNumber <= count && !failure; partNumber++) {
    const start = (partNumber - 1) * partSize;
    const length = Math.min(head.size, start + partSize) - start;
    const release = await ctx.budget.acquire(length);
    let buf: Buffer | undefined;
    let handedOver = false;
    try {
      if (failure) break;
      checkAborted(ctx);
      buf = takeBuffer(ctx, length);
      // At most one of the three is set: the source is checked by whichever describes its bytes.
      const unit = await readPart(reader, buf, hasher, wholeMd5 ?? sourceParts ?? sourceChecksum, hashPayload);
      if (ownParts) plainMd5s[partNumber - 1] = unit.md5;
      partCrcs[partNumber - 1] = unit.crc64;
      sizes[partNumber - 1] = length;
      const prior = dataKey ? undefined : done.get(partNumber);
      if (prior && prior.size === length && prior.crc64 === unit.crc64 && (!ctx.destinationEtagIsMd5 || !MD5_HEX.test(prior.etag) || sameHex(prior.etag, unit.md5.toString('hex')))) {
        // Uploaded by an earlier attempt and re-checked against the bytes just read: not sent again.
        partMd5s[partNumber - 1] = unit.md5;
        sentCrcs[partNumber - 1] = unit.crc64;
        etags[partNumber - 1] = prior.etag;
        reused++;
        continue;
      }
      // Wait for an upload slot (the reader pauses here while every slot is busy).
      await new Promise<void>((started) => {
        uploading.push(
          slots.run(() => {
            started();
            return uploadPart(partNumber, start, unit, release);
          }),
        );
      });
      handedOver = true;
    } catch (err) {
      failure ??= err;
    } finally {
      if (!handedOver) {
        if (buf) ctx.pool?.release(buf);
        release();
      }
    }
  }
  await Promise.all(uploading);
  await Promise.all(recording);
  if (failure) reader.close();
  else {
    try {
      await reader.finish();
    } catch (err) {
      failure = err;
    }
  }
  if (failure) {
    if (!resumable(ctx, failure)) await abortQuietly(ctx, uploadId);
    throw failure;
  }

  let wholeCrc = partCrcs[0]!;
  for (let i = 1; i < count; i++) wholeCrc = crc64Combine(wholeCrc, partCrcs[i]!, sizes[i]!);
  // Unencrypted, what was sent is what was read.
  let sentCrc = wholeCrc;
  if (dataKey) {
    sentCrc = sentCrcs[0]!;
    for (let i = 1; i < count; i++) sentCrc = crc64Combine(sentCrc, sentCrcs[i]!, sizes[i]!);
  }
  try {
    let wholeMd5Hex: string | undefined;
    if (needWholeMd5) wholeMd5Hex = hasher ? hasher.digestWhole().toString('hex') : wholeMd5!.digest('hex');
    else hasher?.end();
    verifySource(head, wholeCrc, wholeMd5Hex === undefined ? undefined : () => wholeMd5Hex);
    if (sourceChecksum) verifySourceChecksum(head, sourceChecksum);
    if (layout) await verifySourceParts(ctx.source, head, layout, ownParts ? md5OfMd5s(plainMd5s) : sourceParts!.digest(), ctx.log);
  } catch (err) {
    await abortQuietly(ctx, uploadId);
    throw err;
  }
  let res;
  try {
    checkAborted(ctx);
    res = await ctx.destination.completeMultipartUpload(
      ctx.key,
      uploadId,
      etags.map((etag, i) => ({ partNumber: i + 1, etag })),
    );
  } catch (err) {
    if (!resumable(ctx, err)) await abortQuietly(ctx, uploadId);
    throw err;
  }
  await ctx.uploads.delete(uploadId);
  if (res.crc64 && res.crc64 !== sentCrc) {
    await rejectWritten(ctx, new IntegrityError('destination', `destination object CRC-64 ${res.crc64}, expected ${sentCrc}`));
  }
  const multipartEtag = parseMultipartEtag(res.etag);
  if (ctx.destinationEtagIsMd5 && res.etagIsMd5 !== false && multipartEtag) {
    const expected = md5OfMd5s(partMd5s);
    if (multipartEtag.md5OfMd5s !== expected || multipartEtag.count !== count) {
      await rejectWritten(ctx, new IntegrityError('destination', `destination ETag ${res.etag}, expected ${expected}-${count}`));
    }
  }
  return { bytes: head.size, destinationEtag: res.etag, crc64: wholeCrc, parts: count, partsReused: reused };
}

/** Single PUT or multipart: the threshold, and never a single PUT above S3's 5 GiB limit. */
export function usesMultipart(size: number, thresholdBytes: number): boolean {
  return size > Math.min(thresholdBytes, MAX_PART_SIZE);
}

/** Copy the version of `ctx.key` described by `ctx.head`. */
export async function copyObject(ctx: CopyContext): Promise<CopyResult> {
  if (!usesMultipart(ctx.head.size, ctx.options.multipartThresholdBytes)) return copySingle(ctx);
  return copyMultipart(ctx);
}
