/**
 * Read-side aggregates for operators: one task's replication status (counts,
 * bytes, jobs, lag, last success/failure, recent throughput), and the
 * all-tasks queue snapshot that /metrics exposes as gauges.
 *
 * Replication lag is the age of the oldest change not yet replicated: the
 * oldest queued, retrying or running replication job of the task (counted from
 * its first enqueue, `data.queuedAt`, which survives re-sends of a paused
 * task's jobs), or the oldest 'pending' status row (an attempt failed and is
 * waiting to retry), whichever is older. Nothing outstanding → 0.
 */
import type pg from 'pg';
import type { ObjectStatus } from './object-status-repo.js';
import { QUEUES } from '../queue/boss.js';

export const OBJECT_STATUSES: readonly ObjectStatus[] = ['pending', 'completed', 'in_sync', 'deleted', 'source_missing', 'archived', 'failed'];

export const THROUGHPUT_WINDOW_SECONDS = 300;

export interface TaskStatus {
  objects: Record<ObjectStatus, number> & { total: number };
  bytesReplicated: number;
  jobs: { queued: number; active: number; retrying: number; deadLettered: number };
  lagSeconds: number;
  oldestUnreplicatedAt: Date | null;
  lastSuccess: { key: string; status: string; at: Date } | null;
  lastFailure: { key: string; status: string; at: Date; code: string | null; message: string | null } | null;
  throughput: { windowSeconds: number; objects: number; bytes: number; objectsPerSecond: number; bytesPerSecond: number };
}

export interface QueueSnapshot {
  /** Job counts by task and state (queued, retrying, active, failed = dead-lettered). */
  jobs: { task: string; state: 'queued' | 'retrying' | 'active' | 'failed'; count: number }[];
  /** Seconds since the oldest unreplicated change, per task with something outstanding. */
  lag: { task: string; seconds: number }[];
}

const STATE_NAMES: Record<string, 'queued' | 'retrying' | 'active'> = { created: 'queued', retry: 'retrying', active: 'active' };

/** Oldest outstanding change per task (all tasks, or one when $3 is set). */
const OLDEST_SQL = `
  SELECT task, min(oldest) AS oldest FROM (
    SELECT data->>'taskId' AS task, min(COALESCE((data->>'queuedAt')::timestamptz, created_on)) AS oldest
      FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active') AND ($2::text IS NULL OR data->>'taskId' = $2)
     GROUP BY 1
    UNION ALL
    SELECT task_id, min(updated_at) FROM bb_object_status WHERE status = 'pending' AND ($2::text IS NULL OR task_id = $2)
     GROUP BY 1
  ) o GROUP BY task`;

export class TaskStatusRepo {
  constructor(private readonly pool: pg.Pool) {}

