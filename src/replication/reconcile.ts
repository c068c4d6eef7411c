/**
 * Level-triggered reconcile of one key: whatever event queued it, read the
 * current state of both sides and make the destination match the source.
 * Duplicated, reordered or stale events are therefore harmless, and a retry
 * is simply another reconcile.
 *
 * The one thing a job may tell it: a scan that found the key missing from the
 * destination listing queues it with `destinationAbsentAt`. When that hint is
 * trusted (see `trustsDestinationAbsent`: a first attempt, no upload intent,
 * younger than DESTINATION_HINT_MAX_AGE_MS), the destination HEAD is skipped
 * and the destination treated as absent: a new object then costs GET source +
 * PUT destination instead of HEAD + GET + PUT. Why that is safe:
 *  - The hint is only acted on when the outcome is a copy, and a copy writes
 *    the source's current bytes (read in that very GET) whatever the
 *    destination holds. If the destination gained the object after the
 *    listing, it is overwritten with those bytes: the end state a HEAD would
 *    have led to (an equal copy left alone, an unequal one replaced). Only the
 *    status differs: `completed` where the HEAD would have said `in_sync`.
 *  - Whenever the outcome would not be a copy, the hint is dropped and the
 *    destination HEADed, then the normal rules apply: a source missing when
 *    opened (deletes on: a destination that appeared meanwhile is deleted;
 *    else `source_missing`, the destination untouched); an archived source
 *    (the GET refused with InvalidObjectState: HEAD the source, as always); a
 *    source the task refuses to copy (SSE-C without a key, already
 *    client-side encrypted), which may still be `in_sync` with the destination.
 *  - A retry, a job whose key has an upload intent, a second look after the
 *    source vanished mid-copy, or a stale hint: the HEAD, as without a hint.
 * The freshness bound is not needed for correctness (the argument above holds
 * at any age); it limits the cost of a wrong hint, a re-copy of an object
 * that had become in sync (another process, the previous job of the key
 * running while the scan listed), to hints read recently.
 *
 * Without a trusted hint, a job that says the source changed (an event of a
 * created or overwritten object, or a scan that found the key missing or
 * different) reads both sides at once: the destination HEAD and the source's
 * GET are sent together, so a copy waits one round trip fewer (HEAD then GET
 * was two in a row: on a cross-region pair, tens of milliseconds per object,
 * which at a fixed number of copies in flight is throughput). The decision
 * is the one the HEAD-first order makes: the GET's
 * answer carries the head of the version whose bytes follow. What it can
 * waste: when the destination turns out to be in sync already (a duplicate
 * event), the opened GET is dropped unread — a small object's body is drained
 * to keep the connection, a large one's connection is closed (the bytes already
 * in flight, socket buffers' worth, are source egress spent for nothing). Other jobs (an
 * operator's retry, a removal) HEAD the destination first, as the order
 * above describes, and read the source's bytes only when there is no copy.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { isEnvelopeEncrypted } from '../crypto/envelope.js';
import { KeyMaterialError } from '../crypto/keys.js';
import type { MultipartRepo } from '../db/multipart-repo.js';
import { StorageError } from '../storage/errors.js';
import type { ObjectHead, ObjectStore } from '../storage/object-store.js';
import type { Task } from '../tasks/registry.js';
import type { ReplicateJob } from '../queue/boss.js';
import type { BufferPool, ByteBudget } from './byte-budget.js';
import { compareObjects } from './compare.js';
import { abortUpload, copyObject } from './copy.js';
import { taskEncryptionKey, type TaskEncryptionKey } from './encryption.js';
import { putOptionsFor } from './metadata.js';

export type ReconcileStatus = 'completed' | 'in_sync' | 'deleted' | 'source_missing' | 'archived';

export interface ReconcileOutcome {
  status: ReconcileStatus;
  bytes?: number;
  sourceEtag?: string;
  sourceCrc64?: string;
  destinationEtag?: string;
  /** Why it ended this way, for the log and the status row. */
  detail?: string;
  /** Queue the key again after this many seconds (an archived object being restored). */
  requeueAfterSeconds?: number;
  partsReused?: number;
}

