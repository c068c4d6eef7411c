/**
 * Runs replication jobs: fetch a job, reconcile the key, record the outcome
 * (status row, marker, metrics) and decide between "done", "retry with
 * backoff" (transient failures; pg-boss re-queues with exponential backoff
 * and jitter) and "failed now" (permanent failures go straight to the
 * dead-letter queue; so do transient ones past the retry limit).
 *
 * Jobs are fetched by our own statement rather than pg-boss's work(), for
 * three reasons:
 *  - pg-boss's fetch takes the oldest ready job even when a job for the same
 *    key is already running; on this stately queue that violates the
 *    one-active-per-key index, the fetch returns nothing, and every worker
 *    stalls behind that one key for as long as its copy runs. Ours skips
 *    keys that have an active job.
 *  - it skips tasks that are at their per-task copy cap, so one busy task
 *    cannot fill every worker slot with jobs that only wait.
 *  - the job's lease (leases.ts) is taken in the same statement, so a crash
 *    can never leave a running job without a lease to hand it back.
 * The same statement also says whether the key has an upload intent left
 * (upload-intents.ts), so a job needs no query of its own for that.
 *
 * Per object that leaves a share of two statements on success: a fetch takes
 * several jobs at once (the dispatcher keeps jobs ready ahead of the slots and
 * tops them up in batches, see dispatch()), and the outcomes of jobs that
 * finish close together are written by one statement that records their
 * status rows, drops their leases and completes them (settle-batcher.ts).
 */
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ObjectStatusRepo, StatusUpdate } from '../db/object-status-repo.js';
import type { MultipartRepo } from '../db/multipart-repo.js';
import type { ReplicationMetrics } from '../metrics.js';
import { BufferPool, ByteBudget, Semaphore } from '../replication/byte-budget.js';
import { IntegrityError } from '../replication/integrity-error.js';
import { reconcile, ReplicationError } from '../replication/reconcile.js';
import type { StoreCache, TaskStores } from '../replication/stores.js';
import { StorageError } from '../storage/errors.js';
import type { Task, TaskRegistry } from '../tasks/registry.js';
import { DEFAULT_QUEUE_SETTINGS, QUEUES, replicateSingletonKey, type ReplicateJob } from './boss.js';
import type { LeaseKeeper } from './leases.js';
import type { KeyFailureAlerts } from '../alerts/index.js';
import { InterruptibleSleep } from './interruptible-sleep.js';
import { MAX_FAILED_SWEEPS, UploadIntents, type PreparedDestination } from './upload-intents.js';
import { SettleBatcher, type SettleBatchStats, type SettleFailureAction } from './settle-batcher.js';

/** pg-boss's schema (queue/boss.ts). */
const BOSS_SCHEMA = 'pgboss';

export interface WorkerDeps {
  boss: PgBoss;
  pool: pg.Pool;
  tasks: TaskRegistry;
  stores: StoreCache;
  statuses: ObjectStatusRepo;
  uploads: MultipartRepo;
  leases: LeaseKeeper;
  metrics: ReplicationMetrics;
  /**
   * Told after every attempt of a settle statement (settle-batcher.ts): the jobs it
   * carried, whether it committed and, when it failed, what follows. For metrics.
   */
  onSettleStatement?: (jobs: number, committed: boolean, next?: SettleFailureAction) => void;
  log: Logger;
  /**
   * Jobs copying at once in this process (all tasks together). A job whose copy
   * has ended records its outcome outside its slot, so the next job starts meanwhile.
   */
  concurrency: number;
  /** Bytes buffered for uploads across all jobs of this process. */
  memoryBudgetBytes: number;
  /** Seconds a paused task's jobs wait before they look again. */
  pausedRecheckSeconds?: number;
  /** Seconds before an archived object being restored is reconciled again (default 15 minutes). */
  restoreRecheckSeconds?: number;
  /** How often an idle worker looks for jobs. Default 500 ms. */
  pollIntervalMs?: number;
  /** Told when a key fails for good (src/alerts/); never throws. */
  alerts?: KeyFailureAlerts;
  /**
   * Base delay (s) of the follow-up job queued when a key's upload intent outlives a
   * successful job (followUpIntent); doubles with each failed sweep. Default 2 (the
   * queue's default retry delay); the service passes BB_RETRY_DELAY_SECONDS.
   */
  intentRecheckSeconds?: number;
}

const DEFAULT_INTENT_RECHECK_SECONDS = DEFAULT_QUEUE_SETTINGS.retryDelaySeconds;

interface Classified {
  code: string;
  message: string;
  retryable: boolean;
}

/**
 * A task's stores, or a retryable STORE_CONFIG_INVALID: creating them reads the
 * process's environment (credentials, CA bundle, SSE-C key), validated at start
 * but changeable since. Retryable, because another process may have what this
 * one lacks; recorded like any failed attempt (status row, then failed and
 * dead-lettered past the retry limit) instead of failing the job unrecorded.
 */
