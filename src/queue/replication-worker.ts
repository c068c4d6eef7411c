/**
 * Runs replication jobs: pg-boss hands a job, the worker reconciles the key,
 * records the outcome (status row, marker, metrics) and decides between
 * "done", "retry with backoff" (transient failures; pg-boss re-queues) and
 * "failed now" (permanent failures go straight to the dead-letter queue).
 */
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ObjectStatusRepo } from '../db/object-status-repo.js';
import type { MultipartRepo } from '../db/multipart-repo.js';
import type { ReplicationMetrics } from '../metrics.js';
import { ByteBudget, Semaphore } from '../replication/byte-budget.js';
import { IntegrityError } from '../replication/copy.js';
import { reconcile, ReplicationError } from '../replication/reconcile.js';
import type { StoreCache } from '../replication/stores.js';
import { StorageError } from '../storage/errors.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { QUEUES, replicateSingletonKey, type ReplicateJob } from './boss.js';
import type { LeaseKeeper } from './leases.js';

export interface WorkerDeps {
  boss: PgBoss;
  pool: pg.Pool;
  tasks: TaskRegistry;
  stores: StoreCache;
  statuses: ObjectStatusRepo;
  uploads: MultipartRepo;
  leases: LeaseKeeper;
  metrics: ReplicationMetrics;
  log: Logger;
  concurrency: number;
  /** Bytes buffered for uploads across all jobs of this process. */
  memoryBudgetBytes: number;
  /** Seconds a paused task's jobs wait before they look again. */
  pausedRecheckSeconds?: number;
}

interface Classified {
  code: string;
  message: string;
  retryable: boolean;
}

function classify(err: unknown): Classified {
  if (err instanceof StorageError) return { code: err.code, message: err.message, retryable: err.retryable };
  if (err instanceof ReplicationError) return { code: err.code, message: err.message, retryable: err.retryable };
  const e = err as { code?: string; message?: string };
  // Database or unexpected errors: retry, they are usually transient.
  return { code: e.code ?? 'INTERNAL', message: e.message ?? String(err), retryable: true };
}

export class ReplicationWorkers {
  private readonly budget: ByteBudget;
  private readonly perTask = new Map<string, { max: number; sem: Semaphore }>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private stopping = false;

  constructor(private readonly deps: WorkerDeps) {
    this.budget = new ByteBudget(deps.memoryBudgetBytes);
  }

  /** Start `concurrency` fetch loops (pg-boss 10 runs one job per loop with batchSize 1). */
  async start(): Promise<void> {
    for (let i = 0; i < this.deps.concurrency; i++) {
      await this.deps.boss.work<ReplicateJob>(
        QUEUES.replicate,
        { batchSize: 1, pollingIntervalSeconds: 0.5, includeMetadata: true },
        async ([job]) => {
          if (!job) return;
          const p = this.run(job);
          this.inFlight.set(job.id, p);
          try {
            return await p;
          } finally {
            this.inFlight.delete(job.id);
          }
        },
      );
    }
  }

  get activeJobs(): number {
    return this.inFlight.size;
  }