/** A failure that is about the object or task, not the transport. */
export class ReplicationError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface ReconcileDeps {
  source: ObjectStore;
  destination: ObjectStore;
  budget: ByteBudget;
  pool?: BufferPool;
  uploads: MultipartRepo;
  log: Logger;
  keepUploadOnError: boolean;
  /** Seconds before an archived object whose restore was requested is looked at again. Default 15 minutes. */
  restoreRecheckSeconds?: number;
  /** Aborted when the process stops: the copy stops issuing requests and the job is handed back. */
  signal?: AbortSignal;
}

/** How long to wait before looking again at an object whose restore was requested. */
export const RESTORE_RECHECK_SECONDS = 15 * 60;

/**
 * How old a scan's "destination absent" hint may be and still spare the
 * destination HEAD. Ten minutes: a scan's jobs normally run within seconds to
 * minutes of the listing (at 200 objects/s, ten minutes drain 120,000 keys),
 * so the common case keeps the saving; a hint older than that belongs to a
 * backlog (a queue behind a huge scan, a paused task, an archived key re-queued
 * after RESTORE_RECHECK_SECONDS = 15 min), where the HEAD is cheap next to the
 * re-copy a wrong hint would cost.
 */
export const DESTINATION_HINT_MAX_AGE_MS = 10 * 60_000;

/** A hint stamped this far in the future (another host's clock) still counts; further, a clock is wrong: ignore it. */
const DESTINATION_HINT_CLOCK_SKEW_MS = 60_000;

/** What reconcile needs of the job that asked for it (the worker's fetched job has this shape). */
export interface ReconcileJob {
  data: { destinationAbsentAt?: string; trigger?: ReplicateJob['trigger']; kind?: ReplicateJob['kind'] };
  /** 0 on the job's first attempt. */
  retryCount: number;
  /** An upload intent is pending for the key: an earlier job started a multipart upload (queue/upload-intents.ts). */
  intentPending: boolean;
}

/**
 * Whether this job may skip the destination HEAD: it carries a scan's
 * "destination absent" hint, this is its first attempt (a retry follows an
 * attempt that may have written to the destination), no upload intent is
 * pending (an earlier job of the key got as far as a multipart create), and the
 * hint is fresh (DESTINATION_HINT_MAX_AGE_MS).
 */
export function trustsDestinationAbsent(job: ReconcileJob | undefined, now = Date.now()): boolean {
  const at = job?.data.destinationAbsentAt;
  if (!job || at === undefined || job.retryCount !== 0 || job.intentPending) return false;
  const age = now - Date.parse(at);
  return age < DESTINATION_HINT_MAX_AGE_MS && age > -DESTINATION_HINT_CLOCK_SKEW_MS;
}

/**
 * Whether the job says the source changed, so that a copy is the likely
 * outcome and both sides are read at once (module comment): an event of a
 * created object, or a scan that found the key missing or different on the
 * destination. Not an operator's retry (often of a key that failed for want
 * of access) nor a removal (an event's, or a scan's extra key: the source is gone).
 */
export function expectsCopy(job: ReconcileJob | undefined): boolean {
  const data = job?.data;
  return data?.kind === 'created' && (data.trigger === 'event' || data.trigger === 'scan');
}

/**
 * An unfinished multipart upload recorded for a key that will not be copied
 * now (source gone, already in sync, archived) can never be resumed: abort it.
 */
async function dropStaleUpload(task: Task, key: string, deps: ReconcileDeps): Promise<void> {
  const record = await deps.uploads.find(task.id, key);
  if (record) await abortUpload(deps.destination, deps.uploads, key, record.uploadId, deps.log);
}

/**
 * The task's client-side encryption key, loaded before anything is read or
 * written: a task that asked for encryption whose key cannot be used fails
 * the key for good (the operator must fix the file), and uploads nothing.
 */
