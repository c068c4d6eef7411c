/**
 * Level-triggered reconcile of one key: whatever event queued it, read the
 * current state of both sides and make the destination match the source.
 * Duplicated, reordered or stale events are therefore harmless, and a retry
 * is simply another reconcile.
 */
import type { Logger } from 'pino';
import type { MultipartRepo } from '../db/multipart-repo.js';
import { StorageError } from '../storage/errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Task } from '../tasks/registry.js';
import type { BufferPool, ByteBudget } from './byte-budget.js';
import { compareObjects } from './compare.js';
import { abortUpload, copyObject } from './copy.js';
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
 * An unfinished multipart upload recorded for a key that will not be copied
 * now (source gone, already in sync, archived) can never be resumed: abort it.
 */
async function dropStaleUpload(task: Task, key: string, deps: ReconcileDeps): Promise<void> {
  const record = await deps.uploads.find(task.id, key);
  if (record) await abortUpload(deps.destination, deps.uploads, key, record.uploadId, deps.log);
}

export async function reconcile(task: Task, key: string, deps: ReconcileDeps): Promise<ReconcileOutcome> {
  if (task.options.clientSideEncryption) {
    // The envelope module exists (src/crypto/envelope.ts) but the copy path does not apply it
    // yet: refuse rather than upload plaintext to a task that asked for encryption.
    throw new ReplicationError(
      'CLIENT_SIDE_ENCRYPTION_UNAVAILABLE',
      'this task asks for client-side encryption, which the copy path does not apply yet; nothing was uploaded',
      false,
    );
  }
  let outcome: ReconcileOutcome;
  try {
    outcome = await decide(task, key, deps);
  } catch (err) {
    // The source went away after its HEAD (deleted mid-copy): look again, once, at what is there now
    // (source_missing, or a delete), instead of failing the key for good on a 404.
    if (!(err instanceof StorageError && err.code === 'NoSuchKey')) throw err;
    deps.log.info({ err: err.message }, 'source object disappeared during the copy; reconciling again');
    outcome = await decide(task, key, deps);
  }
  if (outcome.status !== 'completed') await dropStaleUpload(task, key, deps);
  return outcome;
}

async function decide(task: Task, key: string, deps: ReconcileDeps): Promise<ReconcileOutcome> {
  const [source, destination] = await Promise.all([deps.source.head(key), deps.destination.head(key)]);
  if (!source) {
    if (task.options.deletes) {
      if (destination) await deps.destination.delete(key);
      return { status: 'deleted', detail: destination ? 'source is gone: destination copy deleted' : 'absent on both sides' };
    }
    return { status: 'source_missing', detail: 'source object does not exist (deletes are off for this task)' };
  }
  const fingerprint = { sourceEtag: source.etag, sourceCrc64: source.crc64 };
  if (destination) {
    const equality = compareObjects(source, destination, task.options.compare);
    if (equality.equal) {
      return { status: 'in_sync', bytes: 0, destinationEtag: destination.etag, detail: `equal by ${equality.by}`, ...fingerprint };
    }
  }
  if (source.sseCustomerAlgorithm) {
    throw new ReplicationError('SOURCE_SSE_C', 'source object is encrypted with a customer-provided key (SSE-C)', false);
  }
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
  const result = await copyObject({
    taskId: task.id,
    key,
    head: source,
    source: deps.source,
    destination: deps.destination,
    putOptions: putOptionsFor(source, { storageClass: task.options.storageClass }),
    options: task.options,
    budget: deps.budget,
    ...(deps.pool ? { pool: deps.pool } : {}),
    uploads: deps.uploads,
    destinationEtagIsMd5: true,
    keepUploadOnError: deps.keepUploadOnError,
    log: deps.log,
    ...(deps.signal ? { signal: deps.signal } : {}),
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
