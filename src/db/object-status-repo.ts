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

const ROW_COLUMNS = `task_id AS "taskId", key, status, attempts, bytes::float8 AS bytes, source_etag AS "sourceEtag",
  source_crc64 AS "sourceCrc64", destination_etag AS "destinationEtag", duration_ms AS "durationMs",
  last_error_code AS "lastErrorCode", last_error_message AS "lastErrorMessage",
  first_seen_at AS "firstSeenAt", updated_at AS "updatedAt", completed_at AS "completedAt"`;

export interface ObjectListQuery {
  taskId: string;
  status?: ObjectStatus;
  prefix?: string;
  /** Keyset position: rows with keys after this one. */
  afterKey?: string;
  limit: number;
}

const SUCCESS: ReadonlySet<ObjectStatus> = new Set(['completed', 'in_sync', 'deleted', 'source_missing']);

/**
 * The upsert that records one attempt's outcome (see ObjectStatusRepo.record),
 * with its parameters numbered from `$first`, so a caller can run it as a CTE of
 * a larger statement (the worker records a success and completes the job in one
 * round trip). The text depends only on `first`: it can be a prepared statement.
 */
export function statusUpsert(u: StatusUpdate, first = 1): { text: string; values: unknown[] } {
  const p = (i: number): string => `$${first + i - 1}`;
  const text = `INSERT INTO bb_object_status AS s (task_id, key, status, attempts, bytes, source_etag, source_crc64, destination_etag,
         duration_ms, last_error_code, last_error_message, completed_at)
       VALUES (${p(1)}, ${p(2)}, ${p(3)}, 1, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, CASE WHEN ${p(11)}::boolean THEN now() END)
       ON CONFLICT (task_id, key) DO UPDATE SET
         status = EXCLUDED.status,
         attempts = CASE WHEN s.status = 'pending' THEN s.attempts + 1 ELSE 1 END,
         bytes = COALESCE(EXCLUDED.bytes, s.bytes),
         source_etag = COALESCE(EXCLUDED.source_etag, s.source_etag),
         source_crc64 = COALESCE(EXCLUDED.source_crc64, s.source_crc64),
         destination_etag = COALESCE(EXCLUDED.destination_etag, s.destination_etag),
         duration_ms = EXCLUDED.duration_ms,
         last_error_code = CASE WHEN ${p(11)}::boolean THEN s.last_error_code ELSE EXCLUDED.last_error_code END,
         last_error_message = CASE WHEN ${p(11)}::boolean THEN s.last_error_message ELSE EXCLUDED.last_error_message END,
         updated_at = now(),
         completed_at = CASE WHEN ${p(11)}::boolean THEN now() ELSE s.completed_at END`;
  return {
    text,
    values: [
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
      SUCCESS.has(u.status),
    ],
  };
}

export class ObjectStatusRepo {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Record one attempt's outcome. `attempts` counts the attempts of the
   * current round: it grows while the key is being retried (status pending)
   * and starts again at 1 when a key that had settled (success or failed) is
   * reconciled again.
   */
  async record(u: StatusUpdate): Promise<void> {
    // Prepared once per connection: this runs for every replicated key.
    const { text, values } = statusUpsert(u);
    await this.pool.query({ name: 'bb-status-record', text, values });
  }

  async get(taskId: string, key: string): Promise<ObjectStatusRow | undefined> {
    const { rows } = await this.pool.query(`SELECT ${ROW_COLUMNS} FROM bb_object_status WHERE task_id = $1 AND key = $2`, [taskId, key]);
    return rows[0] as ObjectStatusRow | undefined;
  }

  /** One page of a task's rows in key order (keyset pagination); `more` says whether another page follows. */
  async list(q: ObjectListQuery): Promise<{ rows: ObjectStatusRow[]; more: boolean }> {
    const where = ['task_id = $1'];
    const params: unknown[] = [q.taskId];
    if (q.status !== undefined) {
      params.push(q.status);
      where.push(`status = $${params.length}`);
    }
    if (q.prefix !== undefined && q.prefix !== '') {
      params.push(q.prefix);
      where.push(`starts_with(key, $${params.length})`);
    }
    if (q.afterKey !== undefined) {
      params.push(q.afterKey);
      where.push(`key > $${params.length}`);
    }
    params.push(q.limit + 1);
    const { rows } = await this.pool.query(
      `SELECT ${ROW_COLUMNS} FROM bb_object_status WHERE ${where.join(' AND ')} ORDER BY key LIMIT $${params.length}`,
      params,
    );
    return { rows: rows.slice(0, q.limit) as ObjectStatusRow[], more: rows.length > q.limit };
  }

  /** Keys of a task in one status, in key order after `afterKey`, at most `limit`. */
  async keysWithStatus(taskId: string, status: ObjectStatus, afterKey: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ key: string }>(
      `SELECT key FROM bb_object_status WHERE task_id = $1 AND status = $2 AND ($3::text IS NULL OR key > $3) ORDER BY key LIMIT $4`,
      [taskId, status, afterKey ?? null, limit],
    );
    return rows.map((r) => r.key);
  }
}
