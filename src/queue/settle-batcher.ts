/**
 * Group commit of successful replication jobs (see ReplicationWorkers.settle).
 *
 * A success used to be one statement per job: the key's status row, the drop
 * of the job's lease and the job's completion, each execution planned anew
 * and each its own commit (bench/README.md "## Copy": 2,000 executions per
 * 2,000 objects, more time planning than executing). Here the outcomes of
 * jobs that finish close together are written by ONE statement (SETTLE_SQL):
 * the outcomes arrive as parallel arrays, so the text never changes and is
 * prepared once per connection, whatever the batch size.
 *
 * How a batch forms: outcomes wait while `maxInFlight` statements run, and
 * for at most `lingerMs` while other copies are still running (they will
 * finish soon and can share the commit; the job's slot is already free, so
 * the wait costs no copy time, only the completion's latency). With nothing
 * else running, an outcome is written at once.
 *
 * Guarantees, per outcome:
 * - its promise resolves only after the statement holding its row committed:
 *   'completed' (the job was ours and active, and is now completed, with the
 *   status row written in the same transaction) or 'lease-lost' (our lease
 *   was gone, e.g. swept while this process stalled: the status row is still
 *   written, as the single-job statement did, and the job is left alone);
 * - two outcomes of one (task, key) are never in one statement (ON CONFLICT DO
 *   UPDATE cannot touch a row twice) nor in two statements at once: the later
 *   one waits until the earlier one's statement has ended, so a key's rows
 *   are written in the order its outcomes arrived;
 * - a failed statement wrote nothing (one implicit transaction) and the whole
 *   batch runs again with backoff, for up to `patienceMs` after its oldest
 *   outcome arrived (a job whose completion is never written stays active
 *   under a live lease until pg-boss expires it, hours later); after stop(),
 *   a failure is final. A failure that depends on the rows (data, constraint
 *   or SQL errors, not connection trouble) splits the batch: each outcome is
 *   then retried on its own, outside the in-flight limit, so one bad row can
 *   neither hold back nor block the others;
 * - rejected only when it gave up (patience exhausted, or stopping): the job
 *   then returns when its lease is swept or pg-boss expires it.
 */
import type pg from 'pg';
import { STATUS_COLUMN_TYPES, statusColumns, statusUpsertFrom, type StatusUpdate } from '../db/object-status-repo.js';

/** pg-boss's schema (queue/boss.ts). */
const BOSS_SCHEMA = 'pgboss';

export interface SuccessOutcome {
  jobId: string;
  taskId: string;
  key: string;
  /** The job's output (pgboss.job.output). */
  output: Record<string, unknown>;
  /** The key's status row, written with the completion; absent for jobs that record none (task gone, task paused). */
  status?: StatusUpdate;
}

export type SettleResult = 'completed' | 'lease-lost';

export interface SettleBatcherOptions {
  /** The replicate queue (pgboss.job.name) and our worker id (bb_job_leases.worker_id). */
  queue: string;
  workerId: string;
  /** Outcomes per statement at most. Default 128. */
  maxBatch?: number;
  /** Statements running at once (each holds one connection); while they run, outcomes gather. Default 2. */
  maxInFlight?: number;
  /** How long an outcome may wait for others while `expectMore()` says more will come. Default 20 ms. */
  lingerMs?: number;
  /** Whether more outcomes are on their way (copies running): only then is it worth lingering. */
  expectMore?: () => boolean;
  /** How long a failing batch keeps trying, from its oldest outcome's arrival. Default 30 minutes. */
  patienceMs?: number;
  /**
   * Called after every attempt of a statement, with the jobs it carried; for a
   * failed attempt, also with what follows it (SettleFailureAction). For metrics.
   */
  onStatement?: (batch: readonly SuccessOutcome[], committed: boolean, next?: SettleFailureAction) => void;
}

/**
 * What follows a failed statement: 'retry' (the same batch runs again after a
 * backoff), 'split' (a row-dependent failure: each outcome then runs in a
 * statement of its own) or 'give_up' (patience exhausted, or stopping: the
 * batch's outcomes are rejected and their completions are not written).
 */
export const SETTLE_FAILURE_ACTIONS = ['retry', 'split', 'give_up'] as const;
export type SettleFailureAction = (typeof SETTLE_FAILURE_ACTIONS)[number];

export interface SettleBatchStats {
  /** Statements that committed, and the outcomes they carried. */
  statements: number;
  outcomes: number;
  maxBatch: number;
  /** Outcomes committed whose lease was gone (job not completed by us). */
  leaseLost: number;
  /** Statement attempts that failed; of those, how many were run again. */
  failedStatements: number;
  retries: number;
  /** Outcomes moved to a statement of their own after a row-dependent failure of their batch. */
  isolated: number;
  /** Outcomes held back at least once because an outcome of the same key was in the batch being formed or in a running statement. */
  deferred: number;
  /** Outcomes given up (rejected). */
  gaveUp: number;
  /** Now: outcomes waiting for a statement, and outcomes inside running statements. */
  waiting: number;
  inFlight: number;
}

