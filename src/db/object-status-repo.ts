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
 * What recording an attempt does to an existing row: one definition for the
 * single-row upsert (statusUpsert) and the batched one (statusUpsertFrom), so
 * the two can never drift apart. The attempt succeeded exactly when the insert
 * set `completed_at` (both upserts set it only for a success), so that is what
 * the update reads instead of a parameter: in the batched form every row
 * carries its own flag and ON CONFLICT can only see the proposed row.
 */
const ON_CONFLICT_UPDATE = `ON CONFLICT (task_id, key) DO UPDATE SET
         status = EXCLUDED.status,
         attempts = CASE WHEN s.status = 'pending' THEN s.attempts + 1 ELSE 1 END,
         bytes = COALESCE(EXCLUDED.bytes, s.bytes),
         source_etag = COALESCE(EXCLUDED.source_etag, s.source_etag),
         source_crc64 = COALESCE(EXCLUDED.source_crc64, s.source_crc64),
         destination_etag = COALESCE(EXCLUDED.destination_etag, s.destination_etag),
         duration_ms = EXCLUDED.duration_ms,
         last_error_code = CASE WHEN EXCLUDED.completed_at IS NOT NULL THEN s.last_error_code ELSE EXCLUDED.last_error_code END,
         last_error_message = CASE WHEN EXCLUDED.completed_at IS NOT NULL THEN s.last_error_message ELSE EXCLUDED.last_error_message END,
         updated_at = now(),
         completed_at = CASE WHEN EXCLUDED.completed_at IS NOT NULL THEN now() ELSE s.completed_at END`;

const INSERT_COLUMNS = `task_id, key, status, attempts, bytes, source_etag, source_crc64, destination_etag,
         duration_ms, last_error_code, last_error_message, completed_at`;

/**
 * The upsert that records one attempt's outcome (see ObjectStatusRepo.record),
 * with its parameters numbered from `$first`, so a caller can run it as a CTE of
 * a larger statement. The text depends only on `first`: it can be a prepared statement.
 */
export function statusUpsert(u: StatusUpdate, first = 1): { text: string; values: unknown[] } {
  const p = (i: number): string => `$${first + i - 1}`;
  const text = `INSERT INTO bb_object_status AS s (${INSERT_COLUMNS})
       VALUES (${p(1)}, ${p(2)}, ${p(3)}, 1, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, CASE WHEN ${p(11)}::boolean THEN now() END)
       ${ON_CONFLICT_UPDATE}`;
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

/**
 * The same upsert for many rows in one statement: `rows` is a relation (a CTE
 * name or a parenthesised subquery with an alias-free select list) with the
 * columns task_id, key, status, bytes, source_etag, source_crc64,
 * destination_etag, duration_ms, error_code, error_message, success (the
 * arrays of statusColumns()). Per row it does exactly what statusUpsert does.
 *
 * Two rows of one (task_id, key) must not be in `rows`: ON CONFLICT DO UPDATE
 * cannot touch a row twice in one statement (the statement fails, SQLSTATE
 * 21000). The rows are inserted in (task_id, key) order, so two such
 * statements running at once (two processes) lock common keys in the same
 * order and cannot deadlock on them.
 */
export function statusUpsertFrom(rows: string): string {
  return `INSERT INTO bb_object_status AS s (${INSERT_COLUMNS})
       SELECT r.task_id, r.key, r.status, 1, r.bytes, r.source_etag, r.source_crc64, r.destination_etag,
              r.duration_ms, r.error_code, r.error_message, CASE WHEN r.success THEN now() END
         FROM ${rows} r
        ORDER BY r.task_id, r.key
       ${ON_CONFLICT_UPDATE}`;
}

/** The columns statusUpsertFrom reads, as parallel arrays (for unnest), one entry per update; `undefined` entries are rows without a status (NULLs). */
export interface StatusColumns {
  task_id: (string | null)[];
  key: (string | null)[];
  status: (string | null)[];
  bytes: (number | null)[];
  source_etag: (string | null)[];
  source_crc64: (string | null)[];
  destination_etag: (string | null)[];
  duration_ms: (number | null)[];
  error_code: (string | null)[];
  error_message: (string | null)[];
  success: (boolean | null)[];
}

/** SQL types of StatusColumns, in its order (for `unnest($n::type[], ...)`). */
export const STATUS_COLUMN_TYPES: readonly [keyof StatusColumns, string][] = [
  ['task_id', 'text'],
  ['key', 'text'],
  ['status', 'text'],
  ['bytes', 'bigint'],
  ['source_etag', 'text'],
  ['source_crc64', 'text'],
  ['destination_etag', 'text'],
  ['duration_ms', 'int'],
  ['error_code', 'text'],
  ['error_message', 'text'],
  ['success', 'boolean'],
];

export function statusColumns(updates: readonly (StatusUpdate | undefined)[]): StatusColumns {
  const pick = <T>(f: (u: StatusUpdate) => T | undefined): (T | null)[] => updates.map((u) => (u === undefined ? null : (f(u) ?? null)));
  return {
    task_id: pick((u) => u.taskId),
    key: pick((u) => u.key),
    status: pick((u) => u.status),
    bytes: pick((u) => u.bytes),
    source_etag: pick((u) => u.sourceEtag),
    source_crc64: pick((u) => u.sourceCrc64),
    destination_etag: pick((u) => u.destinationEtag),
    duration_ms: pick((u) => u.durationMs),
    error_code: pick((u) => u.errorCode),
    error_message: pick((u) => u.errorMessage),
    success: pick((u) => SUCCESS.has(u.status)),
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
