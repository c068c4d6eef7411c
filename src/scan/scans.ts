/**
 * Starting and managing scans, for every caller (admin API, CLI, schedules).
 *
 * A request records a bb_scans row and its bb-scan job in one transaction, so a
 * recorded `queued` scan always has a job to run it. When the task already has
 * an active (queued or running) scan — in any process — the partial unique
 * index refuses the insert and the request is recorded as `skipped`, pointing
 * at the active one.
 *
 * The sweep (run by every scan-working process's scheduler tick) looks after
 * scans whose process went away: a `running` scan without a heartbeat for
 * `staleAfterSeconds`, or a `queued` one whose job is gone, is re-queued from
 * its saved position, up to `maxAttempts` runs; then it is marked failed.
 */
import { randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction } from '../db/pool.js';
import { AppError } from '../errors.js';
import { QUEUES } from '../queue/boss.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { insertScanJob } from './scan-jobs.js';
import { ScanRepo, type ScanRecord, type ScanState, type ScanTrigger } from './scan-repo.js';
import { scopeFromRequest, type ScanRequest } from './scope.js';

export interface ScanServiceOptions {
  staleAfterSeconds: number;
  maxAttempts: number;
  /** Finished scans are deleted after this many days (skipped ones after a seventh of it, at least one day). */
  retentionDays: number;
}

export const DEFAULT_SCAN_SERVICE_OPTIONS: ScanServiceOptions = { staleAfterSeconds: 60, maxAttempts: 3, retentionDays: 30 };

export interface RequestResult {
  scan: ScanRecord;
  /** False when it was recorded as skipped because another scan of the task is active. */
  started: boolean;
}

export class ScanService {
  readonly repo: ScanRepo;
  private readonly options: ScanServiceOptions;

  constructor(
    private readonly pool: pg.Pool,
    private readonly boss: PgBoss,
    private readonly tasks: TaskRegistry,
    private readonly log: Logger,
    options: Partial<ScanServiceOptions> = {},
  ) {
    this.repo = new ScanRepo(pool);
    this.options = { ...DEFAULT_SCAN_SERVICE_OPTIONS, ...options };
  }

  /** Known to this process, or in the database (created by another process since the last reload). */
  async taskExists(taskId: string): Promise<boolean> {
    if (this.tasks.get(taskId)) return true;
    await this.tasks.load();
    return this.tasks.get(taskId) !== undefined;
  }

  private async requireTask(taskId: string): Promise<void> {
    if (!(await this.taskExists(taskId))) throw new AppError(404, 'NOT_FOUND', `task ${taskId} does not exist`);
  }

  /** Record a scan of the task and queue it (or record it as skipped). Throws 400 for a bad request, 404 for an unknown task. */
  async request(taskId: string, request: ScanRequest | undefined, trigger: ScanTrigger, requestedBy?: string): Promise<RequestResult> {
    const scope = scopeFromRequest(request);
    await this.requireTask(taskId);
    for (let attempt = 0; attempt < 5; attempt++) {
      const result = await withTransaction(this.pool, async (client): Promise<RequestResult | undefined> => {
        const base = { id: randomUUID(), taskId, trigger, scope, ...(requestedBy !== undefined ? { requestedBy } : {}) };
        const jobId = randomUUID();
        const queued = await this.repo.insertQueued(client, { ...base, jobId });
        if (queued) {
          await insertScanJob(this.boss, client, jobId, queued.id);
          return { scan: queued, started: true };
        }
        const active = await this.repo.active(client, taskId);
        if (!active) return undefined; // it finished in between: try again
        return { scan: await this.repo.insertSkipped(client, base, active.id), started: false };
      }).catch((err: unknown) => {
        // The task was deleted between the check and the insert.
        if ((err as { code?: string }).code === '23503') throw new AppError(404, 'NOT_FOUND', `task ${taskId} does not exist`);
        throw err;
      });
      if (result) {
        this.log.info({ taskId, scanId: result.scan.id, trigger, state: result.scan.state, skippedFor: result.scan.skippedFor ?? undefined }, result.started ? 'scan queued' : 'scan skipped: another scan of the task is active');
        return result;
      }
    }
    throw new Error(`could not record a scan of task ${taskId}: its active scan kept changing state`);
  }

