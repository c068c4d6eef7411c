/**
 * The replication half of the service assembled in-process, the way
 * src/service.ts does it (database, pg-boss, task registry, store cache,
 * leases, ReplicationWorkers), over a fresh database, with small retry
 * settings so retries and dead-lettering happen in seconds. No HTTP: tests
 * enqueue keys directly (the same durable enqueue intake uses) and read the
 * status rows, the queue and the stores.
 */
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import { validateTask } from '../../src/config/validate.js';
import { migrate } from '../../src/db/migrate.js';
import { MultipartRepo } from '../../src/db/multipart-repo.js';
import { ObjectStatusRepo, type ObjectStatusRow } from '../../src/db/object-status-repo.js';
import { createPool } from '../../src/db/pool.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { DEFAULT_QUEUE_SETTINGS, QUEUES, replicateSingletonKey, startBoss, type ReplicateJob } from '../../src/queue/boss.js';
import { enqueueReplications } from '../../src/queue/enqueue.js';
import { LeaseKeeper } from '../../src/queue/leases.js';
import { ReplicationWorkers } from '../../src/queue/replication-worker.js';
import { StoreCache } from '../../src/replication/stores.js';
import { TaskRegistry } from '../../src/tasks/registry.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

export interface ReplicationHarness {
  db: TestDatabase;
  pool: pg.Pool;
  boss: PgBoss;
  tasks: TaskRegistry;
  workers: ReplicationWorkers;
  statuses: ObjectStatusRepo;
  uploads: MultipartRepo;
  /** Queue keys of a task (as intake does). Returns the ids of the jobs created (duplicates of queued keys are dropped). */
  enqueue(taskId: string, keys: string | string[], kind?: ReplicateJob['kind']): Promise<string[]>;
  status(taskId: string, key: string): Promise<ObjectStatusRow | undefined>;
  /** Wait until the key's status row satisfies `done` (default: any settled status) and no job of the key is queued or running. */
  settled(taskId: string, key: string, done?: (row: ObjectStatusRow) => boolean, timeoutMs?: number): Promise<ObjectStatusRow>;
  /** Jobs of the replicate queue for a key, oldest first. */
  jobs(taskId: string, key: string): Promise<{ id: string; state: string; retryCount: number; output: unknown }[]>;
  /** Jobs in the dead-letter queue. */
  deadLetters(): Promise<{ data: ReplicateJob & { error?: { code: string; message: string } } }[]>;
  close(): Promise<void>;
  /** The environment the stores read credentials from when they are created (a test may change it). */
  env: NodeJS.ProcessEnv;
}

export interface HarnessOptions {
  tasks: unknown[];
  /** Env the tasks' credential references are read from. */
  env: Record<string, string>;
  concurrency?: number;
  retryLimit?: number;
  retryDelaySeconds?: number;
  restoreRecheckSeconds?: number;
  memoryBudgetBytes?: number;
  pausedRecheckSeconds?: number;
  /** The workers' idle poll (default 100 ms here); tests of wake-ups set it very long. */
  pollIntervalMs?: number;
  /** Metrics the workers report into, wired as src/service.ts does (e.g. a Stack's, to read them on its GET /metrics); default a registry of their own. */
  metrics?: Metrics;
}

const SETTLED = new Set(['completed', 'in_sync', 'deleted', 'source_missing', 'archived', 'failed']);

