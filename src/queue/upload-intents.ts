/**
 * No multipart upload left behind when its creation is interrupted.
 *
 * A multipart copy creates the upload on the destination, then records its id
 * (bb_multipart_uploads) so a later attempt can resume or abort it. Between the
 * two — a crash, or an answer to the create request lost on the network — the
 * upload exists and nobody knows its id. So before every create the worker
 * writes an intent (bb_upload_intents, migrations/008); recording the upload
 * removes it (a trigger, in the same statement). An intent still present when
 * the key's next job starts means such a window was hit: the destination's
 * uploads for exactly that key are listed and those not recorded are aborted.
 *
 * Cost: nothing per job in the worker, whose fetch statement also says whether
 * the key has an intent (replication-worker.ts); the listing only after an
 * interrupted create.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { StorageError } from '../storage/errors.js';
import type { ObjectStore } from '../storage/object-store.js';

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
  async prepare(taskId: string, key: string, destination: ObjectStore, log: Logger, pending = true): Promise<ObjectStore> {
    if (pending) {
      await this.sweep(taskId, key, destination, log).catch((err: unknown) => {
        log.warn({ err }, 'could not check for a multipart upload left by an interrupted start; will check again next time');
      });
    }
    return this.guard(taskId, key, destination);
  }

  /** `destination`, with an intent written before each createMultipartUpload. */
  guard(taskId: string, key: string, destination: ObjectStore): ObjectStore {
    const pool = this.pool;
    return new Proxy(destination, {
      get(target, prop, receiver) {
        if (prop === 'createMultipartUpload') {
          return async (k: string, ...rest: unknown[]) => {
            await pool.query(
              'INSERT INTO bb_upload_intents (task_id, key) VALUES ($1, $2) ON CONFLICT (task_id, key) DO UPDATE SET created_at = now()',
              [taskId, k],
            );
            return (target.createMultipartUpload as (...a: unknown[]) => Promise<string>).call(target, k, ...rest);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** Abort this key's unrecorded uploads when an intent says a create was interrupted. */
  async sweep(taskId: string, key: string, destination: ObjectStore, log: Logger): Promise<number> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM bb_upload_intents WHERE task_id = $1 AND key = $2', [taskId, key]);
    if (!rowCount) return 0;
    if (!destination.listMultipartUploads) {
      log.warn('a multipart upload may have been left by an interrupted start, and this store cannot list uploads');
      await this.forget(taskId, key);
      return 0;
    }
    const uploads = await destination.listMultipartUploads(key);
    const { rows } = await this.pool.query<{ upload_id: string }>('SELECT upload_id FROM bb_multipart_uploads WHERE upload_id = ANY($1::text[])', [
      uploads.map((u) => u.uploadId),
    ]);
    const recorded = new Set(rows.map((r) => r.upload_id));
    let aborted = 0;
    for (const u of uploads) {
      if (recorded.has(u.uploadId)) continue;
      try {
        await destination.abortMultipartUpload(key, u.uploadId);
      } catch (err) {
        if (!(err instanceof StorageError && err.code === 'NoSuchUpload')) throw err;
      }
      aborted++;
      log.warn({ uploadId: u.uploadId }, 'aborted a multipart upload left by an interrupted start');
    }
    await this.forget(taskId, key);
    return aborted;
  }

  private async forget(taskId: string, key: string): Promise<void> {
    await this.pool.query('DELETE FROM bb_upload_intents WHERE task_id = $1 AND key = $2', [taskId, key]);
  }
}