  async get(taskId: string, scanId: string): Promise<ScanRecord | undefined> {
    return this.repo.get(scanId, taskId);
  }

  async list(taskId: string, options: { limit: number; state?: ScanState; before?: Date }): Promise<ScanRecord[]> {
    return this.repo.list(taskId, options);
  }

  /**
   * Cancel a queued or running scan. A running scan stops at its next progress
   * check (about a second); jobs it already queued stay queued.
   */
  async cancel(taskId: string, scanId: string): Promise<{ scan: ScanRecord; cancelled: boolean } | undefined> {
    const cancelled = await this.repo.cancel(taskId, scanId);
    if (cancelled) {
      this.log.info({ taskId, scanId }, 'scan cancelled');
      return { scan: cancelled, cancelled: true };
    }
    const scan = await this.repo.get(scanId, taskId);
    return scan ? { scan, cancelled: false } : undefined;
  }

  /** Re-queue or fail scans abandoned by a process that died; prune old rows. Returns how many were handled. */
  async sweep(): Promise<{ requeued: number; failed: number; pruned: number }> {
    const out = { requeued: 0, failed: 0, pruned: 0 };
    const { staleAfterSeconds, maxAttempts } = this.options;
    await withTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{ id: string; attempts: number; state: string }>(
        `SELECT s.id, s.attempts, s.state FROM bb_scans s
          WHERE (s.state = 'running' AND s.heartbeat_at < now() - make_interval(secs => $1))
             OR (s.state = 'queued' AND s.created_at < now() - make_interval(secs => $1)
                 -- Its job is gone, or was taken by a process that died before claiming the scan
                 -- (a worker claims right after fetching, so a long-active job with a queued scan is orphaned).
                 AND NOT EXISTS (SELECT 1 FROM pgboss.job j WHERE j.name = $2 AND j.id = s.job_id
                                   AND (j.state IN ('created', 'retry')
                                        OR (j.state = 'active' AND j.started_on > now() - make_interval(secs => $1)))))
          FOR UPDATE OF s SKIP LOCKED`,
        [staleAfterSeconds, QUEUES.scan],
      );
      for (const row of rows) {
        const why = row.state === 'running' ? `no heartbeat for ${staleAfterSeconds} s` : 'its queue job ended without running it';
        if (row.attempts < maxAttempts) {
          const jobId = randomUUID();
          await client.query(`UPDATE bb_scans SET state = 'queued', worker = NULL, job_id = $2 WHERE id = $1`, [row.id, jobId]);
          await insertScanJob(this.boss, client, jobId, row.id);
          this.log.warn({ scanId: row.id, why }, 'scan abandoned by its process; re-queued from its saved position');
          out.requeued++;
        } else {
          await client.query(
            `UPDATE bb_scans SET state = 'failed', finished_at = now(), worker = NULL, error = $2 WHERE id = $1`,
            [row.id, `interrupted ${row.attempts} times (last: ${why}); giving up`],
          );
          this.log.warn({ scanId: row.id, why }, 'scan abandoned too many times; marked failed');
          out.failed++;
        }
      }
    });
    const days = this.options.retentionDays;
    const pruned = await this.pool.query(
      `DELETE FROM bb_scans WHERE state IN ('completed', 'failed', 'cancelled', 'skipped')
         AND finished_at < now() - make_interval(days => CASE WHEN state = 'skipped' THEN GREATEST(1, $1 / 7) ELSE $1 END)`,
      [days],
    );
    out.pruned = pruned.rowCount ?? 0;
    return out;
  }
}