const COLUMNS: readonly [string, string][] = [['job_id', 'uuid'], ['output', 'jsonb'], ...STATUS_COLUMN_TYPES];

/**
 * The statement: $1 queue, $2 worker id, $3… one array per column of COLUMNS.
 *
 *   WITH input  AS (unnest of the arrays: one row per outcome)
 *        status AS (INSERT … ON CONFLICT DO UPDATE of bb_object_status, rows that have a status)
 *        lease  AS (DELETE our leases of these jobs RETURNING job id and output)
 *   UPDATE pgboss.job … completed, for the jobs whose lease we dropped and that are active
 *   RETURNING the completed job ids
 *
 * Per row this is what the single-job statement did (it is still what a batch
 * of one does): the status upsert is a CTE, so it runs whether or not the
 * lease is still ours, as a separate record would; the job is completed
 * (what pg-boss's complete() does) only while our lease exists and the job is
 * active, so a job swept back to the queue, or handed back at shutdown, is
 * never completed by a late outcome. Data-modifying CTEs always run to
 * completion and everything commits together.
 *
 * The jobs are found by `id = ANY(ARRAY(SELECT … FROM lease))`, not by a join
 * with `lease`: one index scan of the job's primary key (name, id) for the
 * whole batch, in a custom and in a generic plan alike, so a queue partition
 * that grows (pg-boss keeps completed jobs for days) is never scanned. As a
 * join, the generic plan probed the index once per lease row with the whole
 * id array (64 rows: 3,921 buffer hits instead of ≈ 300). Each job's output
 * is then looked up in `lease` (in memory, a few dozen rows).
 * test/replication-settle-batch.test.ts checks both plan kinds.
 */
export const SETTLE_SQL = `
WITH input AS (
  SELECT * FROM unnest(${COLUMNS.map(([, type], i) => `$${i + 3}::${type}[]`).join(', ')})
    AS r(${COLUMNS.map(([name]) => name).join(', ')})
), status AS (
  ${statusUpsertFrom('(SELECT * FROM input WHERE status IS NOT NULL)')}
  RETURNING 1
), lease AS (
  DELETE FROM bb_job_leases l USING input r
   WHERE l.job_id = r.job_id AND l.worker_id = $2
  RETURNING l.job_id, r.output
)
UPDATE ${BOSS_SCHEMA}.job j
   SET completed_on = now(), state = 'completed', output = (SELECT lease.output FROM lease WHERE lease.job_id = j.id)
 WHERE j.name = $1 AND j.id = ANY (ARRAY(SELECT job_id FROM lease)) AND j.state = 'active'
RETURNING j.id`;

/** Fixed: the statement is parsed and prepared once per connection. */
export const SETTLE_STATEMENT_NAME = 'bb-replicate-settle-batch';

/**
 * Failures caused by the rows themselves, which running the same batch again
 * cannot cure: cardinality (21), data exceptions (22), integrity constraints
 * (23), syntax or access (42). Anything else (connection lost, server shutting
 * down or out of resources, deadlock, serialization, lock or statement
 * timeouts) says nothing about the rows: the batch runs again as it is.
 */
function rowDependent(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(21|22|23|42)[0-9A-Z]{3}$/.test(code);
}

interface Entry {
  outcome: SuccessOutcome;
  /** JSON of the output, made at submit so a bad value fails its own submit, not a batch. */
  output: string;
  /** (task, key) identity. */
  id: string;
  queuedAt: number;
  giveUpAt: number;
  deferred: boolean;
  resolve(r: SettleResult): void;
  reject(err: unknown): void;
}

