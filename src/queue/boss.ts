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
} as const;

export interface ReplicateJob {
  taskId: string;
  key: string;
  /** What queued it: an event (with its kind), a scan, or an operator's retry. */
  trigger: 'event' | 'scan' | 'retry';
  kind?: 'created' | 'removed' | 'unknown';
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

async function ensureQueue(boss: PgBoss, name: string, options: Omit<PgBoss.Queue, 'name'>): Promise<void> {
  if (await boss.getQueue(name)) await boss.updateQueue(name, { name, ...options });
  else {
    try {
      await boss.createQueue(name, { name, ...options });
    } catch (err) {
      // Another process created it between our check and our insert.
      if (!(await boss.getQueue(name))) throw err;
    }
  }
}

export async function ensureQueues(boss: PgBoss, settings: QueueSettings): Promise<void> {
  await ensureQueue(boss, QUEUES.replicateDead, { policy: 'standard', retentionDays: 30 });
  await ensureQueue(boss, QUEUES.replicate, {
    policy: 'stately',
    retryLimit: settings.retryLimit,
    retryDelay: settings.retryDelaySeconds,
    retryBackoff: true,
    expireInSeconds: settings.expireInSeconds,
    retentionDays: 14,
    deadLetter: QUEUES.replicateDead,
  });
}
