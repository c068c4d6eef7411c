/**
 * Heartbeats and job leases (see migrations/003). Each process heartbeats;
 * every job it runs holds a lease. A sweep hands the jobs of processes whose
 * heartbeat is stale back to pg-boss (failed → retried), so a SIGKILLed
 * process's copies resume within about `staleAfterSeconds`, not at job expiry.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from 'pino';
import { QUEUES } from './boss.js';

export interface LeaseOptions {
  heartbeatSeconds: number;
  staleAfterSeconds: number;
}

export const DEFAULT_LEASE_OPTIONS: LeaseOptions = { heartbeatSeconds: 5, staleAfterSeconds: 30 };

export class LeaseKeeper {
  readonly workerId = randomUUID();
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly boss: PgBoss,
    private readonly log: Logger,
    private readonly options: LeaseOptions = DEFAULT_LEASE_OPTIONS,
  ) {}

  async start(): Promise<void> {
    await this.pool.query('INSERT INTO bb_workers (id, host, pid) VALUES ($1, $2, $3)', [this.workerId, hostname(), process.pid]);
    await this.sweep();
    this.timer = setInterval(() => {
      void this.tick();
    }, this.options.heartbeatSeconds * 1000);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      await this.pool.query('UPDATE bb_workers SET heartbeat_at = now() WHERE id = $1', [this.workerId]);
      await this.sweep();
    } catch (err) {
      this.log.warn({ err }, 'worker heartbeat failed');
    }
  }

  async acquire(jobId: string, taskId: string, key: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO bb_job_leases (job_id, worker_id, task_id, key) VALUES ($1, $2, $3, $4) ON CONFLICT (job_id) DO UPDATE SET worker_id = EXCLUDED.worker_id, started_at = now()',
      [jobId, this.workerId, taskId, key],
    );
  }

  async release(jobId: string): Promise<void> {
    await this.pool.query('DELETE FROM bb_job_leases WHERE job_id = $1 AND worker_id = $2', [jobId, this.workerId]);
  }

  /** Hand back jobs of workers whose heartbeat is stale. One sweeper at a time across processes. */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    const client = await this.pool.connect();
    try {
      const { rows: lock } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', ['bucketbridge.lease-sweep']);
      if (!lock[0]?.ok) return 0;
      try {
        const { rows } = await client.query<{ job_id: string; worker_id: string }>(
          `SELECT l.job_id, l.worker_id FROM bb_job_leases l JOIN bb_workers w ON w.id = l.worker_id
            WHERE w.heartbeat_at < now() - make_interval(secs => $1)`,
          [this.options.staleAfterSeconds],
        );
        if (rows.length > 0) {
          // Failing (not completing) the job makes pg-boss retry it, with its backoff.
          await this.boss.fail(
            QUEUES.replicate,
            rows.map((r) => r.job_id),
          );
          this.log.warn({ jobs: rows.length }, 'handed back jobs of a dead worker');
        }
        await client.query('DELETE FROM bb_workers WHERE heartbeat_at < now() - make_interval(secs => $1)', [
          this.options.staleAfterSeconds,
        ]);
        return rows.length;
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['bucketbridge.lease-sweep']);
      }
    } finally {
      client.release();
      this.sweeping = false;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.pool.query('DELETE FROM bb_workers WHERE id = $1', [this.workerId]).catch(() => {});
  }
}