export class SettleBatcher {
  private readonly waiting: Entry[] = [];
  /** Keys inside running statements (counted or isolated): outcomes of these keys wait. */
  private readonly busyKeys = new Set<string>();
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly lingerMs: number;
  private readonly patienceMs: number;
  private statementsInFlight = 0;
  private outcomesInFlight = 0;
  private scheduled = false;
  private lingerTimer?: NodeJS.Timeout;
  private stopping = false;
  /** Backoff sleeps, woken early by stop() so a last attempt runs at once. */
  private readonly sleepers = new Set<() => void>();
  private readonly counts = { statements: 0, outcomes: 0, maxBatch: 0, leaseLost: 0, failedStatements: 0, retries: 0, isolated: 0, deferred: 0, gaveUp: 0 };

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: SettleBatcherOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 128;
    this.maxInFlight = options.maxInFlight ?? 2;
    this.lingerMs = options.lingerMs ?? 20;
    this.patienceMs = options.patienceMs ?? 30 * 60_000;
    if (!(this.maxBatch >= 1 && this.maxInFlight >= 1 && this.lingerMs >= 0)) throw new Error('SettleBatcher: maxBatch and maxInFlight must be at least 1, lingerMs at least 0');
  }

  /** Write a successful job's outcome; resolves once committed (see the class comment), rejects when given up. */
  submit(outcome: SuccessOutcome): Promise<SettleResult> {
    return new Promise<SettleResult>((resolve, reject) => {
      const now = Date.now();
      this.waiting.push({
        outcome,
        output: JSON.stringify(outcome.output),
        id: `${outcome.taskId}\u0000${outcome.key}`,
        queuedAt: now,
        giveUpAt: now + this.patienceMs,
        deferred: false,
        resolve,
        reject,
      });
      this.schedule();
    });
  }

  /**
   * Shutdown: outcomes already submitted, and any submitted from now on, are
   * written at once (no lingering) and a failed statement is not retried.
   */
  stop(): void {
    this.stopping = true;
    for (const wake of [...this.sleepers]) wake();
    this.schedule();
  }

  stats(): SettleBatchStats {
    return { ...this.counts, waiting: this.waiting.length, inFlight: this.outcomesInFlight };
  }

  /** Form batches on the next turn of the event loop, so outcomes of copies that end in this turn join. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    while (this.statementsInFlight < this.maxInFlight && this.waiting.length > 0) {
      const wait = this.lingerLeft();
      if (wait > 0) {
        this.lingerTimer = setTimeout(() => this.pump(), wait);
        return;
      }
      const batch = this.take();
      // Every waiting outcome's key is in a running statement: pumped again when that ends.
      if (batch.length === 0) return;
      this.statementsInFlight++;
      void this.run(batch, false).finally(() => {
        this.statementsInFlight--;
        this.pump();
      });
    }
  }

  /** Milliseconds the next batch should still wait for more outcomes (0: go now). */
  private lingerLeft(): number {
    if (this.stopping || this.waiting.length >= this.maxBatch || !(this.options.expectMore?.() ?? false)) return 0;
    return Math.max(0, this.waiting[0]!.queuedAt + this.lingerMs - Date.now());
  }

  /**
   * The next batch, in arrival order: at most maxBatch outcomes, one per key,
   * none of a key inside a running statement. The rest keep their place.
   */
  private take(): Entry[] {
    const batch: Entry[] = [];
    const keys = new Set<string>();
    const rest: Entry[] = [];
    for (const e of this.waiting) {
      const blocked = this.busyKeys.has(e.id) || keys.has(e.id);
      if (batch.length < this.maxBatch && !blocked) {
        batch.push(e);
        keys.add(e.id);
        continue;
      }
      if (blocked && !e.deferred) {
        e.deferred = true;
        this.counts.deferred++;
      }
      rest.push(e);
    }
    this.waiting.splice(0, this.waiting.length, ...rest);
    for (const id of keys) this.busyKeys.add(id);
    return batch;
  }

  /**
   * Run one batch until it commits or gives up; never rejects. `isolated`: a
   * single outcome split off a batch, run outside the in-flight limit.
   */
  private async run(batch: Entry[], isolated: boolean): Promise<void> {
    this.outcomesInFlight += batch.length;
    let handedOver = false;
    try {
      for (let attempt = 1; ; attempt++) {
        let completed: Set<string>;
        try {
          completed = await this.execute(batch);
        } catch (err) {
          this.counts.failedStatements++;
          const next: SettleFailureAction =
            // Retrying the same rows would fail the same way: find the culprit by writing each on its own.
            !isolated && batch.length > 1 && rowDependent(err)
              ? 'split'
              : this.stopping || Date.now() > Math.min(...batch.map((e) => e.giveUpAt))
                ? 'give_up'
                : 'retry';
          this.options.onStatement?.(
            batch.map((e) => e.outcome),
            false,
            next,
          );
          if (next === 'split') {
            handedOver = true;
            this.counts.isolated += batch.length;
            for (const e of batch) void this.run([e], true).finally(() => this.pump());
            return;
          }
          if (next === 'give_up') {
            this.counts.gaveUp += batch.length;
            for (const e of batch) e.reject(err);
            return;
          }
          this.counts.retries++;
          await this.backoff(Math.min(10_000, 250 * 2 ** attempt));
          continue;
        }
        this.counts.statements++;
        this.counts.outcomes += batch.length;
        this.counts.maxBatch = Math.max(this.counts.maxBatch, batch.length);
        this.options.onStatement?.(
          batch.map((e) => e.outcome),
          true,
        );
        for (const e of batch) {
          const ok = completed.has(e.outcome.jobId);
          if (!ok) this.counts.leaseLost++;
          e.resolve(ok ? 'completed' : 'lease-lost');
        }
        return;
      }
    } finally {
      this.outcomesInFlight -= batch.length;
      // After a split, the isolated runs own these keys.
      if (!handedOver) for (const e of batch) this.busyKeys.delete(e.id);
    }
  }

  private async execute(batch: Entry[]): Promise<Set<string>> {
    const columns = statusColumns(batch.map((e) => e.outcome.status));
    const values: unknown[] = [
      this.options.queue,
      this.options.workerId,
      batch.map((e) => e.outcome.jobId),
      batch.map((e) => e.output),
      ...STATUS_COLUMN_TYPES.map(([name]) => columns[name]),
    ];
    // pool.query releases a connection that failed with the error, and pg-pool then destroys it: a
    // broken connection never carries the prepared statement into the next attempt; a healthy one keeps it.
    const { rows } = await this.pool.query<{ id: string }>({ name: SETTLE_STATEMENT_NAME, text: SETTLE_SQL, values });
    return new Set(rows.map((r) => r.id));
  }

  private backoff(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }
}