export async function startReplication(options: HarnessOptions): Promise<ReplicationHarness> {
  const db = await createTestDatabase();
  const pool = createPool(db.url, 10);
  await migrate(pool);
  const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');
  const boss = await startBoss(
    db.url,
    log,
    { ...DEFAULT_QUEUE_SETTINGS, retryLimit: options.retryLimit ?? 3, retryDelaySeconds: options.retryDelaySeconds ?? 0 },
    { supervise: false, schedule: false },
  );
  const env = { ...process.env, ...options.env };
  const tasks = new TaskRegistry(pool);
  await tasks.syncConfigTasks(options.tasks.map((t, i) => validateTask(structuredClone(t), `tasks[${i}]`, env)));
  const stores = new StoreCache(log, env, { pool });
  const leases = new LeaseKeeper(pool, boss, log, { heartbeatSeconds: 1, staleAfterSeconds: 5 });
  await leases.start();
  const statuses = new ObjectStatusRepo(pool);
  const uploads = new MultipartRepo(pool);
  const metrics = options.metrics ?? createMetrics();
  const workers = new ReplicationWorkers({
    boss,
    pool,
    tasks,
    stores,
    statuses,
    uploads,
    leases,
    metrics: metrics.replication,
    onSettleStatement: (jobs, committed, next) => metrics.settleBatches.batch(jobs, committed, next),
    log,
    concurrency: options.concurrency ?? 4,
    memoryBudgetBytes: options.memoryBudgetBytes ?? 64 * 1024 * 1024,
    pollIntervalMs: options.pollIntervalMs ?? 100,
    intentRecheckSeconds: options.retryDelaySeconds ?? 0,
    ...(options.restoreRecheckSeconds !== undefined ? { restoreRecheckSeconds: options.restoreRecheckSeconds } : {}),
    ...(options.pausedRecheckSeconds !== undefined ? { pausedRecheckSeconds: options.pausedRecheckSeconds } : {}),
  });
  await workers.start();

  const jobs: ReplicationHarness['jobs'] = async (taskId, key) => {
    const { rows } = await pool.query<{ id: string; state: string; retryCount: number; output: unknown }>(
      `SELECT id, state, retry_count AS "retryCount", output FROM pgboss.job WHERE name = $1 AND singleton_key = $2 ORDER BY created_on, id`,
      [QUEUES.replicate, replicateSingletonKey(taskId, key)],
    );
    return rows;
  };
  const status: ReplicationHarness['status'] = (taskId, key) => statuses.get(taskId, key);

  return {
    db,
    pool,
    env,
    boss,
    tasks,
    workers,
    statuses,
    uploads,
    async enqueue(taskId, keys, kind = 'created') {
      const list = Array.isArray(keys) ? keys : [keys];
      const r = await enqueueReplications(
        boss,
        pool,
        list.map((key) => ({ taskId, key, trigger: 'event' as const, kind })),
      );
      return r.jobIds;
    },
    status,
    jobs,
    async settled(taskId, key, done = (row) => SETTLED.has(row.status), timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: ObjectStatusRow | undefined;
      for (;;) {
        last = await status(taskId, key);
        if (last && done(last)) {
          const open = (await jobs(taskId, key)).filter((j) => j.state === 'created' || j.state === 'retry' || j.state === 'active');
          if (open.length === 0) return last;
        }
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${taskId}:${key} to settle; last status ${JSON.stringify(last)}; jobs ${JSON.stringify(await jobs(taskId, key))}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async deadLetters() {
      const { rows } = await pool.query<{ data: ReplicateJob & { error?: { code: string; message: string } } }>(
        'SELECT data FROM pgboss.job WHERE name = $1 ORDER BY created_on',
        [QUEUES.replicateDead],
      );
      return rows;
    },
    async close() {
      await workers.stop(2_000);
      await leases.stop();
      await stores.close();
      await boss.stop({ graceful: false, wait: true, timeout: 2_000 });
      await pool.end();
      await db.drop();
    },
  };
}

/** Endpoint config pieces for tasks against the test servers, with credentials in env vars named after `prefix`. */
export function s3Endpoint(endpoint: string, bucket: string, prefix = 'T_S3'): Record<string, unknown> {
  return {
    provider: 's3',
    bucket,
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyIdEnv: `${prefix}_AK`, secretAccessKeyEnv: `${prefix}_SK` },
  };
}

export function ossEndpoint(endpoint: string, bucket: string, prefix = 'T_OSS'): Record<string, unknown> {
  return {
    provider: 'oss',
    bucket,
    region: 'oss-cn-hangzhou',
    endpoint,
    credentials: { accessKeyIdEnv: `${prefix}_AK`, secretAccessKeyEnv: `${prefix}_SK` },
  };
}