  /**
   * Stop fetching, give in-flight jobs `graceMs` to finish, then hand the rest
   * back to the queue so another process (or the next start) picks them up.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await this.deps.boss.offWork(QUEUES.replicate);
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const leftovers = [...this.inFlight.keys()];
    if (leftovers.length > 0) {
      this.deps.log.warn({ jobs: leftovers.length }, 'handing unfinished jobs back to the queue');
      await this.deps.boss.fail(QUEUES.replicate, leftovers).catch((err: unknown) => {
        this.deps.log.error({ err }, 'could not hand jobs back; they return when their lease is swept');
      });
    }
  }

  private limiterFor(taskId: string, max: number): Semaphore {
    const entry = this.perTask.get(taskId);
    if (entry && entry.max === max) return entry.sem;
    const sem = new Semaphore(max);
    this.perTask.set(taskId, { max, sem });
    return sem;
  }

  private async run(job: PgBoss.JobWithMetadata<ReplicateJob>): Promise<unknown> {
    const { taskId, key } = job.data;
    const log = this.deps.log.child({ jobId: job.id, taskId, key, attempt: job.retryCount + 1 });
    let task = this.deps.tasks.get(taskId);
    if (!task) {
      await this.deps.tasks.load();
      task = this.deps.tasks.get(taskId);
    }
    if (!task) {
      log.warn('task no longer exists; job dropped');
      return { dropped: 'task does not exist' };
    }
    if (task.paused) {
      await this.deps.boss.send(QUEUES.replicate, job.data, {
        singletonKey: replicateSingletonKey(taskId, key),
        startAfter: this.deps.pausedRecheckSeconds ?? 30,
      });
      return { deferred: 'task paused' };
    }
    const lastAttempt = job.retryCount >= job.retryLimit;
    const current = task;
    return this.limiterFor(taskId, task.options.maxConcurrentCopies).run(async () => {
      if (this.stopping) throw new Error('shutting down');
      await this.deps.leases.acquire(job.id, taskId, key);
      const started = process.hrtime.bigint();
      const stores = this.deps.stores.for(current);
      try {
        const outcome = await reconcile(current, key, {
          source: stores.source,
          destination: stores.destination,
          budget: this.budget,
          uploads: this.deps.uploads,
          log,
          keepUploadOnError: !lastAttempt,
        });
        const durationMs = Number((process.hrtime.bigint() - started) / 1_000_000n);
        await this.deps.statuses.record({
          taskId,
          key,
          status: outcome.status,
          bytes: outcome.bytes,
          sourceEtag: outcome.sourceEtag,
          sourceCrc64: outcome.sourceCrc64,
          destinationEtag: outcome.destinationEtag,
          durationMs,
        });
        if (stores.markers && (outcome.status === 'completed' || outcome.status === 'in_sync')) await stores.markers.success(key);
        this.deps.metrics.objectDone(taskId, outcome.status, outcome.bytes ?? 0, durationMs / 1000);
        if (outcome.requeueAfterSeconds) {
          await this.deps.boss.send(QUEUES.replicate, job.data, {
            singletonKey: replicateSingletonKey(taskId, key),
            startAfter: outcome.requeueAfterSeconds,
          });
        }
        log.info({ status: outcome.status, bytes: outcome.bytes, durationMs, detail: outcome.detail }, 'reconciled');
        return { status: outcome.status, detail: outcome.detail };
      } catch (err) {
        const c = classify(err);
        const durationMs = Number((process.hrtime.bigint() - started) / 1_000_000n);
        if (err instanceof IntegrityError) this.deps.metrics.integrityMismatch(taskId, err.side);
        const final = !c.retryable || lastAttempt;
        await this.deps.statuses.record({
          taskId,
          key,
          status: final ? 'failed' : 'pending',
          durationMs,
          errorCode: c.code,
          errorMessage: c.message.slice(0, 2000),
        });
        this.deps.metrics.objectDone(taskId, final ? 'failed' : 'retrying', 0, durationMs / 1000);
        if (final && stores.markers) await stores.markers.failed(key);
        if (final && !c.retryable && !lastAttempt) {
          // Permanent: no point retrying. Dead-letter it ourselves and end the job.
          await this.deps.boss.send(QUEUES.replicateDead, { ...job.data, error: { code: c.code, message: c.message } });
          log.warn({ code: c.code, err }, 'replication failed permanently');
          return { status: 'failed', code: c.code };
        }
        log.warn({ code: c.code, final, err }, final ? 'replication failed after the last retry' : 'replication attempt failed; will retry');
        throw err;
      } finally {
        await this.deps.leases.release(job.id).catch(() => {});
      }
    });
  }
}