function loadEncryptionKey(task: Task): TaskEncryptionKey | undefined {
  try {
    return taskEncryptionKey(task.options);
  } catch (err) {
    if (!(err instanceof KeyMaterialError)) throw err;
    throw new ReplicationError(
      'CSE_PUBLIC_KEY_INVALID',
      `client-side encryption: ${err.message} (options.clientSideEncryption.publicKeyFile); nothing was uploaded`,
      false,
    );
  }
}

/** The object is SSE-C and the task has no key for it, or the key it has is not the object's. */
function sourceSseC(task: Task, err: StorageError): ReplicationError {
  const hint = task.source.sseCustomerKeyEnv === undefined ? '; give the task the key with source.sseCustomerKeyEnv' : '';
  return new ReplicationError('SOURCE_SSE_C', `${err.message}${hint}`, false);
}

/** Storage failures of the source that are about the object's protection, as the task-level failures they are. */
function mapSourceError(task: Task, err: unknown): unknown {
  return err instanceof StorageError && err.code === 'SseCustomerKeyRequired' ? sourceSseC(task, err) : err;
}

/**
 * `job`, when given, is the queue job that asked for this reconcile: a scan's
 * fresh "destination absent" hint on its first attempt spares the destination
 * HEAD (see the module comment). Without it, or when not trusted, both sides are read.
 */
export async function reconcile(task: Task, key: string, deps: ReconcileDeps, job?: ReconcileJob): Promise<ReconcileOutcome> {
  const encryption = loadEncryptionKey(task);
  let outcome: ReconcileOutcome;
  try {
    outcome = await decide(task, key, deps, encryption, trustsDestinationAbsent(job) ? 'absent' : expectsCopy(job) ? 'at-once' : 'head-first');
  } catch (err) {
    // The source went away after its HEAD (deleted mid-copy): look again, once, at what is there now
    // (source_missing, or a delete), instead of failing the key for good on a 404. Both sides are
    // read this time: whatever the hint said is older than what just happened.
    if (!(err instanceof StorageError && err.code === 'NoSuchKey')) throw err;
    deps.log.info({ err: err.message }, 'source object disappeared during the copy; reconciling again');
    outcome = await decide(task, key, deps, encryption, 'head-first');
  }
  if (outcome.status !== 'completed') await dropStaleUpload(task, key, deps);
  return outcome;
}

/** With SSE-KMS the destination's ETags are not MD5s of the bytes; Content-MD5 and CRC-64 still verify every write. */
function destinationEtagIsMd5(task: Task): boolean {
  const mode = task.destination.encryption?.mode;
  return mode !== 'aws:kms' && mode !== 'KMS';
}

/**
 * An opened body waits (destination HEAD, the decision, creating an upload)
 * before it is read: an error meanwhile (a reset) must wait in the stream for
 * the reader, which sees it on its first read, instead of crashing the process
 * as an unhandled 'error' event.
 */
function parked(body: Readable): Readable {
  body.on('error', () => {});
  return body;
}

/** The source's head and, when it was opened with one GET, the stream of its bytes. */
interface SourceRead {
  head: ObjectHead | null;
  body?: Readable;
}

/**
 * Read the source's state. When the destination has no copy (a new object:
 * the common case), the source is opened with one GET, whose answer carries
 * the head of exactly the version whose bytes follow: one request fewer than
 * HEAD then GET, and no If-Match needed for a single PUT. Otherwise a HEAD
 * (most reconciles of existing copies end in_sync and need no bytes). An
 * archived object refuses the GET (InvalidObjectState): HEAD it instead.
 */
async function readSource(task: Task, key: string, deps: ReconcileDeps, destination: ObjectHead | null): Promise<SourceRead> {
  if (!destination && deps.source.open) {
    try {
      const opened = await deps.source.open(key);
      if (!opened) return { head: null };
      // The GET answered with the bytes, so the object is readable now, whatever its storage class says.
      return { head: { ...opened.head, needsRestore: false, restoreInProgress: false }, body: parked(opened.body) };
    } catch (err) {
      if (!(err instanceof StorageError && err.code === 'InvalidObjectState')) throw mapSourceError(task, err);
    }
  }
  try {
    return { head: await deps.source.head(key) };
  } catch (err) {
    throw mapSourceError(task, err);
  }
}