function storesFor(cache: StoreCache, task: Task): TaskStores {
  try {
    return cache.for(task);
  } catch (err) {
    throw new ReplicationError('STORE_CONFIG_INVALID', `task ${task.id}: its stores cannot be created: ${(err as Error).message}`, true);
  }
}

function classify(err: unknown): Classified {
  if (err instanceof StorageError) return { code: err.code, message: err.message, retryable: err.retryable };
  if (err instanceof ReplicationError) return { code: err.code, message: err.message, retryable: err.retryable };
  const e = err as { code?: string; message?: string };
  // Database or unexpected errors: retry, they are usually transient.
  return { code: e.code ?? 'INTERNAL', message: e.message ?? String(err), retryable: true };
}

interface FetchedJob {
  id: string;
  data: ReplicateJob;
  retryCount: number;
  retryLimit: number;
  /** An upload intent exists for this job's key: a multipart create was interrupted (upload-intents.ts). */
  intentPending: boolean;
}

/** A run's result: the job's output, and the status row to record with its completion. */
interface RunResult {
  output: Record<string, unknown>;
  status?: StatusUpdate;
}

interface Running {
  job: FetchedJob;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * Takes up to $3 ready jobs of `queue`, at most one per key, skipping keys
 * that have a running job and tasks at their copy cap ($2), and leases them to
 * worker $1, all in one statement. Rows locked but not taken (a second job of a key in
 * the same batch) are released at the end of the statement, still queued.
 *
 * Cost (2026-11-22, EXPLAIN ANALYZE, 2,000 queued jobs, 16 running): the keys
 * that have a running job are read once per statement, into an array (an
 * InitPlan: one probe of pg-boss's stately index, ≈ 16 rows), and each queued
 * candidate is checked against it (NULL keys pass, as before). As a correlated
 * NOT EXISTS, the planner ran that check as a probe per queued job that
 * re-read every active job (1,984 × 16 rows: 6,119 buffer hits, 40 ms per
 * fetch); now 170 hits, ≈ 5 ms.
 *
 * Order: by start_after, the time a job became ready (a new job's creation
 * time; a retry's end of backoff), which pg-boss's own (name, start_after)
 * index of queued jobs (job_i5) gives, so the scan stops after the first $3
 * candidates. Ordered as pg-boss fetches (priority, created_on, id: no index
 * has that order) every queued job was read and sorted to take a few: O(queued),
 * 3.9 ms and 330 buffer hits per fetch with 2,000 queued, 0.5 ms of PostgreSQL
 * CPU per copied object in the copy bench (bench/README.md "## Copy").
 * BucketBridge sets no priorities; jobs ready at the same instant (one intake
 * batch) come in index order.
 *
 * The queue's name is a literal in the text, not a parameter: pgboss.job is
 * partitioned by queue name, and with a literal the plan is made for the one
 * partition, so PostgreSQL keeps a generic plan after five executions instead
 * of planning every fetch (with the name as $1 a generic plan kept every
 * partition, never looked cheaper, and each fetch was planned: 0.65 ms, as
 * much as running it). Copy bench (2,000 × 64 KiB, keys feed, pg_stat_statements):
 * 254 plannings for 254 fetches → 16–22 for 252–259, execution 0.98 → 0.55–0.84 ms per fetch,
 * PostgreSQL 0.91 → 0.56–0.64 CPU-s per run (single runs each).
 */
export function fetchSql(queue: string): string {
  if (!/^[\w.-]+$/.test(queue)) throw new Error(`not a queue name: ${queue}`);
  const name = `'${queue}'`;
  return `
WITH next AS (
  SELECT j.id, j.singleton_key FROM ${BOSS_SCHEMA}.job j
   WHERE j.name = ${name}
     AND j.state < 'active'
     AND j.start_after < now()
     AND NOT (COALESCE(j.data->>'taskId', '') = ANY($2::text[]))
     AND (j.singleton_key IS NULL OR NOT j.singleton_key = ANY (ARRAY(
       SELECT COALESCE(a.singleton_key, '') FROM ${BOSS_SCHEMA}.job a
        WHERE a.name = ${name} AND a.state = 'active' AND a.policy = 'stately')))
   ORDER BY j.start_after
   LIMIT $3
   FOR UPDATE SKIP LOCKED
), one_per_key AS (
  SELECT id, row_number() OVER (PARTITION BY COALESCE(singleton_key, id::text)) AS n FROM next
), started AS (
  UPDATE ${BOSS_SCHEMA}.job j
     SET state = 'active',
         started_on = now(),
         retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
    FROM one_per_key k
   WHERE j.name = ${name} AND j.id = k.id AND k.n = 1
  RETURNING j.id, j.data, j.retry_count, j.retry_limit
), leased AS (
  INSERT INTO bb_job_leases (job_id, worker_id, task_id, key)
  SELECT id, $1, COALESCE(data->>'taskId', ''), COALESCE(data->>'key', '') FROM started
  ON CONFLICT (job_id) DO UPDATE SET worker_id = EXCLUDED.worker_id, started_at = now()
)
SELECT id, data, retry_count AS "retryCount", retry_limit AS "retryLimit",
       EXISTS (SELECT 1 FROM bb_upload_intents i
                WHERE i.task_id = COALESCE(started.data->>'taskId', '') AND i.key = COALESCE(started.data->>'key', '')) AS "intentPending"
  FROM started`;
}

/** The fetch of the replication queue, as the workers run it ($1 worker, $2 saturated tasks, $3 limit). */
export const FETCH_SQL = fetchSql(QUEUES.replicate);

/**
 * Puts jobs ($2) leased to worker $3 back in the queue as they were before the
 * fetch: 'created', ready now, started_on cleared (so the next fetch does not
 * count a retry: FETCH_SQL), retry_count unchanged, and drops this worker's
 * leases on them. Used for jobs that never ran (waiting in the ready list at
 * shutdown, or taken by a fetch whose answer was lost) and for copies that
 * shutdown interrupted and that have unwound (nothing of theirs in flight, a
 * multipart upload recorded for resume): none of them failed, so handing them
 * back must not cost a retry and its backoff — with boss.fail() a key queued
 * across a few rolling restarts could be dead-lettered without ever having
 * had a whole attempt. A newer job of the same key
 * already queued (the stately policy allows one 'created' job per key) makes
 * the returned one redundant, since every job reconciles the key's current
 * state: it is completed as superseded instead. Only 'active' jobs are touched.
 */
export const REQUEUE_SQL = `
WITH mine AS (
  SELECT j.id, j.singleton_key FROM ${BOSS_SCHEMA}.job j
   WHERE j.name = $1 AND j.id = ANY($2::uuid[]) AND j.state = 'active'
   FOR UPDATE
), superseded AS (
  SELECT m.id FROM mine m
   WHERE m.singleton_key IS NOT NULL
     AND EXISTS (SELECT 1 FROM ${BOSS_SCHEMA}.job o
                  WHERE o.name = $1 AND o.singleton_key = m.singleton_key AND o.state = 'created' AND o.id <> m.id)
), requeued AS (
  UPDATE ${BOSS_SCHEMA}.job j
     SET state = 'created', started_on = NULL, start_after = now()
    FROM mine m
   WHERE j.name = $1 AND j.id = m.id AND NOT m.id IN (SELECT id FROM superseded)
  RETURNING j.id
), ended AS (
  UPDATE ${BOSS_SCHEMA}.job j
     SET state = 'completed', completed_on = now(), output = '{"superseded":"a newer job of the key was already queued"}'::jsonb
    FROM superseded s
   WHERE j.name = $1 AND j.id = s.id
  RETURNING j.id
), released AS (
  DELETE FROM bb_job_leases WHERE worker_id = $3 AND job_id = ANY($2::uuid[])
)
SELECT (SELECT count(*) FROM requeued)::int AS requeued, (SELECT count(*) FROM ended)::int AS superseded`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How long a finished job keeps trying to record its outcome while the database is away.
 * Giving up leaves the job 'active' under this live process's lease until it expires
 * (hours), so wait out any ordinary outage (a restart, a failover) instead.
 */
const SETTLE_PATIENCE_MS = 30 * 60_000;

/**
 * Jobs kept fetched ahead of the slots (see readyTarget): as many as keep a
 * fetched job waiting about this long on average before a slot takes it, at
 * least 1, at most the concurrency and MAX_READY. Until copies have been timed,
 * a quarter of the slots.
 */
const READY_WAIT_MS = 500;
const MAX_READY = 64;

/**
 * How many jobs to keep fetched (and leased) ahead of `concurrency` slots when
 * a slot is held `slotMs` on average (undefined: not measured yet).
 *
 * Fairness between processes: a ready job is leased, so no other process can
 * take it, even one with idle slots. The cost to the others is how long a job
 * waits here: a job leaves the ready list at the rate slots free up
 * (concurrency / slotMs), so a list of n waits n × slotMs / concurrency (Little);
 * bounding that by READY_WAIT_MS keeps the list at the concurrency for small
 * objects (where fetches per object are what PostgreSQL pays for) and at 1–2
 * jobs for copies of many seconds (where one fetch per object costs nothing
 * and hoarding would keep a big object from an idle process for a whole copy).
 */
export function readyTarget(concurrency: number, slotMs: number | undefined): number {
  const bound = Math.max(1, Math.min(concurrency, MAX_READY));
  if (slotMs === undefined) return Math.min(bound, Math.ceil(concurrency / 4));
  return Math.max(1, Math.min(bound, Math.floor((concurrency * READY_WAIT_MS) / Math.max(1, slotMs))));
}

/** Counters of the dispatch loop and the settle batcher (for tests; real counts, not estimates). */
export interface WorkerStats {
  /** Fetch statements run, and the jobs they returned. */
  fetches: number;
  fetchedJobs: number;
  /** Fetches that returned no job. */
  emptyFetches: number;
  /** Fetches made below the batch threshold because a slot was free with no job ready. */
  starvedFetches: number;
  /** Fetches that failed, and jobs handed back afterwards because their fetch's answer was lost (reclaimUnknownLeases). */
  failedFetches: number;
  reclaimedJobs: number;
  /** Jobs currently kept ready ahead of the slots (target), and ready now. */
  readyTarget: number;
  ready: number;
  settle: SettleBatchStats;
}

/** Idle upload buffers kept for reuse, at most; dropped when the process has had no job for a while. */
const POOLED_BYTES = 64 * 1024 * 1024;
const POOL_IDLE_CLEAR_MS = 10_000;

export class ReplicationWorkers {
  private readonly budget: ByteBudget;
  private readonly pool: BufferPool;
  private poolTimer?: NodeJS.Timeout;
  private readonly perTask = new Map<string, { max: number; sem: Semaphore }>();
  private readonly activeByTask = new Map<string, number>();
  private readonly inFlight = new Map<string, Running>();
  /**
   * Jobs fetched (and leased) ahead of a free slot, up to readyTarget(): a
   * finished copy's slot goes to one of them at once instead of waiting for
   * the next fetch's round trip, and the list is topped up in batches, not one
   * fetch per finished job. Handed back at shutdown.
   */
  private readonly ready: FetchedJob[] = [];
  /** Average time a job holds its slot (exponentially weighted), for readyTarget(); undefined until one finished. */
  private slotMs?: number;
  private readonly counts = { fetches: 0, fetchedJobs: 0, emptyFetches: 0, starvedFetches: 0, failedFetches: 0, reclaimedJobs: 0 };
  /** Writes the outcomes of successful jobs, many per statement. */
  private readonly settler: SettleBatcher;
  /** Jobs whose copy has ended and whose outcome is being recorded (settle), by id. */
  private readonly settling = new Map<string, Promise<void>>();
  /** A fetch failed: it may have leased jobs whose rows never reached us (reclaimUnknownLeases). */
  private leasesUnsure = false;
  /** Jobs handed back to the queue at shutdown: their late outcome must not complete or fail them again. */
  private readonly handedBack = new Set<string>();
  private dispatcher?: Promise<void>;
  /** The dispatcher's pause, ended early when a slot frees or work may have become fetchable. */
  private readonly pauses = new InterruptibleSleep();
  private stopping = false;

  /** Cleans up multipart uploads whose creation was interrupted (upload-intents.ts). */
  private readonly intents: UploadIntents;

  constructor(private readonly deps: WorkerDeps) {
    this.intents = new UploadIntents(deps.pool);
    this.budget = new ByteBudget(deps.memoryBudgetBytes);
    this.pool = new BufferPool(Math.min(POOLED_BYTES, deps.memoryBudgetBytes));
    this.settler = new SettleBatcher(deps.pool, {
      queue: QUEUES.replicate,
      workerId: deps.leases.workerId,
      patienceMs: SETTLE_PATIENCE_MS,
      // Copies still running will finish soon: their outcomes can share a commit.
      expectMore: () => this.inFlight.size > 0,
      onStatement: (batch, committed, next) => deps.onSettleStatement?.(batch.length, committed, next),
    });
  }

  async start(): Promise<void> {
    this.dispatcher = this.dispatch();
  }

  get activeJobs(): number {
    return this.inFlight.size;
  }

  /** Bytes currently held in upload buffers (for metrics and tests). */
  get bufferedBytes(): number {
    return this.budget.inUse;
  }

  stats(): WorkerStats {
    return { ...this.counts, readyTarget: this.readyAhead(), ready: this.ready.length, settle: this.settler.stats() };
  }

  /**
   * Look for jobs now instead of at the next poll: called when another process
   * (or this one) says ready jobs were queued (job-wakeups.ts, LISTEN/NOTIFY).
   * Cheap and idempotent: it only ends the dispatcher's current pause, so any
   * number of nudges while it sleeps make one fetch, and a nudge while every
   * slot is busy just finds nothing to fetch for. A nudge that arrives while the
   * dispatcher is already fetching is absorbed by that fetch; if the fetch began
   * before the jobs committed, they start at the next wake or poll
   * (`pollIntervalMs`), as without notifications.
   */
  nudge(): void {
    this.wakeAll();
  }

  /**
   * Stop fetching, give in-flight jobs `graceMs` to finish, then stop their
   * copies and hand them back to the queue so another process (or the next
   * start) picks them up; a multipart copy resumes from its finished parts.
   * Handing back costs no retry (REQUEUE_SQL), except for a copy still stuck
   * in a request 5 s after its abort (a failed attempt, see below).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    // Outcomes from now on are written at once, and a failed write is not retried.
    this.settler.stop();
    this.wakeAll();
    const waiting = this.ready.splice(0);
    if (waiting.length > 0) {
      await this.requeue(waiting.map((j) => j.id)).catch(async (err: unknown) => {
        // Then at the cost of a retry, as a failed attempt.
        this.deps.log.warn({ err }, 'could not put fetched jobs back unstarted; handing them back as failed attempts');
        await this.deps.boss.fail(QUEUES.replicate, waiting.map((j) => j.id)).catch((e: unknown) => {
          this.deps.log.error({ err: e }, 'could not hand fetched jobs back; they return when their lease is swept');
        });
      });
    }
    const deadline = Date.now() + graceMs;
    while ((this.inFlight.size > 0 || this.settling.size > 0) && Date.now() < deadline) await sleep(50);
    const leftovers = [...this.inFlight.values()];
    if (leftovers.length > 0) {
      this.deps.log.warn({ jobs: leftovers.length }, 'handing unfinished jobs back to the queue');
      for (const r of leftovers) {
        this.handedBack.add(r.job.id);
        r.abort.abort();
      }
      // Let the aborted copies unwind (they stop at the next request boundary). One that has unwound
      // has nothing in flight, so its job goes back ready at once without spending a retry; one
      // still busy (a request hanging) goes back as a failed attempt, whose retry backoff keeps
      // another process from starting it while its last request may still be on its way.
      const unwound = new Set<string>();
      await Promise.race([Promise.allSettled(leftovers.map((r) => r.done.then(() => unwound.add(r.job.id)))), sleep(5_000)]);
      const stuck = leftovers.filter((r) => !unwound.has(r.job.id)).map((r) => r.job.id);
      if (unwound.size > 0) {
        await this.requeue([...unwound]).catch((err: unknown) => {
          this.deps.log.warn({ err }, 'could not put interrupted jobs back in the queue; handing them back as failed attempts');
          stuck.push(...unwound);
        });
      }
      if (stuck.length > 0) {
        await this.deps.boss.fail(QUEUES.replicate, stuck).catch((err: unknown) => {
          this.deps.log.error({ err }, 'could not hand jobs back; they return when their lease is swept');
        });
      }
    }
    // Outcomes still being written (settle stops retrying once stopping).
    if (this.settling.size > 0) await Promise.race([Promise.allSettled([...this.settling.values()]), sleep(5_000)]);
    if (this.dispatcher) await Promise.race([this.dispatcher, sleep(1_000)]);
  }

  /** Put jobs back in the queue as they were before their fetch, without costing them a retry (REQUEUE_SQL). */
  private async requeue(ids: string[]): Promise<void> {
    const { rows } = await this.deps.pool.query<{ requeued: number; superseded: number }>(REQUEUE_SQL, [QUEUES.replicate, ids, this.deps.leases.workerId]);
    this.deps.log.info({ jobs: ids.length, requeued: rows[0]?.requeued, superseded: rows[0]?.superseded }, 'jobs put back in the queue without spending a retry');
  }

  private wakeAll(): void {
    this.pauses.interrupt();
  }

  /** Start fetched jobs while slots are free. */
  private startReady(): void {
    while (!this.stopping && this.ready.length > 0 && this.inFlight.size < this.deps.concurrency) void this.execute(this.ready.shift()!);
  }

  private readyAhead(): number {
    return readyTarget(this.deps.concurrency, this.slotMs);
  }

  /**
   * One fetch loop for the process: keep every slot busy and up to
   * readyTarget() jobs ready behind them, taking as many as are missing in one
   * statement; when none is ready, poll.
   *
   * Each fetch reads and sorts every queued job (bench/README.md "## Copy"),
   * so what it costs PostgreSQL per object is one fetch divided by the jobs it
   * takes. Fetching whenever one job is missing took ≈ 2.3 per fetch; now the
   * ready list is topped up only once at least half of it is missing, so a
   * fetch takes at least that many while the queue lasts. Never at the cost of
   * an idle slot: with a slot free and nothing ready, fetch at once.
   */
  private async dispatch(): Promise<void> {
    const pollMs = this.deps.pollIntervalMs ?? 500;
    while (!this.stopping) {
      this.startReady();
      const ahead = this.readyAhead();
      const want = this.deps.concurrency + ahead - this.inFlight.size - this.ready.length;
      // startReady() just ran: a free slot means nothing is ready.
      const starving = this.inFlight.size < this.deps.concurrency;
      if (want <= 0 || (!starving && want < Math.ceil(ahead / 2))) {
        await this.pauses.sleep(pollMs);
        continue;
      }
      let jobs: FetchedJob[] = [];
      try {
        if (this.leasesUnsure) await this.reclaimUnknownLeases();
        if (starving && want < Math.ceil(ahead / 2)) this.counts.starvedFetches++;
        jobs = await this.fetch(want);
      } catch (err) {
        // The fetch may have committed with its answer lost (connection cut): its jobs are then active under
        // our live lease, which the sweep never hands back; reclaimed before the next fetch.
        this.leasesUnsure = true;
        this.counts.failedFetches++;
        this.deps.log.warn({ err }, 'fetching replication jobs failed');
      }
      if (this.stopping) {
        if (jobs.length > 0) await this.deps.boss.fail(QUEUES.replicate, jobs.map((j) => j.id)).catch(() => {});
        break;
      }
      this.ready.push(...jobs);
      this.startReady();
      // A full batch means more may be waiting: go again at once.
      if (jobs.length < want) await this.pauses.sleep(pollMs);
    }
  }

  /**
   * Hand back jobs leased to this worker that it does not know of: a fetch
   * whose COMMIT happened but whose answer was lost left them 'active' under
   * the lease of a live process, so neither the lease sweep (dead workers
   * only) nor anyone else would touch them until pg-boss expires them hours
   * later. Wake-ups made this likelier (a fetch follows every enqueue within
   * milliseconds; chaos-db cut the database right then). The jobs known here
   * are read before and after the lease query, so one that settles meanwhile is
   * never mistaken for an orphan (and only 'active' jobs are put back). They
   * never ran here, so they go back unstarted, without costing a retry.
   */
  private async reclaimUnknownLeases(): Promise<void> {
    const knownIds = (): string[] => [...this.inFlight.keys(), ...this.ready.map((j) => j.id), ...this.settling.keys()];
    const known = new Set(knownIds());
    const { rows } = await this.deps.pool.query<{ job_id: string }>('SELECT job_id FROM bb_job_leases WHERE worker_id = $1', [this.deps.leases.workerId]);
    for (const id of knownIds()) known.add(id);
    const orphans = rows.map((r) => r.job_id).filter((id) => !known.has(id));
    if (orphans.length > 0) {
      await this.requeue(orphans);
      this.counts.reclaimedJobs += orphans.length;
      this.deps.log.warn({ jobs: orphans.length }, 'handed back jobs whose fetch answer was lost');
    }
    this.leasesUnsure = false;
  }

  /**
   * Tasks this process should not take more jobs of right now: running plus
   * ready jobs at the task's copy cap, so no slot is ever taken by a job that
   * would only wait for its task's limiter.
   *
   * A cap of at least the concurrency cannot bind in this process (its slots
   * bound the copies first), so it is not applied: counting ready jobs toward
   * it would only stop fetching ahead whenever every slot runs that task, which
   * with the defaults (16 slots, a cap of 16) is always, and made every fetch
   * take just the one or two jobs whose slots had freed.
   */
  private saturatedTasks(): string[] {
    const out: string[] = [];
    const counts = new Map(this.activeByTask);
    for (const job of this.ready) counts.set(job.data.taskId, (counts.get(job.data.taskId) ?? 0) + 1);
    for (const [taskId, n] of counts) {
      const max = this.deps.tasks.get(taskId)?.options.maxConcurrentCopies;
      if (max !== undefined && max < this.deps.concurrency && n >= max) out.push(taskId);
    }
    return out;
  }

  private async fetch(limit: number): Promise<FetchedJob[]> {
    try {
      const { rows } = await this.deps.pool.query<FetchedJob>({
        name: 'bb-replicate-fetch',
        text: FETCH_SQL,
        values: [this.deps.leases.workerId, this.saturatedTasks(), limit],
      });
      this.counts.fetches++;
      this.counts.fetchedJobs += rows.length;
      if (rows.length === 0) this.counts.emptyFetches++;
      return rows;
    } catch (err) {
      // Two processes took the two queued jobs of one key at once: the one-active-per-key index refused the second.
      if ((err as { code?: string }).code === '23505') return [];
      throw err;
    }
  }

  private async execute(job: FetchedJob): Promise<void> {
    const abort = new AbortController();
    const taskId = job.data.taskId;
    clearTimeout(this.poolTimer);
    this.activeByTask.set(taskId, (this.activeByTask.get(taskId) ?? 0) + 1);
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    this.inFlight.set(job.id, { job, abort, done });
    const slotStarted = Date.now();
    let outcome: ({ ok: true } & RunResult) | { ok: false; error: Classified };
    try {
      try {
        outcome = { ok: true, ...(await this.run(job, abort.signal)) };
      } catch (err) {
        outcome = { ok: false, error: classify(err) };
      }
    } finally {
      // The copy is over: its slot and its task's copy count go to the next job
      // while the outcome is written (a round trip the next copy need not wait for).
      // The job stays 'active' in the queue until then, so no other job of its key starts.
      const n = (this.activeByTask.get(taskId) ?? 1) - 1;
      if (n <= 0) this.activeByTask.delete(taskId);
      else this.activeByTask.set(taskId, n);
      const held = Date.now() - slotStarted;
      this.slotMs = this.slotMs === undefined ? held : this.slotMs + (held - this.slotMs) / 8;
      this.settling.set(job.id, done);
      this.inFlight.delete(job.id);
      this.startReady();
      if (this.inFlight.size === 0) {
        this.poolTimer = setTimeout(() => this.pool.clear(), POOL_IDLE_CLEAR_MS);
        this.poolTimer.unref();
      }
      this.wakeAll();
    }
    try {
      if (!this.handedBack.has(job.id)) await this.settle(job, outcome);
    } finally {
      this.settling.delete(job.id);
      this.handedBack.delete(job.id);
      settle();
      // A job of the same key may be fetchable now.
      this.wakeAll();
    }
  }

  /**
   * Drop the job's lease and complete or fail it in pg-boss, atomically (one
   * statement for success, shared with other jobs' successes by the settle
   * batcher; one transaction per job for failure): a failed job may be fetched
   * again the moment the failure commits, and its new lease must not be the
   * one we delete. Retried: a lost outcome would leave the job active until
   * its lease is swept or it expires.
   */
  private async settle(
    job: FetchedJob,
    outcome: ({ ok: true } & RunResult) | { ok: false; error: Classified },
  ): Promise<void> {
    if (outcome.ok) {
      try {
        const result = await this.settler.submit({
          jobId: job.id,
          taskId: job.data.taskId,
          key: job.data.key,
          output: outcome.output,
          ...(outcome.status ? { status: outcome.status } : {}),
        });
        if (result === 'lease-lost') this.deps.log.warn({ jobId: job.id }, 'job lease lost while running; outcome not recorded in the queue');
      } catch (err) {
        this.deps.log.error({ err, jobId: job.id }, 'could not record the job outcome; the job returns when its lease is swept or it expires');
      }
      return;
    }
    const giveUpAt = Date.now() + SETTLE_PATIENCE_MS;
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient | undefined;
      let broken: Error | undefined;
      try {
        client = await this.deps.pool.connect();
        const c = client;
        await c.query('BEGIN');
        const { rowCount } = await c.query('DELETE FROM bb_job_leases WHERE job_id = $1 AND worker_id = $2', [job.id, this.deps.leases.workerId]);
        if (rowCount === 0) {
          await c.query('ROLLBACK');
          // Our lease was swept (this process was taken for dead): the job already went back to the queue.
          this.deps.log.warn({ jobId: job.id }, 'job lease lost while running; outcome not recorded in the queue');
          return;
        }
        const db = { executeSql: (text: string, values?: unknown[]) => c.query(text, values) };
        // pg-boss's fail() decides retry (with backoff) or failed + dead letter.
        await this.deps.boss.fail(QUEUES.replicate, job.id, { code: outcome.error.code, message: outcome.error.message }, { db });
        await c.query('COMMIT');
        return;
      } catch (err) {
        if (client) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        if (Date.now() > giveUpAt || this.stopping) {
          this.deps.log.error({ err, jobId: job.id }, 'could not record the job outcome; the job returns when its lease is swept or it expires');
          return;
        }
        await sleep(Math.min(10_000, 250 * 2 ** attempt));
      } finally {
        client?.release(broken);
      }
    }
  }

  private limiterFor(taskId: string, max: number): Semaphore {
    const entry = this.perTask.get(taskId);
    if (entry && entry.max === max) return entry.sem;
    const sem = new Semaphore(max);
    this.perTask.set(taskId, { max, sem });
    return sem;
  }

  /** Queue a job for the key again, `startAfter` seconds from now (the key's one-queued-job policy keeps it single). */
  private requeueKey(data: ReplicateJob, startAfter: number): Promise<unknown> {
    return this.deps.boss.send(QUEUES.replicate, data, { singletonKey: replicateSingletonKey(data.taskId, data.key), startAfter });
  }

  /**
   * The key's upload intent outlived this job's sweep (upload-intents.ts) and
   * the job is the key's last for now (it succeeded, or failed for good): queue
   * a job for the key that sweeps again (and reconciles the key, as every job
   * of the key must: the one-queued-job policy folds into it any event for the
   * key that arrives meanwhile), after a delay doubling with each failed sweep
   * (up to an hour), so an upload orphaned by an interrupted create does not
   * wait for the key's next change. Stops after
   * MAX_FAILED_SWEEPS (a destination that keeps refusing to list or abort:
   * the operator must look; the key's next job still sweeps). Never throws.
   */
  private async followUpIntent(job: FetchedJob, failedSweeps: number, log: Logger): Promise<void> {
    if (failedSweeps >= MAX_FAILED_SWEEPS) {
      log.error(
        { failedSweeps },
        "gave up clearing multipart uploads left by an interrupted start; the key's next job will look again (a lifecycle rule aborting incomplete uploads covers the rest)",
      );
      return;
    }
    const base = this.deps.intentRecheckSeconds ?? DEFAULT_INTENT_RECHECK_SECONDS;
    const startAfter = Math.min(3600, base * 2 ** Math.max(0, failedSweeps - 1));
    try {
      // The job's data less a scan's hint (a job with an intent pending HEADs the destination anyway);
      // queuedAt is now: this is a cleanup, not a change waiting since the first enqueue.
      const { destinationAbsentAt: _hint, ...data } = job.data;
      await this.requeueKey({ ...data, queuedAt: new Date().toISOString() }, startAfter);
      log.info({ startAfter, failedSweeps }, 'queued a follow-up job to clear the multipart uploads left by an interrupted start');
    } catch (err) {
      log.warn({ err }, "could not queue a follow-up for the multipart uploads left by an interrupted start; the key's next job will look again");
    }
  }

  private async run(job: FetchedJob, signal: AbortSignal): Promise<RunResult> {
    const { taskId, key } = job.data;
    const log = this.deps.log.child({ jobId: job.id, taskId, key, attempt: job.retryCount + 1 });
    let task = this.deps.tasks.get(taskId);
    if (!task) {
      await this.deps.tasks.load();
      task = this.deps.tasks.get(taskId);
    }
    if (!task) {
      log.warn('task no longer exists; job dropped');
      return { output: { dropped: 'task does not exist' } };
    }
    if (task.paused) {
      await this.requeueKey(job.data, this.deps.pausedRecheckSeconds ?? 30);
      return { output: { deferred: 'task paused' } };
    }
    const lastAttempt = job.retryCount >= job.retryLimit;
    const current = task;
    return this.limiterFor(taskId, task.options.maxConcurrentCopies).run(async () => {
      if (signal.aborted) throw new Error('shutting down');
      const started = process.hrtime.bigint();
      let stores: TaskStores | undefined;
      let prepared: PreparedDestination | undefined;
      try {
        stores = storesFor(this.deps.stores, current);
        prepared = await this.intents.prepare(taskId, key, stores.destination, log, job.intentPending);
        const outcome = await reconcile(current, key, {
          source: stores.source,
          destination: prepared.store,
          budget: this.budget,
          pool: this.pool,
          uploads: this.deps.uploads,
          log,
          keepUploadOnError: !lastAttempt,
          signal,
          ...(this.deps.restoreRecheckSeconds !== undefined ? { restoreRecheckSeconds: this.deps.restoreRecheckSeconds } : {}),
        }, job);
        const durationMs = Number((process.hrtime.bigint() - started) / 1_000_000n);
        // Recorded with the job's completion (settle), in one statement.
        const status: StatusUpdate = {
          taskId,
          key,
          status: outcome.status,
          ...(outcome.bytes !== undefined ? { bytes: outcome.bytes } : {}),
          ...(outcome.sourceEtag !== undefined ? { sourceEtag: outcome.sourceEtag } : {}),
          ...(outcome.sourceCrc64 !== undefined ? { sourceCrc64: outcome.sourceCrc64 } : {}),
          ...(outcome.destinationEtag !== undefined ? { destinationEtag: outcome.destinationEtag } : {}),
          durationMs,
        };
        if (stores.markers && (outcome.status === 'completed' || outcome.status === 'in_sync')) await stores.markers.success(key);
        this.deps.metrics.objectDone(taskId, outcome.status, outcome.bytes ?? 0, durationMs / 1000);
        if (outcome.requeueAfterSeconds) {
          await this.requeueKey(job.data, outcome.requeueAfterSeconds);
        }
        // A failed attempt that will be retried sweeps again then; a success may be the key's last job for a long time.
        if (prepared.unresolved) await this.followUpIntent(job, prepared.failedSweeps, log);
        log.info(
          { status: outcome.status, bytes: outcome.bytes, durationMs, detail: outcome.detail, partsReused: outcome.partsReused },
          'reconciled',
        );
        return { output: { status: outcome.status, detail: outcome.detail }, status };
      } catch (err) {
        if (signal.aborted) throw err; // handed back at shutdown: the next run records the outcome
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
        if (final && stores?.markers) await stores.markers.failed(key);
        if (final) await this.deps.alerts?.keyFailed(current, key, { code: c.code, message: c.message, attempts: job.retryCount + 1 });
        // A key that failed for good may have no further job for a long time, like a success.
        if (final && prepared?.unresolved) await this.followUpIntent(job, prepared.failedSweeps, log);
        if (final && !c.retryable && !lastAttempt) {
          // Permanent: no point retrying. Dead-letter it ourselves and end the job.
          await this.deps.boss.send(QUEUES.replicateDead, { ...job.data, error: { code: c.code, message: c.message } });
          log.warn({ code: c.code, err }, 'replication failed permanently');
          return { output: { status: 'failed', code: c.code } };
        }
        log.warn({ code: c.code, final, err }, final ? 'replication failed after the last retry' : 'replication attempt failed; will retry');
        throw err;
      }
    });
  }
}
