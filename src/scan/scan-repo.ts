/** bb_scans: one row per scan request, its progress and its outcome (migration 005). */
import type pg from 'pg';
import type { ScanScope } from './scope.js';

export type ScanState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' | 'skipped';
export type ScanTrigger = 'api' | 'cli' | 'schedule' | 'once';
export const ACTIVE_STATES: readonly ScanState[] = ['queued', 'running'];
export const TERMINAL_STATES: readonly ScanState[] = ['completed', 'failed', 'cancelled', 'skipped'];

export interface ScanCounters {
  sourceKeys: number;
  destinationKeys: number;
  compared: number;
  filtered: number;
  missing: number;
  sizeDiffers: number;
  contentDiffers: number;
  extra: number;
  uncompared: number;
  sameByStatus: number;
  sameByEtag: number;
  sameByHead: number;
  heads: number;
  /** Differing archived sources not queued again (already recorded as archived). */
  archived: number;
  listRequests: number;
  jobsQueued: number;
  jobsAlreadyQueued: number;
}

/** Counter → column. */
const COUNTER_COLUMNS: Record<keyof ScanCounters, string> = {
  sourceKeys: 'source_keys',
  destinationKeys: 'destination_keys',
  compared: 'compared',
  filtered: 'filtered',
  missing: 'missing',
  sizeDiffers: 'size_differs',
  contentDiffers: 'content_differs',
  extra: 'extra',
  uncompared: 'uncompared',
  sameByStatus: 'same_by_status',
  sameByEtag: 'same_by_etag',
  sameByHead: 'same_by_head',
  heads: 'heads',
  archived: 'archived',
  listRequests: 'list_requests',
  jobsQueued: 'jobs_queued',
  jobsAlreadyQueued: 'jobs_already_queued',
};
const COUNTER_KEYS = Object.keys(COUNTER_COLUMNS) as (keyof ScanCounters)[];

export function zeroCounters(): ScanCounters {
  return Object.fromEntries(COUNTER_KEYS.map((k) => [k, 0])) as unknown as ScanCounters;
}

export interface ScanRecord {
  id: string;
  taskId: string;
  state: ScanState;
  trigger: ScanTrigger;
  requestedBy: string | null;
  scope: ScanScope;
  skippedFor: string | null;
  jobId: string | null;
  attempts: number;
  worker: string | null;
  position: string | null;
  counters: ScanCounters;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  heartbeatAt: Date | null;
  finishedAt: Date | null;
}

type Row = Record<string, unknown>;

function toRecord(row: Row): ScanRecord {
  const counters = zeroCounters();
  for (const k of COUNTER_KEYS) counters[k] = Number(row[COUNTER_COLUMNS[k]] ?? 0);
  return {
    id: row.id as string,
    taskId: row.task_id as string,
    state: row.state as ScanState,
    trigger: row.trigger as ScanTrigger,
    requestedBy: (row.requested_by as string | null) ?? null,
    scope: row.scope as ScanScope,
    skippedFor: (row.skipped_for as string | null) ?? null,
    jobId: (row.job_id as string | null) ?? null,
    attempts: Number(row.attempts),
    worker: (row.worker as string | null) ?? null,
    position: (row.position as string | null) ?? null,
    counters,
    error: (row.error as string | null) ?? null,
    createdAt: row.created_at as Date,
    startedAt: (row.started_at as Date | null) ?? null,
    heartbeatAt: (row.heartbeat_at as Date | null) ?? null,
    finishedAt: (row.finished_at as Date | null) ?? null,
  };
}

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

const counterAssignments = COUNTER_KEYS.map((k, i) => `${COUNTER_COLUMNS[k]} = $${i + 3}`).join(', ');
function counterValues(c: ScanCounters): number[] {
  return COUNTER_KEYS.map((k) => c[k]);
}

export interface NewScan {
  id: string;
  taskId: string;
  trigger: ScanTrigger;
  scope: ScanScope;
  requestedBy?: string;
  jobId: string;
}

export class ScanRepo {
  constructor(private readonly pool: pg.Pool) {}

  /** Insert a queued scan; undefined when the task already has an active one. */
  async insertQueued(db: Queryable, scan: NewScan): Promise<ScanRecord | undefined> {
    const { rows } = await db.query(
      `INSERT INTO bb_scans (id, task_id, state, trigger, requested_by, scope, job_id)
       VALUES ($1, $2, 'queued', $3, $4, $5, $6)
       ON CONFLICT (task_id) WHERE state IN ('queued', 'running') DO NOTHING
       RETURNING *`,
      [scan.id, scan.taskId, scan.trigger, scan.requestedBy ?? null, JSON.stringify(scan.scope), scan.jobId],
    );
    return rows[0] ? toRecord(rows[0] as Row) : undefined;
  }

