/**
 * No multipart upload left behind when its creation is interrupted.
 *
 * A multipart copy creates the upload on the destination, then records its id
 * (bb_multipart_uploads) so a later attempt can resume or abort it. Between the
 * two — a crash, or an answer to the create request lost on the network — the
 * upload exists and nobody knows its id. So before every create the worker
 * writes an intent (bb_upload_intents, migrations/008 and 009). An intent still
 * present when the key's next job starts means such a window was hit: the
 * destination's uploads for exactly that key are listed and those not recorded
 * are aborted (`sweep`). A recorded upload is never aborted.
 *
 * When an intent may go, and why each rule is there:
 *  - Recording the upload removes the intent written for its create (a
 *    trigger, in the same statement) — unless the intent is `held`: one
 *    written while an earlier intent was still there, i.e. the cleanup of an
 *    earlier interrupted create had not succeeded (its listing or abort
 *    failed, and the copy went ahead as it must), or while an upload is still
 *    recorded for the key, whose record the new one will replace (its abort
 *    failed). Without `held`, recording the new upload erased the only trace
 *    of the old one, which stayed open: the likeliest cause of the
 *    occasional test/chaos-network failure (a cut create answer, then a 503
 *    on the next attempt's listing). Only a sweep removes a held intent.
 *  - A sweep removes the intent only once a listing shows no unrecorded
 *    upload of the key: after aborting, it lists again. An abort answered
 *    NoSuchUpload for an id the listing just gave is not taken as done (the
 *    listing's bytes may have been damaged in transit, the id with them, and
 *    the real upload is still open); the next listing decides. The stores
 *    refuse a listing that names a key outside the prefix asked for (a damaged
 *    key would otherwise just drop the upload from the answer).
 *  - A create call returns an id only when it can have made no other upload:
 *    a store whose client retried the create (a lost answer retried into a
 *    second upload, the first never seen) reports an error instead, having
 *    aborted the second (S3Store), so no record hides the first and the
 *    intent stays for the sweep.
 *
 * A sweep that does not clear the intent (an error, or uploads still listed
 * after aborting) is logged and never fails the copy. Since the key may have
 * no further job for a long time, a job that ends with its intent unresolved
 * (it succeeded, or failed for good: no retry will sweep again) queues a
 * follow-up job for the key, after a delay that doubles
 * with each failed sweep; after MAX_FAILED_SWEEPS the follow-ups stop, with an
 * error log, and the intent waits for the key's next job (the worker,
 * replication-worker.ts).
 *
 * Cost: nothing per job in the worker, whose fetch statement also says whether
 * the key has an intent (replication-worker.ts); the listings only after an
 * interrupted create (two when there was something to abort).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { StorageError } from '../storage/errors.js';
import type { ObjectStore } from '../storage/object-store.js';

/** Listings per sweep: list, abort, list again (and once more when the second still showed one). */
const MAX_LISTINGS = 3;

/** Failed sweeps of one intent after which the worker stops queueing follow-ups for it. */
export const MAX_FAILED_SWEEPS = 10;

export interface SweepResult {
  /** The intent is gone: no unrecorded upload of the key is listed (or there was no intent). */
  cleared: boolean;
  /** Uploads aborted by this sweep. */
  aborted: number;
  /** Sweeps of this intent that ended without clearing it, this one included; 0 when cleared. */
  failedSweeps: number;
  /** What stopped the sweep, when something did (a storage or database error). */
  error?: unknown;
}

export interface PreparedDestination {
  /** The destination, with an intent written before each createMultipartUpload. */
  store: ObjectStore;
  /**
   * The key's intent will outlive this job (not cleared by its sweep, or held by its create):
   * a later sweep must clear it. Read after the copy: a create can set it.
   */
  unresolved: boolean;
  /** Failed sweeps of that intent so far (for the follow-up's backoff and bound). */
  failedSweeps: number;
}

export class UploadIntents {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Clean up after an interrupted create of this key, if there was one, and
   * return the destination with its createMultipartUpload preceded by an intent.
   * `pending` false says the caller already knows there is no intent for the
   * key (read in the statement that took the job; only the job running for a
   * key writes its intents, and one runs at a time): nothing to look up.
   * Cleanup problems are logged, never thrown: the copy itself goes ahead.
   */
  async prepare(taskId: string, key: string, destination: ObjectStore, log: Logger, pending = true): Promise<PreparedDestination> {
    const prepared: PreparedDestination = { store: destination, unresolved: false, failedSweeps: 0 };
    // A held intent written by this job's create also outlives the job: say so (unresolved).
    prepared.store = this.guard(taskId, key, destination, () => void (prepared.unresolved = true));
    if (!pending) return prepared;
    let result: SweepResult;
    try {
      result = await this.sweep(taskId, key, destination, log);
    } catch (err) {
      // The intent could not even be read (database): it is still there for the next look.
      log.warn({ err }, 'could not check for a multipart upload left by an interrupted start; will check again');
      prepared.unresolved = true;
      return prepared;
    }
    if (!result.cleared) {
      log.warn(
        { err: result.error, failedSweeps: result.failedSweeps },
        'could not clear the multipart uploads left by an interrupted start; the intent is kept and they will be checked again',
      );
      prepared.unresolved = true;
      prepared.failedSweeps = result.failedSweeps;
    }
    return prepared;
  }

