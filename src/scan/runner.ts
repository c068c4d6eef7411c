/**
 * Runs one recorded scan: claim the row (queued → running), resolve its scope,
 * run the pipeline with the task's stores, bb_object_status lookups and the
 * replication queue as sink, and record progress as it goes.
 *
 * Progress (counters, resume position, heartbeat) is written every
 * `progressIntervalMs`; the same write tells the runner whether the row is
 * still its own — a scan cancelled through the API, swept as stale, or whose
 * task was deleted stops at the next chunk. On shutdown the scan is handed
 * back: pending jobs are flushed, the row goes back to `queued` with its
 * position and a new bb-scan job (announced, scan-jobs.ts), and any process
 * resumes it from there.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction } from '../db/pool.js';
import { enqueueReplications } from '../queue/enqueue.js';
import { taskEncryptionKey } from '../replication/encryption.js';
import { createStore } from '../storage/create-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Task, TaskRegistry } from '../tasks/registry.js';
import type { StatusLookup, StatusRowLite } from './compare.js';
import { readPrefixList } from './prefix-list.js';
import { runPipeline, type PipelineOptions } from './pipeline.js';
import { insertScanJob, returnScanJob } from './scan-jobs.js';
import { ScanRepo, type ScanRecord } from './scan-repo.js';
import { resolveScope } from './scope.js';

export interface RunnerOptions extends Partial<PipelineOptions> {
  /** How often progress and the heartbeat are written (and cancellation noticed). */
  progressIntervalMs?: number;
}

export interface TaskStoreSource {
  for(task: Task): { source: ObjectStore; destination: ObjectStore };
}

export interface RunnerDeps {
  pool: pg.Pool;
  boss: PgBoss;
  tasks: TaskRegistry;
  stores: TaskStoreSource;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  options?: RunnerOptions;
}

export function statusLookup(pool: pg.Pool, taskId: string): StatusLookup {
  return async (keys) => {
    const { rows } = await pool.query<{ key: string; status: string; source_etag: string | null; destination_etag: string | null }>(
      'SELECT key, status, source_etag, destination_etag FROM bb_object_status WHERE task_id = $1 AND key = ANY($2::text[])',
      [taskId, keys],
    );
    const out = new Map<string, StatusRowLite>();
    for (const r of rows) out.set(r.key, { status: r.status, sourceEtag: r.source_etag, destinationEtag: r.destination_etag });
    return out;
  };
}

export class ScanRunner {
  readonly repo: ScanRepo;

  constructor(private readonly deps: RunnerDeps) {
    this.repo = new ScanRepo(deps.pool);
  }

  private async taskFor(id: string): Promise<Task | undefined> {
    let task = this.deps.tasks.get(id);
    if (!task) {
      await this.deps.tasks.load();
      task = this.deps.tasks.get(id);
    }
    return task;
  }

  /**
   * Put back a bb-scan job that was fetched for a scan this process will not
   * start after all (it is stopping): the job is runnable again, announced,
   * and any process picks it up, as it would a scan handed back by run().
   */
  async handBack(jobId: string): Promise<void> {
    await withTransaction(this.deps.pool, (client) => returnScanJob(this.deps.boss, client, jobId));
  }

