/**
 * Heartbeats and job leases (see migrations/003). Each process heartbeats;
 * every job it runs holds a lease (taken in the same statement that fetches
 * the job, see replication-worker.ts). Jobs of a dead process are handed back
 * to pg-boss (failed → retried with backoff) by whichever process sweeps next:
 *  - a process whose heartbeat is older than `staleAfterSeconds`, anywhere;
 *  - at once, a process on this same machine and pid namespace whose pid no
 *    longer exists (or is our own pid: a previous incarnation, e.g. a
 *    restarted container), so a process restarted after a crash resumes its
 *    predecessor's copies immediately instead of after the staleness delay.
 * "Same machine" is the hostname plus the kernel boot id plus the pid
 * namespace, recorded in `bb_workers.host` as `hostname#boot-id#pid-ns`, so two
 * machines (or containers) that share a hostname are never confused.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
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

function tryRead(read: () => string): string {
  try {
    return read().trim();
  } catch {
    return '';
  }
}

/** hostname#boot-id#pid-namespace: equal only for processes that can see each other's pids. */
export function machineIdentity(): string {
  const bootId = tryRead(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
  const pidNamespace = tryRead(() => readlinkSync('/proc/self/ns/pid')).replace(/^pid:\[(\d+)\]$/, '$1');
  // Without /proc (not Linux) we cannot tell machines apart: never treat another row as local.
  if (!bootId || !pidNamespace) return `${hostname()}#unknown-${randomUUID()}`;
  return `${hostname()}#${bootId}#${pidNamespace}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Worker ids alive in this process: a row with our pid is a previous incarnation only if it is not one of these. */
const liveInThisProcess = new Set<string>();

export class LeaseKeeper {
  readonly workerId = randomUUID();
  readonly identity = machineIdentity();
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly boss: PgBoss,
    private readonly log: Logger,
    private readonly options: LeaseOptions = DEFAULT_LEASE_OPTIONS,
  ) {}

  async start(): Promise<void> {
    liveInThisProcess.add(this.workerId);
    await this.register();
    await this.sweep();
    this.timer = setInterval(() => {
      void this.tick();
    }, this.options.heartbeatSeconds * 1000);
    this.timer.unref();
  }

  private async register(): Promise<void> {
    await this.pool.query(
      'INSERT INTO bb_workers (id, host, pid) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()',
      [this.workerId, this.identity, process.pid],
    );
  }

  private async tick(): Promise<void> {
    try {
      const { rowCount } = await this.pool.query('UPDATE bb_workers SET heartbeat_at = now() WHERE id = $1', [this.workerId]);
      if (rowCount === 0) {
        // Another process took us for dead (a long stall) and handed our jobs back: be visible again.
        this.log.warn('worker row was swept while alive; registering again');
        await this.register();
      }
      await this.sweep();
    } catch (err) {
      this.log.warn({ err }, 'worker heartbeat failed');
    }
  }

  /** Hand back jobs of dead workers. One sweeper at a time across processes. */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      const { rows: lock } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', ['bucketbridge.lease-sweep']);
      if (!lock[0]?.ok) return 0;
      try {
        const { rows: workers } = await client.query<{ id: string; host: string; pid: number; stale: boolean }>(
          `SELECT id, host, pid, heartbeat_at < now() - make_interval(secs => $2) AS stale
             FROM bb_workers WHERE id <> $1`,
          [this.workerId, this.options.staleAfterSeconds],
        );
        const dead = workers
          .filter(
            (w) =>
              w.stale ||
              (w.host === this.identity && (w.pid === process.pid ? !liveInThisProcess.has(w.id) : !pidAlive(w.pid))),
          )
          .map((w) => w.id);
        if (dead.length === 0) return 0;
        const { rows } = await client.query<{ job_id: string }>('SELECT job_id FROM bb_job_leases WHERE worker_id = ANY($1::uuid[])', [dead]);
        if (rows.length > 0) {
          // Failing (not completing) the job makes pg-boss retry it, with its backoff.
          await this.boss.fail(
            QUEUES.replicate,
            rows.map((r) => r.job_id),
          );
          this.log.warn({ jobs: rows.length, workers: dead.length }, 'handed back jobs of a dead worker');
        }
        await client.query('DELETE FROM bb_workers WHERE id = ANY($1::uuid[])', [dead]);
        return rows.length;
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['bucketbridge.lease-sweep']);
      }
    } finally {
      client?.release();
      this.sweeping = false;
    }
  }

  async release(jobId: string): Promise<void> {
    await this.pool.query('DELETE FROM bb_job_leases WHERE job_id = $1 AND worker_id = $2', [jobId, this.workerId]);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    liveInThisProcess.delete(this.workerId);
    await this.pool.query('DELETE FROM bb_workers WHERE id = $1', [this.workerId]).catch(() => {});
  }
}