/**
 * Read the source assuming the destination is absent (a trusted scan hint):
 * open it with one GET. `trusted` says the outcome will be a copy, so the
 * destination's state does not matter (module comment); otherwise the caller
 * HEADs the destination and decides as usual, with the source state read here.
 */
async function readSourceAssumingAbsent(
  task: Task,
  key: string,
  deps: ReconcileDeps,
  encryption: TaskEncryptionKey | undefined,
  open: NonNullable<ObjectStore['open']>,
): Promise<{ trusted: boolean; read: SourceRead }> {
  let opened;
  try {
    opened = await open(key);
  } catch (err) {
    if (!(err instanceof StorageError && err.code === 'InvalidObjectState')) throw mapSourceError(task, err);
    // Archived: HEAD the source (as readSource does), and let the destination's state decide.
    try {
      return { trusted: false, read: { head: await deps.source.head(key) } };
    } catch (e) {
      throw mapSourceError(task, e);
    }
  }
  // Gone at the source: a delete or source_missing depends on what the destination holds now.
  if (!opened) return { trusted: false, read: { head: null } };
  const read = { head: { ...opened.head, needsRestore: false, restoreInProgress: false }, body: parked(opened.body) };
  // A source the task refuses to copy: the outcome is not a copy (a failure, or in_sync with what is there).
  return { trusted: refusal(task, read.head, encryption) === undefined, read };
}

/**
 * How decide() reads the two sides (module comment): 'absent' trusts a scan's
 * hint and skips the destination HEAD; 'at-once' sends the destination HEAD
 * and the source GET together; 'head-first' HEADs the destination, then reads
 * the source as its answer says.
 */
type ReadOrder = 'absent' | 'at-once' | 'head-first';

/** A body dropped unread up to this size is drained, so its keep-alive connection is reused; a larger one's is closed. */
const DRAIN_UNREAD_BYTES = 256 * 1024;

async function decide(
  task: Task,
  key: string,
  deps: ReconcileDeps,
  encryption: TaskEncryptionKey | undefined,
  order: ReadOrder,
): Promise<ReconcileOutcome> {
  let read: SourceRead | undefined;
  try {
    let destination: ObjectHead | null = null;
    const open = deps.source.open?.bind(deps.source);
    if (order === 'absent' && open) {
      const first = await readSourceAssumingAbsent(task, key, deps, encryption, open);
      read = first.read;
      if (!first.trusted) destination = await deps.destination.head(key);
    } else if (order === 'at-once' && open) {
      const [dst, src] = await Promise.allSettled([deps.destination.head(key), readSource(task, key, deps, null)]);
      if (src.status === 'rejected') {
        // The destination's failure first, as when it is read first (a 403 there says more about the task).
        throw dst.status === 'rejected' ? dst.reason : src.reason;
      }
      read = src.value; // released below whatever happens next
      if (dst.status === 'rejected') throw dst.reason;
      destination = dst.value;
    } else {
      // The destination first: whether it has a copy decides how the source is read.
      destination = await deps.destination.head(key);
      read = await readSource(task, key, deps, destination);
    }
    return await decideWith(task, key, deps, encryption, destination, read);
  } finally {
    // A body not copied (nothing to do, a refusal, a failed copy) is released;
    // one that was read to its end is left as it is.
    if (read?.body) release(read.body, read.head?.size);
  }
}

/** Let go of a source body: drain a small unread one (its connection goes back to the pool), close anything else. */
function release(body: Readable, size: number | undefined): void {
  if (body.readableEnded || body.destroyed) return;
  if (size !== undefined && size <= DRAIN_UNREAD_BYTES && body.readableDidRead === false && !body.errored) {
    body.resume();
    return;
  }
  body.destroy();
}