  async insertSkipped(db: Queryable, scan: Omit<NewScan, 'jobId'>, skippedFor: string): Promise<ScanRecord> {
    const { rows } = await db.query(
      `INSERT INTO bb_scans (id, task_id, state, trigger, requested_by, scope, skipped_for, finished_at)
       VALUES ($1, $2, 'skipped', $3, $4, $5, $6, now()) RETURNING *`,
      [scan.id, scan.taskId, scan.trigger, scan.requestedBy ?? null, JSON.stringify(scan.scope), skippedFor],
    );
    return toRecord(rows[0] as Row);
  }

  async active(db: Queryable, taskId: string): Promise<ScanRecord | undefined> {
    const { rows } = await db.query(`SELECT * FROM bb_scans WHERE task_id = $1 AND state IN ('queued', 'running')`, [taskId]);
    return rows[0] ? toRecord(rows[0] as Row) : undefined;
  }

  async get(id: string, taskId?: string): Promise<ScanRecord | undefined> {
    const { rows } = await this.pool.query(
      `SELECT * FROM bb_scans WHERE id = $1 AND ($2::text IS NULL OR task_id = $2)`,
      [id, taskId ?? null],
    );
    return rows[0] ? toRecord(rows[0] as Row) : undefined;
  }

  /** Newest first. */
  async list(taskId: string, options: { limit: number; state?: ScanState; before?: Date }): Promise<ScanRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT * FROM bb_scans WHERE task_id = $1 AND ($2::text IS NULL OR state = $2)
         AND ($3::timestamptz IS NULL OR created_at < $3)
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [taskId, options.state ?? null, options.before ?? null, options.limit],
    );
    return rows.map((r) => toRecord(r as Row));
  }

  /** queued → running; undefined when the scan is no longer queued (cancelled, taken by another process). */
  async claim(id: string, worker: string): Promise<ScanRecord | undefined> {
    const { rows } = await this.pool.query(
      `UPDATE bb_scans SET state = 'running', attempts = attempts + 1, worker = $2,
              started_at = COALESCE(started_at, now()), heartbeat_at = now()
        WHERE id = $1 AND state = 'queued' RETURNING *`,
      [id, worker],
    );
    return rows[0] ? toRecord(rows[0] as Row) : undefined;
  }

  /** Save progress and heartbeat; false when the scan stopped being ours (cancelled, swept, task deleted). */
  async progress(id: string, worker: string, counters: ScanCounters, position: string | null): Promise<boolean> {
    const n = COUNTER_KEYS.length;
    const { rowCount } = await this.pool.query(
      `UPDATE bb_scans SET ${counterAssignments}, position = COALESCE($${n + 3}, position), heartbeat_at = now()
        WHERE id = $1 AND worker = $2 AND state = 'running'`,
      [id, worker, ...counterValues(counters), position],
    );
    return rowCount === 1;
  }

  /** running → completed / failed; false when it was no longer running (cancelled meanwhile). */
  async finish(
    id: string,
    worker: string,
    state: 'completed' | 'failed',
    counters: ScanCounters,
    position: string | null,
    error?: string,
  ): Promise<boolean> {
    const n = COUNTER_KEYS.length;
    const { rowCount } = await this.pool.query(
      `UPDATE bb_scans SET ${counterAssignments}, position = COALESCE($${n + 3}, position), state = $${n + 4},
              error = $${n + 5}, finished_at = now(), heartbeat_at = now()
        WHERE id = $1 AND worker = $2 AND state = 'running'`,
      [id, worker, ...counterValues(counters), position, state, error ?? null],
    );
    return rowCount === 1;
  }

  /** running → queued with a new job (shutdown hand-back); false when it was no longer running. */
  async requeue(db: Queryable, id: string, worker: string, jobId: string, counters: ScanCounters, position: string | null): Promise<boolean> {
    const n = COUNTER_KEYS.length;
    const { rowCount } = await db.query(
      `UPDATE bb_scans SET ${counterAssignments}, position = COALESCE($${n + 3}, position), state = 'queued',
              job_id = $${n + 4}, worker = NULL
        WHERE id = $1 AND worker = $2 AND state = 'running'`,
      [id, worker, ...counterValues(counters), position, jobId],
    );
    return rowCount === 1;
  }

  /** Cancel a queued or running scan of the task. */
  async cancel(taskId: string, id: string): Promise<ScanRecord | undefined> {
    const { rows } = await this.pool.query(
      `UPDATE bb_scans SET state = 'cancelled', finished_at = now(), error = COALESCE(error, 'cancelled by request')
        WHERE id = $1 AND task_id = $2 AND state IN ('queued', 'running') RETURNING *`,
      [id, taskId],
    );
    return rows[0] ? toRecord(rows[0] as Row) : undefined;
  }
}