  /**
   * Run the scan if it is still queued. `signal` aborting means shutdown: the
   * scan is handed back to the queue. Resolves with the final record (or
   * undefined when the scan was not ours to run).
   */
  async run(scanId: string, signal?: AbortSignal): Promise<ScanRecord | undefined> {
    const worker = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const claimed = await this.repo.claim(scanId, worker);
    if (!claimed) {
      this.deps.log.debug({ scanId }, 'scan is no longer queued; nothing to run');
      return this.repo.get(scanId);
    }
    const log = this.deps.log.child({ scanId, taskId: claimed.taskId, attempt: claimed.attempts });
    const counters = { ...claimed.counters };
    let position = claimed.position;
    // Progress writes save the counters as of `position`, so a resumed scan counts each key once.
    let committed = { ...counters };
    let lost = false;
    const opts = this.deps.options ?? {};
    const tick = async () => {
      try {
        if (!(await this.repo.progress(scanId, worker, committed, position))) lost = true;
      } catch (err) {
        log.warn({ err }, 'could not record scan progress');
      }
    };
    let ticking: Promise<void> | undefined;
    const timer = setInterval(() => {
      ticking ??= tick().finally(() => (ticking = undefined));
    }, opts.progressIntervalMs ?? 1000);
    timer.unref();
    const extraStores: ObjectStore[] = [];
    try {
      const task = await this.taskFor(claimed.taskId);
      if (!task) throw new Error(`task ${claimed.taskId} no longer exists`);
      const stores = this.deps.stores.for(task);
      const scope = claimed.scope;
      let listed: string[] | undefined;
      if (scope.mode === 'prefixes') listed = scope.prefixes ?? [];
      else if (scope.mode === 'prefix-list' && scope.prefixList) {
        let store = stores.source;
        if (scope.prefixList.bucket && scope.prefixList.bucket !== task.source.bucket) {
          store = createStore({ ...task.source, bucket: scope.prefixList.bucket }, this.deps.env ?? process.env);
          extraStores.push(store);
        }
        listed = await readPrefixList(store, scope.prefixList.key);
      }
      const resolved = resolveScope(scope, task.source.prefixes, listed);
      // A key file that cannot be read fails the scan, as it fails every copy of the task.
      const cseKeyId = taskEncryptionKey(task.options)?.keyId;
      log.info({ prefixes: resolved.prefixes.length, resumeAfter: position ?? undefined }, 'scan started');
      const started = Date.now();
      const result = await runPipeline({
        source: stores.source,
        destination: stores.destination,
        scope: resolved,
        compare: task.options.compare,
        deletes: task.options.deletes,
        skipKnownArchived: !task.options.restoreArchived,
        ...(cseKeyId !== undefined ? { cseKeyId } : {}),
        statuses: statusLookup(this.deps.pool, task.id),
        sink: async (differences) => {
          // Keys the destination listing did not have carry when that was seen, so the worker
          // can skip its destination HEAD while the hint is fresh (replication/reconcile.ts).
          // The sink runs a chunk (and at most a flush interval) after the page was listed:
          // seconds, against a bound of minutes.
          const destinationAbsentAt = new Date().toISOString();
          const r = await enqueueReplications(
            this.deps.boss,
            this.deps.pool,
            differences.map((d) => ({
              taskId: task.id,
              key: d.key,
              trigger: 'scan' as const,
              kind: d.kind === 'extra' ? ('removed' as const) : ('created' as const),
              ...(d.kind === 'missing' ? { destinationAbsentAt } : {}),
            })),
          );
          return { queued: r.accepted, alreadyQueued: r.duplicates };
        },
        counters,
        ...(position !== null ? { startAfter: position } : {}),
        shouldStop: () => (lost ? 'cancelled' : signal?.aborted ? 'shutdown' : undefined),
        onPosition: (p, snapshot) => {
          position = p;
          committed = snapshot;
        },
        options: opts,
      });
      clearInterval(timer);
      await ticking;
      if (result.stopped === 'cancelled' || lost) {
        log.info({ counters }, 'scan stopped: cancelled or no longer this process’s');
        return this.repo.get(scanId);
      }
      if (result.stopped === 'shutdown') {
        const jobId = randomUUID();
        const handedBack = await withTransaction(this.deps.pool, async (client) => {
          const ok = await this.repo.requeue(client, scanId, worker, jobId, committed, position);
          if (ok) await insertScanJob(this.deps.boss, client, jobId, scanId);
          return ok;
        });
        log.info({ position, handedBack }, 'scan interrupted by shutdown; handed back to the queue');
        return this.repo.get(scanId);
      }
      await this.repo.finish(scanId, worker, 'completed', counters, position);
      const seconds = (Date.now() - started) / 1000;
      log.info({ counters, seconds }, 'scan completed');
      return this.repo.get(scanId);
    } catch (err) {
      clearInterval(timer);
      await ticking;
      const message = (err as Error).message ?? String(err);
      log.warn({ err }, 'scan failed');
      await this.repo.finish(scanId, worker, 'failed', counters, position, message.slice(0, 2000)).catch((e: unknown) => {
        log.error({ err: e }, 'could not record the scan failure; the stale-scan sweep will');
      });
      return this.repo.get(scanId);
    } finally {
      clearInterval(timer);
      await Promise.allSettled(extraStores.map((s) => s.close()));
    }
  }
}