  async status(taskId: string): Promise<TaskStatus> {
    const [counts, jobs, oldestRow, lastSuccess, lastFailure, recent] = await Promise.all([
      this.pool.query<{ status: ObjectStatus; n: number; bytes: number }>(
        `SELECT status, count(*)::int AS n, COALESCE(sum(bytes) FILTER (WHERE status = 'completed'), 0)::float8 AS bytes
           FROM bb_object_status WHERE task_id = $1 GROUP BY status`,
        [taskId],
      ),
      this.pool.query<{ name: string; state: string; n: number }>(
        `SELECT name, state::text AS state, count(*)::int AS n FROM pgboss.job
          WHERE ((name = $1 AND state IN ('created', 'retry', 'active')) OR (name = $2 AND state IN ('created', 'retry')))
            AND data->>'taskId' = $3
          GROUP BY 1, 2`,
        [QUEUES.replicate, QUEUES.replicateDead, taskId],
      ),
      this.pool.query<{ oldest: Date | null; now: Date }>(`SELECT (SELECT min(oldest) FROM (${OLDEST_SQL}) x) AS oldest, now() AS now`, [
        QUEUES.replicate,
        taskId,
      ]),
      this.pool.query<{ key: string; status: string; at: Date }>(
        `SELECT key, status, completed_at AS at FROM bb_object_status
          WHERE task_id = $1 AND completed_at IS NOT NULL ORDER BY completed_at DESC LIMIT 1`,
        [taskId],
      ),
      this.pool.query<{ key: string; status: string; at: Date; code: string | null; message: string | null }>(
        `SELECT key, status, updated_at AS at, last_error_code AS code, last_error_message AS message FROM bb_object_status
          WHERE task_id = $1 AND status IN ('failed', 'pending') ORDER BY updated_at DESC LIMIT 1`,
        [taskId],
      ),
      this.pool.query<{ objects: number; bytes: number }>(
        `SELECT count(*)::int AS objects, COALESCE(sum(bytes) FILTER (WHERE status = 'completed'), 0)::float8 AS bytes
           FROM bb_object_status WHERE task_id = $1 AND completed_at > now() - make_interval(secs => $2)`,
        [taskId, THROUGHPUT_WINDOW_SECONDS],
      ),
    ]);
    const objects = Object.fromEntries(OBJECT_STATUSES.map((s) => [s, 0])) as Record<ObjectStatus, number>;
    let total = 0;
    let bytesReplicated = 0;
    for (const row of counts.rows) {
      objects[row.status] = row.n;
      total += row.n;
      bytesReplicated += row.bytes;
    }
    const jobCounts = { queued: 0, active: 0, retrying: 0, deadLettered: 0 };
    for (const row of jobs.rows) {
      if (row.name === QUEUES.replicateDead) jobCounts.deadLettered += row.n;
      else {
        const name = STATE_NAMES[row.state];
        if (name) jobCounts[name] += row.n;
      }
    }
    const { oldest, now } = oldestRow.rows[0]!;
    const win = recent.rows[0] ?? { objects: 0, bytes: 0 };
    return {
      objects: { ...objects, total },
      bytesReplicated,
      jobs: jobCounts,
      lagSeconds: oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : 0,
      oldestUnreplicatedAt: oldest,
      lastSuccess: lastSuccess.rows[0] ?? null,
      lastFailure: lastFailure.rows[0] ?? null,
      throughput: {
        windowSeconds: THROUGHPUT_WINDOW_SECONDS,
        objects: win.objects,
        bytes: win.bytes,
        objectsPerSecond: win.objects / THROUGHPUT_WINDOW_SECONDS,
        bytesPerSecond: win.bytes / THROUGHPUT_WINDOW_SECONDS,
      },
    };
  }

  /** Every task's job counts and lag, in two queries (the /metrics gauges). */
  async queueSnapshot(): Promise<QueueSnapshot> {
    const [jobs, lag] = await Promise.all([
      this.pool.query<{ task: string | null; name: string; state: string; n: number }>(
        `SELECT data->>'taskId' AS task, name, state::text AS state, count(*)::int AS n FROM pgboss.job
          WHERE (name = $1 AND state IN ('created', 'retry', 'active')) OR (name = $2 AND state IN ('created', 'retry'))
          GROUP BY 1, 2, 3`,
        [QUEUES.replicate, QUEUES.replicateDead],
      ),
      this.pool.query<{ task: string; seconds: number }>(
        `SELECT task, GREATEST(0, extract(epoch FROM now() - oldest))::float8 AS seconds FROM (${OLDEST_SQL}) l`,
        [QUEUES.replicate, null],
      ),
    ]);
    const counts = new Map<string, QueueSnapshot['jobs'][number]>();
    for (const row of jobs.rows) {
      if (row.task === null) continue;
      const state = row.name === QUEUES.replicateDead ? 'failed' : STATE_NAMES[row.state];
      if (!state) continue;
      const k = `${row.task}\u0000${state}`;
      const entry = counts.get(k) ?? { task: row.task, state, count: 0 };
      entry.count += row.n;
      counts.set(k, entry);
    }
    return { jobs: [...counts.values()], lag: lag.rows.filter((r) => r.task !== null) };
  }
}
