/**
 * Prometheus metrics (prom-client): one registry per process, passed to the
 * modules that report, never a global, so tests can build several apps.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueSnapshot } from './db/task-status-repo.js';
import type { IntakeMetrics } from './http/routes/intake-metrics.js';
import { SETTLE_FAILURE_ACTIONS, type SettleFailureAction } from './queue/settle-batcher.js';

export interface ReplicationMetrics {
  objectDone(taskId: string, outcome: string, bytes: number, seconds: number): void;
  integrityMismatch(taskId: string, side: 'source' | 'destination'): void;
}

/** Group commit of the intake (queue/enqueue.ts): requests per statement, committed or failed. */
export interface IntakeBatchMetrics {
  batch(requests: number, committed: boolean): void;
}

/**
 * Group commit of successful replication jobs (queue/settle-batcher.ts): jobs
 * per statement attempt, committed or failed, and what followed a failure.
 */
export interface SettleBatchMetrics {
  batch(jobs: number, committed: boolean, next?: SettleFailureAction): void;
}

/** Rows written by one group-commit statement (intake requests, settled jobs): powers of two up to 256. */
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export interface Metrics {
  registry: Registry;
  intake: IntakeMetrics;
  intakeBatches: IntakeBatchMetrics;
  settleBatches: SettleBatchMetrics;
  replication: ReplicationMetrics;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'bb_process_' });
  const notifications = new Counter({
    name: 'bb_notifications_total',
    help: 'Notification requests received, by format and outcome (accepted, replayed or an error code)',
    labelNames: ['format', 'outcome'],
    registers: [registry],
  });
  const keys = new Counter({
    name: 'bb_notification_keys_total',
    help: 'Keys in accepted notifications, by result (queued or duplicate)',
    labelNames: ['format', 'result'],
    registers: [registry],
  });
  const batches = new Histogram({
    name: 'bb_intake_batch_requests',
    help: 'Intake requests written by one statement (group commit), by outcome (committed or failed)',
    labelNames: ['outcome'],
    buckets: BATCH_SIZE_BUCKETS,
    registers: [registry],
  });
  const settleJobs = new Histogram({
    name: 'bb_settle_batch_jobs',
    help: 'Successful replication jobs written by one settle statement attempt (group commit), by outcome (committed or failed)',
    labelNames: ['outcome'],
    buckets: BATCH_SIZE_BUCKETS,
    registers: [registry],
  });
  const settleFailures = new Counter({
    name: 'bb_settle_batch_failures_total',
    help: 'Settle statement attempts that failed, by what followed: retry (same batch again after a backoff), split (each job alone), give_up (completions not written)',
    labelNames: ['action'],
    registers: [registry],
  });
  // Every action shown from the start (0), so a rate or an alert on give_up has a series before the first failure.
  for (const action of SETTLE_FAILURE_ACTIONS) settleFailures.inc({ action }, 0);
  const objects = new Counter({
    name: 'bb_objects_replicated_total',
    help: 'Reconciled keys by task and final outcome of the attempt',
    labelNames: ['task', 'outcome'],
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'bb_bytes_replicated_total',
    help: 'Bytes written to destinations, by task',
    labelNames: ['task'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'bb_copy_duration_seconds',
    help: 'Time to reconcile one key, by task and outcome',
    labelNames: ['task', 'outcome'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  const mismatches = new Counter({
    name: 'bb_integrity_mismatches_total',
    help: 'Checksum mismatches detected (the attempt is failed and retried)',
    labelNames: ['task', 'side'],
    registers: [registry],
  });
  return {
    registry,
    intake: {
      notification(format, outcome, accepted = 0, duplicates = 0) {
        notifications.inc({ format, outcome });
        if (accepted) keys.inc({ format, result: 'queued' }, accepted);
        if (duplicates) keys.inc({ format, result: 'duplicate' }, duplicates);
      },
    },
    intakeBatches: {
      batch(requests, committed) {
        batches.observe({ outcome: committed ? 'committed' : 'failed' }, requests);
      },
    },
    settleBatches: {
      batch(jobs, committed, next) {
        settleJobs.observe({ outcome: committed ? 'committed' : 'failed' }, jobs);
        if (!committed && next) settleFailures.inc({ action: next });
      },
    },
    replication: {
      objectDone(taskId, outcome, n, seconds) {
        objects.inc({ task: taskId, outcome });
        if (n > 0) bytes.inc({ task: taskId }, n);
        duration.observe({ task: taskId, outcome }, seconds);
      },
      integrityMismatch(taskId, side) {
        mismatches.inc({ task: taskId, side });
      },
    },
  };
}

export interface QueueGaugeSource {
  /** Job counts and lag of every task (db/task-status-repo.ts). */
  snapshot(): Promise<QueueSnapshot>;
  /** Tasks that get a 0 series when nothing is outstanding. */
  taskIds(): string[];
}

const JOB_STATES = ['queued', 'retrying', 'active', 'failed'] as const;

/**
 * Gauges computed on scrape from pgboss.job and bb_object_status:
 * `bb_queue_jobs{task,state}` (queued, retrying, active; failed = held in the
 * dead-letter queue) and `bb_replication_lag_seconds{task}`. One snapshot
 * serves both gauges and is reused for `ttlMs`, so frequent or parallel
 * scrapes cost at most one pair of queries per interval. When the database
 * cannot be read the series are left out of that scrape.
 */
export function registerQueueGauges(registry: Registry, source: QueueGaugeSource, ttlMs = 5_000): void {
  let cached: { at: number; value: Promise<QueueSnapshot | undefined> } | undefined;
  const snapshot = () => {
    const now = Date.now();
    if (!cached || now - cached.at >= ttlMs) cached = { at: now, value: source.snapshot().catch(() => undefined) };
    return cached.value;
  };
  const jobs: Gauge<'task' | 'state'> = new Gauge({
    name: 'bb_queue_jobs',
    help: 'Replication jobs by task and state: queued, retrying, active, failed (dead-lettered, kept 30 days)',
    labelNames: ['task', 'state'],
    registers: [registry],
    async collect() {
      const snap = await snapshot();
      jobs.reset();
      if (!snap) return;
      for (const task of source.taskIds()) for (const state of JOB_STATES) jobs.set({ task, state }, 0);
      for (const j of snap.jobs) jobs.set({ task: j.task, state: j.state }, j.count);
    },
  });
  const lag: Gauge<'task'> = new Gauge({
    name: 'bb_replication_lag_seconds',
    help: 'Age of the oldest change of the task not yet replicated (0 when nothing is outstanding)',
    labelNames: ['task'],
    registers: [registry],
    async collect() {
      const snap = await snapshot();
      lag.reset();
      if (!snap) return;
      for (const task of source.taskIds()) lag.set({ task }, 0);
      for (const l of snap.lag) lag.set({ task: l.task }, l.seconds);
    },
  });
}