  /**
   * `destination`, with an intent written before each createMultipartUpload.
   * `onHeld` is called when that intent is held (it will outlive the record of the upload).
   */
  guard(taskId: string, key: string, destination: ObjectStore, onHeld?: () => void): ObjectStore {
    const pool = this.pool;
    return new Proxy(destination, {
      get(target, prop, receiver) {
        if (prop === 'createMultipartUpload') {
          return async (k: string, ...rest: unknown[]) => {
            // Held when another upload of the key may be open once this one is recorded:
            //  - an intent already there is an earlier doubt not yet cleared (a failed sweep, or an
            //    earlier create of this job that failed);
            //  - an upload still recorded for the key will be replaced by this one's record (its
            //    abort failed, copy.ts resumableParts) and so become unrecorded, still open.
            const { rows } = await pool.query<{ held: boolean }>(
              `INSERT INTO bb_upload_intents (task_id, key, held)
               VALUES ($1, $2, EXISTS (SELECT 1 FROM bb_multipart_uploads WHERE task_id = $1 AND key = $2))
               ON CONFLICT (task_id, key) DO UPDATE SET held = true
               RETURNING held`,
              [taskId, k],
            );
            if (rows[0]?.held) onHeld?.();
            return (target.createMultipartUpload as (...a: unknown[]) => Promise<string>).call(target, k, ...rest);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /**
   * When an intent says a create was interrupted: abort this key's unrecorded
   * uploads, and remove the intent once a listing shows none (module comment).
   * A storage or database failure on the way ends the sweep with the intent
   * kept and counted (`error`); only a failure to read the intent throws.
   */
  async sweep(taskId: string, key: string, destination: ObjectStore, log: Logger): Promise<SweepResult> {
    const { rows } = await this.pool.query('SELECT 1 FROM bb_upload_intents WHERE task_id = $1 AND key = $2', [taskId, key]);
    if (rows.length === 0) return { cleared: true, aborted: 0, failedSweeps: 0 };
    if (!destination.listMultipartUploads) {
      log.warn('a multipart upload may have been left by an interrupted start, and this store cannot list uploads');
      await this.forget(taskId, key);
      return { cleared: true, aborted: 0, failedSweeps: 0 };
    }
    const list = destination.listMultipartUploads.bind(destination);
    let aborted = 0;
    let error: unknown;
    try {
      for (let listing = 1; ; listing++) {
        const open = await this.unrecorded(await list(key));
        if (open.length === 0) {
          await this.forget(taskId, key);
          return { cleared: true, aborted, failedSweeps: 0 };
        }
        if (listing === MAX_LISTINGS) break;
        for (const uploadId of open) {
          try {
            await destination.abortMultipartUpload(key, uploadId);
            aborted++;
            log.warn({ uploadId }, 'aborted a multipart upload left by an interrupted start');
          } catch (err) {
            if (!(err instanceof StorageError && err.code === 'NoSuchUpload')) throw err;
            // Listed a moment ago, unknown now: the listing (and this id) may have been damaged in
            // transit while the real upload is still open. Not counted as done; the next listing decides.
            log.info({ uploadId }, 'an upload just listed is unknown to the destination; listing again');
          }
        }
      }
    } catch (err) {
      error = err;
    }
    const failedSweeps = await this.countFailure(taskId, key);
    return { cleared: false, aborted, failedSweeps, ...(error !== undefined ? { error } : {}) };
  }

  /** Ids of `uploads` not recorded in bb_multipart_uploads (whatever their task: a recorded upload is never aborted). */
  private async unrecorded(uploads: { uploadId: string }[]): Promise<string[]> {
    if (uploads.length === 0) return [];
    const { rows } = await this.pool.query<{ upload_id: string }>('SELECT upload_id FROM bb_multipart_uploads WHERE upload_id = ANY($1::text[])', [
      uploads.map((u) => u.uploadId),
    ]);
    const recorded = new Set(rows.map((r) => r.upload_id));
    return [...new Set(uploads.map((u) => u.uploadId))].filter((id) => !recorded.has(id));
  }

  /** One more failed sweep of the intent; the new count (0 if the count itself could not be written). */
  private async countFailure(taskId: string, key: string): Promise<number> {
    try {
      const { rows } = await this.pool.query<{ failed_sweeps: number }>(
        'UPDATE bb_upload_intents SET failed_sweeps = failed_sweeps + 1 WHERE task_id = $1 AND key = $2 RETURNING failed_sweeps',
        [taskId, key],
      );
      return rows[0]?.failed_sweeps ?? 0;
    } catch {
      return 0;
    }
  }

  private async forget(taskId: string, key: string): Promise<void> {
    await this.pool.query('DELETE FROM bb_upload_intents WHERE task_id = $1 AND key = $2', [taskId, key]);
  }
}
