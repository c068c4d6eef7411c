/** bb_object_status: the per-(task, key) record of what replication did. */
import type pg from 'pg';

export type ObjectStatus = 'pending' | 'completed' | 'in_sync' | 'deleted' | 'source_missing' | 'archived' | 'failed';

export interface StatusUpdate {
  taskId: string;
  key: string;
  status: ObjectStatus;
  bytes?: number;
  sourceEtag?: string;
  sourceCrc64?: string;
  destinationEtag?: string;
  durationMs?: number;
  errorCode?: string;
  errorMessage?: string;
}

export interface ObjectStatusRow {
  taskId: string;
  key: string;
  status: ObjectStatus;
  attempts: number;
  bytes: number | null;
  sourceEtag: string | null;
  sourceCrc64: string | null;
  destinationEtag: string | null;
  durationMs: number | null;
  lastErrorCode: string | null;
  lastErrorMessage: string | null;
  firstSeenAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

const SUCCESS: ReadonlySet<ObjectStatus> = new Set(['completed', 'in_sync', 'deleted', 'source_missing']);

export class ObjectStatusRepo {
  constructor(private readonly pool: pg.Pool) {}

  /** Record one attempt's outcome; attempts counts every recorded attempt. */
  async record(u: StatusUpdate): Promise<void> {
    const success = SUCCESS.has(u.status);
    await this.pool.query(
      `INSERT INTO bb_object_status AS s (task_id, key, status, attempts, bytes, source_etag, source_crc64, destination_etag,
         duration_ms, last_error_code, last_error_message, completed_at)
       VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN now() END)
       ON CONFLICT (task_id, key) DO UPDATE SET
         status = EXCLUDED.status,
         attempts = s.attempts + 1,
         bytes = COALESCE(EXCLUDED.bytes, s.bytes),
         source_etag = COALESCE(EXCLUDED.source_etag, s.source_etag),
         source_crc64 = COALESCE(EXCLUDED.source_crc64, s.source_crc64),
         destination_etag = COALESCE(EXCLUDED.destination_etag, s.destination_etag),
         duration_ms = EXCLUDED.duration_ms,
         last_error_code = CASE WHEN $11 THEN s.last_error_code ELSE EXCLUDED.last_error_code END,
         last_error_message = CASE WHEN $11 THEN s.last_error_message ELSE EXCLUDED.last_error_message END,
         updated_at = now(),
         completed_at = CASE WHEN $11 THEN now() ELSE s.completed_at END`,
      [
        u.taskId,
        u.key,
        u.status,
        u.bytes ?? null,
        u.sourceEtag ?? null,
        u.sourceCrc64 ?? null,
        u.destinationEtag ?? null,
        u.durationMs ?? null,
        u.errorCode ?? null,
        u.errorMessage ?? null,
        success,
      ],
    );
  }

  async get(taskId: string, key: string): Promise<ObjectStatusRow | undefined> {
    const { rows } = await this.pool.query(
      `SELECT task_id AS "taskId", key, status, attempts, bytes::float8 AS bytes, source_etag AS "sourceEtag",
              source_crc64 AS "sourceCrc64", destination_etag AS "destinationEtag", duration_ms AS "durationMs",
              last_error_code AS "lastErrorCode", last_error_message AS "lastErrorMessage",
              first_seen_at AS "firstSeenAt", updated_at AS "updatedAt", completed_at AS "completedAt"
         FROM bb_object_status WHERE task_id = $1 AND key = $2`,
      [taskId, key],
    );
    return rows[0] as ObjectStatusRow | undefined;
  }
}
