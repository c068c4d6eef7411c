/**
 * pg-boss setup: one schema, the queues BucketBridge uses, and their policies.
 * Replication jobs are keyed `task:objectKey` on a stately queue, so a burst of
 * events for one key collapses to at most one queued and one running job.
 */
import PgBoss from 'pg-boss';
import type { Logger } from 'pino';

export const QUEUES = {
  replicate: 'bb-replicate',
  /** Replication jobs that failed past their retry limit or permanently. */
  replicateDead: 'bb-replicate-dead',
  /** Reconciliation scans (src/scan/): one job per scan run; the scan's state lives in bb_scans. */
  scan: 'bb-scan',
} as const;

export interface ReplicateJob {
  taskId: string;
  key: string;
  /** What queued it: an event (with its kind), a scan, or an operator's retry. */
  trigger: 'event' | 'scan' | 'retry';
  kind?: 'created' | 'removed' | 'unknown';
  /**
   * When the change was first queued (ISO time). Set by enqueueReplications and
   * carried when a job is re-sent (paused task, archived source), so replication
   * lag counts from the first enqueue, not from the latest re-send.
   */
  queuedAt?: string;
  /**
   * Set by a scan on keys its destination listing did not have ("missing"):
   * when that listing was read (ISO time). A fresh hint on a first attempt lets
   * the worker skip the destination HEAD (replication/reconcile.ts). A job that
   * an event queued first keeps its own data (singleton key), so has none.
   */
  destinationAbsentAt?: string;
}

export function replicateSingletonKey(taskId: string, key: string): string {
  return `${taskId}:${key}`;
}

export interface QueueSettings {
  retryLimit: number;
  retryDelaySeconds: number;
  /** A running copy is handed back to the queue after this long (a crashed worker's job). */
  expireInSeconds: number;
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = {
  retryLimit: 6,
  retryDelaySeconds: 2,
  expireInSeconds: 4 * 3600,
};

export async function startBoss(
  connectionString: string,
  logger: Logger,
  settings: QueueSettings = DEFAULT_QUEUE_SETTINGS,
  options: { supervise?: boolean; schedule?: boolean } = {},
): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString,
    schema: 'pgboss',
    max: 10,
    application_name: 'bucketbridge-queue',
    supervise: options.supervise ?? true,
    schedule: options.schedule ?? true,
    migrate: true,
  });
  boss.on('error', (err) => logger.error({ err }, 'queue error'));
  await boss.start();
  await ensureQueues(boss, settings);
  return boss;
}

/** Deadlock, serialization failure, duplicate key / table: two processes creating the same queue at once. */
const CONCURRENT_DDL = new Set(['40P01', '40001', '23505', '42P07']);

export async function ensureQueue(boss: PgBoss, name: string, options: Omit<PgBoss.Queue, 'name'>): Promise<void> {
  // Processes starting together on a fresh database race to create the queues; pg-boss's
  // create_queue (row + partition table) can then deadlock. The loser tries again.
  for (let attempt = 1; ; attempt++) {
    try {
      if (await boss.getQueue(name)) await boss.updateQueue(name, { name, ...options });
      else {
        try {
          await boss.createQueue(name, { name, ...options });
        } catch (err) {
          // Another process created it between our check and our insert.
          if (!(await boss.getQueue(name))) throw err;
        }
      }
      return;
    } catch (err) {
      if (attempt >= 8 || !CONCURRENT_DDL.has((err as { code?: string }).code ?? '')) throw err;
      await new Promise((r) => setTimeout(r, 25 * attempt + Math.floor(Math.random() * 50)));
    }
  }
}

export async function ensureQueues(boss: PgBoss, settings: QueueSettings): Promise<void> {
  await ensureQueue(boss, QUEUES.replicateDead, { policy: 'standard', retentionDays: 30 });
  await ensureQueue(boss, QUEUES.replicate, {
    policy: 'stately',
    retryLimit: settings.retryLimit,
    retryDelay: settings.retryDelaySeconds,
    // Exponential backoff with jitter; pg-boss raises its base to at least 1 s, so a
    // delay of 0 means "retry at once, no backoff" (for tests).
    retryBackoff: settings.retryDelaySeconds > 0,
    expireInSeconds: settings.expireInSeconds,
    retentionDays: 14,
    deadLetter: QUEUES.replicateDead,
  });
  // A scan is not retried by pg-boss: an interrupted one is re-queued from its
  // saved position by the scan sweep (src/scan/scans.ts). Expiry is pg-boss's maximum.
  await ensureQueue(boss, QUEUES.scan, { policy: 'standard', retryLimit: 0, expireInSeconds: 23 * 3600, retentionDays: 7 });
}