/** A source object the task will not copy whatever the destination holds (unless that is already in sync). */
function refusal(task: Task, source: ObjectHead, encryption: TaskEncryptionKey | undefined): ReplicationError | undefined {
  // A store given the task's customer key HEADs an SSE-C object with it (and sends it on the GETs that follow).
  if (source.sseCustomerAlgorithm && task.source.sseCustomerKeyEnv === undefined) {
    return new ReplicationError('SOURCE_SSE_C', 'source object is encrypted with a customer-provided key (SSE-C); give the task the key with source.sseCustomerKeyEnv', false);
  }
  if (encryption && isEnvelopeEncrypted(source.userMetadata)) {
    // Encrypting it again would bury its own envelope (the wrapped key that decrypts it) inside ciphertext.
    return new ReplicationError(
      'SOURCE_CLIENT_SIDE_ENCRYPTED',
      'source object is already client-side encrypted (bb-cse-* metadata); replicate it with a task without clientSideEncryption, which copies it verbatim with its envelope',
      false,
    );
  }
  return undefined;
}

async function decideWith(
  task: Task,
  key: string,
  deps: ReconcileDeps,
  encryption: TaskEncryptionKey | undefined,
  destination: ObjectHead | null,
  read: SourceRead,
): Promise<ReconcileOutcome> {
  const source = read.head;
  if (!source) {
    if (task.options.deletes) {
      if (destination) await deps.destination.delete(key);
      return { status: 'deleted', detail: destination ? 'source is gone: destination copy deleted' : 'absent on both sides' };
    }
    return { status: 'source_missing', detail: 'source object does not exist (deletes are off for this task)' };
  }
  const fingerprint = { sourceEtag: source.etag, sourceCrc64: source.crc64 };
  if (destination) {
    const equality = compareObjects(source, destination, task.options.compare, encryption ? { cseKeyId: encryption.keyId } : {});
    if (equality.equal) {
      return { status: 'in_sync', bytes: 0, destinationEtag: destination.etag, detail: `equal by ${equality.by}`, ...fingerprint };
    }
  }
  const refused = refusal(task, source, encryption);
  if (refused) throw refused;
  if (source.needsRestore) {
    if (!task.options.restoreArchived) {
      return { status: 'archived', detail: 'source is archived; the task does not restore archived objects', ...fingerprint };
    }
    if (!source.restoreInProgress) await deps.source.restore(key, 1);
    return {
      status: 'archived',
      detail: 'restore requested; the key will be reconciled again',
      requeueAfterSeconds: deps.restoreRecheckSeconds ?? RESTORE_RECHECK_SECONDS,
      ...fingerprint,
    };
  }
  // The GET that opened the object for its head carries its bytes: single PUT and multipart copies read on from it.
  const body = read.body;
  const result = await copyObject({
    taskId: task.id,
    key,
    head: source,
    ...(body ? { body } : {}),
    source: deps.source,
    destination: deps.destination,
    putOptions: putOptionsFor(source, { storageClass: task.options.storageClass, encrypting: encryption !== undefined }),
    options: task.options,
    budget: deps.budget,
    ...(deps.pool ? { pool: deps.pool } : {}),
    uploads: deps.uploads,
    destinationEtagIsMd5: destinationEtagIsMd5(task),
    keepUploadOnError: deps.keepUploadOnError,
    log: deps.log,
    ...(deps.signal ? { signal: deps.signal } : {}),
    ...(encryption ? { clientSideEncryption: { publicKey: encryption.publicKey } } : {}),
  }).catch((err: unknown) => {
    // Only reads of the source can be refused for want of a customer key.
    throw mapSourceError(task, err);
  });
  return {
    status: 'completed',
    bytes: result.bytes,
    destinationEtag: result.destinationEtag,
    sourceEtag: source.etag,
    sourceCrc64: source.crc64 ?? result.crc64,
    partsReused: result.partsReused,
    detail: result.parts > 1 ? `multipart, ${result.parts} parts (${result.partsReused} reused)` : 'single put',
  };
}
