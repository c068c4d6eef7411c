/**
 * Durable enqueue of replication jobs, keyed `task:objectKey` (see boss.ts).
 *
 * - `IntakeEnqueuer`: the signed intake's path. Group commit: one prepared
 *   statement (intake-statement.ts) queues the jobs and writes the ledger rows
 *   of many requests at once, and each request is answered only after the
 *   statement holding its rows has committed.
 * - `enqueueReplications`: everyone else (scans, operator retries, the CLI):
 *   one transaction per call, no ledger.
 */
import { randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import { withTransaction } from '../db/pool.js';
import { AppError } from '../errors.js';
import { QUEUES, replicateSingletonKey, type ReplicateJob } from './boss.js';
import { NOTIFY_REPLICATE_READY_SQL } from './job-wakeups.js';
import { buildIntakeStatement, type IntakeStatement, type StatementJob, type StatementRequest } from './intake-statement.js';

export interface EnqueueResult {
  accepted: number;
  duplicates: number;
  /** pg-boss ids of the jobs this call created. */
  jobIds: string[];
}

/** One job per distinct task:key; the first enqueue time travels with the job (lag counts from it). */
function uniqueJobs(jobs: ReplicateJob[], queuedAt: string): Map<string, ReplicateJob> {
  const unique = new Map<string, ReplicateJob>();
  for (const job of jobs) unique.set(replicateSingletonKey(job.taskId, job.key), { ...job, queuedAt: job.queuedAt ?? queuedAt });
  return unique;
}

/** Insert jobs in one transaction; keys already queued count as duplicates. */
export async function enqueueReplications(boss: PgBoss, pool: pg.Pool, jobs: ReplicateJob[]): Promise<EnqueueResult> {
  const inserts: PgBoss.JobInsert[] = [...uniqueJobs(jobs, new Date().toISOString())].map(([singletonKey, data]) => ({
    id: randomUUID(),
    name: QUEUES.replicate,
    data,
    singletonKey,
  }));
  if (inserts.length === 0) return { accepted: 0, duplicates: jobs.length, jobIds: [] };
  const jobIds = await withTransaction(pool, async (client) => {
    await boss.insert(inserts, { db: { executeSql: (text, values) => client.query(text, values) } });
    // pg-boss's insert returns no ids; a job that collided with a queued one is simply absent.
    const { rows } = await client.query<{ id: string }>('SELECT id FROM pgboss.job WHERE name = $1 AND id = ANY($2::uuid[])', [
      QUEUES.replicate,
      inserts.map((j) => j.id),
    ]);
    // Wake idle workers in every process (job-wakeups.ts). Inside the transaction: PostgreSQL
    // delivers it at commit, after the jobs are visible to the workers' fetch, and drops it on
    // rollback. Only when something was queued: keys already queued are fetchable anyway.
    if (rows.length > 0) await client.query(NOTIFY_REPLICATE_READY_SQL);
    return rows.map((r) => r.id);
  });
  return { accepted: jobIds.length, duplicates: jobs.length - jobIds.length, jobIds };
}

// ---------------------------------------------------------------- intake

export interface LedgerEntry {
  requestId: string;
  sender: string;
  taskId?: string;
  format: string;
  ignored: number;
  /** sha256 of the request signature: a replay has the same one. */
  signatureHash: Buffer;
}

export interface IntakeRequest {
  jobs: ReplicateJob[];
  entry: LedgerEntry;
  /** The answer to store in the ledger and send, given the counts that were committed. */
  answer(counts: { accepted: number; duplicates: number }): Record<string, unknown>;
}

export type IntakeOutcome =
  /** Committed by this request: its jobs are queued and its ledger row written. */
  | { replayed: false; accepted: number; duplicates: number; response: Record<string, unknown> }
  /** The signature was already accepted (earlier, or by a twin in flight): the first answer, nothing queued. */
  | { replayed: true; response: Record<string, unknown> };

export interface IntakeEnqueuerOptions {
  /** Requests per statement at most (each adds a few rows; keeps one statement's size bounded). */
  maxBatch?: number;
  /** Statements running at once: while they run, arriving requests gather into the next batch. */
  maxInFlight?: number;
  /** Called after each statement with its number of requests, for metrics. */
  onBatch?: (requests: number, committed: boolean) => void;
}

export interface IntakeBatchStats {
  /** Statements that committed, and the requests they carried. */
  batches: number;
  requests: number;
  maxBatch: number;
  /** Statements that failed (every request of theirs got the error), and their requests. */
  failedBatches: number;
  failedRequests: number;
  /** Statements run again after another process committed a twin signature, or a deadlock. */
  retries: number;
  /** Requests that joined an identical request already waiting or in flight here. */
  twins: number;
  /** Now: requests waiting for a statement, and requests inside running statements. */
  waiting: number;
  inFlight: number;
}

interface Waiter {
  resolve(outcome: IntakeOutcome): void;
  reject(err: unknown): void;
}

/** A request waiting for, or inside, a statement, with the identical requests that joined it. */
interface Pending {
  request: IntakeRequest;
  signature: string;
  waiter: Waiter;
  twins: Waiter[];
  queuedAt: string;
}

/**
 * Failures after which running the same batch again is right, because the
 * statement wrote nothing: a unique violation on the signature index (another
 * process committed a twin meanwhile; the next run sees it as a replay), and a
 * deadlock (two statements queueing overlapping keys in different orders; the
 * order in which PostgreSQL inserts a statement's rows is the plan's, not ours).
 */
function worthRetrying(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string };
  return (e.code === '23505' && e.constraint === 'bb_intake_ledger_signature') || e.code === '40P01';
}
const ATTEMPTS = 3;

export const SHUTTING_DOWN = 'SHUTTING_DOWN';

/**
 * Group commit for the intake. Each intake request used to cost seven round
 * trips (replay check, BEGIN, replay check, job INSERT, SELECT ids, ledger
 * INSERT, COMMIT), each statement planned anew; PostgreSQL spent more time
 * planning than executing, and each commit waited for its own WAL flush. Here
 * requests that arrive while statements are running wait and go together:
 * one named (prepared once per connection) statement, one round trip, one
 * commit for up to `maxBatch` requests. At concurrency 1 a batch is one
 * request and the cost is one round trip.
 *
 * Guarantees, per request:
 * - resolved only after the statement holding its rows committed; when that
 *   statement fails, every request of the batch (and its twins) is rejected
 *   with the error, and the statement wrote nothing (it is one transaction);
 * - a signature already in the ledger, or identical to a request waiting or in
 *   flight here, or committed by another process while this statement ran,
 *   resolves `replayed` with the first answer and queues nothing.
 *
 * One per service instance (it holds the batching state); close() on shutdown.
 */
export class IntakeEnqueuer {
  private readonly waiting: Pending[] = [];
  /** Every request waiting or in a statement, by signature: where an identical one joins. */
  private readonly bySignature = new Map<string, Pending>();
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private statementsInFlight = 0;
  private requestsInFlight = 0;
  private scheduled = false;
  private closed = false;
  private idle: (() => void)[] = [];
  private readonly counts = { batches: 0, requests: 0, maxBatch: 0, failedBatches: 0, failedRequests: 0, retries: 0, twins: 0 };

  /** Builds (and checks) the statement before the first request: a pg-boss it cannot work with fails start-up. */
  static async create(boss: PgBoss, pool: pg.Pool, options: IntakeEnqueuerOptions = {}): Promise<IntakeEnqueuer> {
    return new IntakeEnqueuer(pool, await buildIntakeStatement(boss), options);
  }

  private constructor(
    private readonly pool: pg.Pool,
    private readonly statement: IntakeStatement,
    private readonly options: IntakeEnqueuerOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.maxInFlight = options.maxInFlight ?? 2;
    if (!(this.maxBatch >= 1 && this.maxInFlight >= 1)) throw new Error('IntakeEnqueuer: maxBatch and maxInFlight must be at least 1');
  }

  /** Queue the jobs of one intake request and write its ledger row, or find the first answer to its signature. */
  submit(request: IntakeRequest): Promise<IntakeOutcome> {
    if (this.closed) return Promise.reject(new AppError(503, SHUTTING_DOWN, 'the service is shutting down; retry later'));
    const signature = request.entry.signatureHash.toString('hex');
    return new Promise<IntakeOutcome>((resolve, reject) => {
      const first = this.bySignature.get(signature);
      if (first) {
        // Same signature as a request not yet answered: only one may be ledgered; this one gets its answer.
        this.counts.twins++;
        first.twins.push({ resolve, reject });
        return;
      }
      const pending: Pending = { request, signature, waiter: { resolve, reject }, twins: [], queuedAt: new Date().toISOString() };
      this.bySignature.set(signature, pending);
      this.waiting.push(pending);
      this.schedule();
    });
  }

  /** The answer stored for this signature, if it was accepted before (one query; for paths that bypass submit). */
  async storedAnswer(signatureHash: Buffer): Promise<Record<string, unknown> | undefined> {
    const { rows } = await this.pool.query<{ response: Record<string, unknown> }>('SELECT response FROM bb_intake_ledger WHERE signature_hash = $1', [
      signatureHash,
    ]);
    return rows[0]?.response;
  }

  stats(): IntakeBatchStats {
    return { ...this.counts, waiting: this.waiting.length, inFlight: this.requestsInFlight };
  }

  /**
   * Refuse new requests (503 SHUTTING_DOWN) and resolve once every request
   * already submitted is answered: the waiting ones are still written (the
   * pool must stay open until this resolves). No timer is left behind.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.waiting.length === 0 && this.statementsInFlight === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /**
   * Start statements on the next turn of the event loop, so that requests
   * whose bodies are being handled in this turn join the same batch.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.statementsInFlight < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.statementsInFlight++;
      this.requestsInFlight += batch.length;
      void this.run(batch).finally(() => {
        this.statementsInFlight--;
        this.requestsInFlight -= batch.length;
        if (this.waiting.length > 0) this.schedule();
        else if (this.statementsInFlight === 0) for (const done of this.idle.splice(0)) done();
      });
    }
  }

  /** Commit one batch and answer its requests; never rejects. */
  private async run(batch: Pending[]): Promise<void> {
    let outcomes: IntakeOutcome[];
    try {
      outcomes = await this.commit(batch);
    } catch (err) {
      this.counts.failedBatches++;
      this.counts.failedRequests += batch.length;
      this.options.onBatch?.(batch.length, false);
      for (const p of batch) {
        this.bySignature.delete(p.signature);
        p.waiter.reject(err);
        for (const twin of p.twins) twin.reject(err);
      }
      return;
    }
    this.counts.batches++;
    this.counts.requests += batch.length;
    this.counts.maxBatch = Math.max(this.counts.maxBatch, batch.length);
    this.options.onBatch?.(batch.length, true);
    batch.forEach((p, i) => {
      // Forget the signature first: from now on the ledger row answers an identical request.
      this.bySignature.delete(p.signature);
      const outcome = outcomes[i]!;
      p.waiter.resolve(outcome);
      for (const twin of p.twins) twin.resolve({ replayed: true, response: outcome.response });
    });
  }

  private async commit(batch: Pending[]): Promise<IntakeOutcome[]> {
    const jobs: StatementJob[] = [];
    const requests: StatementRequest[] = batch.map((p, i) => {
      for (const [singletonKey, data] of uniqueJobs(p.request.jobs, p.queuedAt)) {
        jobs.push({ id: randomUUID(), name: QUEUES.replicate, data, singletonKey, request: i });
      }
      const e = p.request.entry;
      return {
        i,
        request_id: e.requestId,
        sender: e.sender,
        task_id: e.taskId ?? null,
        format: e.format,
        ignored: e.ignored,
        sig: e.signatureHash.toString('hex'),
        response: p.request.answer({ accepted: 0, duplicates: 0 }),
        njobs: p.request.jobs.length,
      };
    });
    const values = [JSON.stringify(jobs), ...this.statement.bossDefaults, JSON.stringify(requests)];
    let rows: { i: number; accepted: number; replay: Record<string, unknown> | null }[];
    for (let attempt = 1; ; attempt++) {
      try {
        // pool.query releases the connection with the error when the statement fails, and pg-pool
        // then destroys it: a broken connection (or one in an unknown state) never carries the
        // prepared statement into the next batch. A healthy one keeps it: prepared once per connection.
        ({ rows } = await this.pool.query({ name: this.statement.name, text: this.statement.text, values }));
        break;
      } catch (err) {
        // The statement wrote nothing; run it again and the twin is then seen in the ledger.
        if (attempt >= ATTEMPTS || !worthRetrying(err)) throw err;
        this.counts.retries++;
      }
    }
    const byIndex = new Map(rows.map((r) => [r.i, r]));
    return batch.map((p, i): IntakeOutcome => {
      const row = byIndex.get(i);
      if (!row) throw new Error(`intake statement returned no row for request ${i}`);
      if (row.replay) return { replayed: true, response: row.replay };
      const counts = { accepted: row.accepted, duplicates: p.request.jobs.length - row.accepted };
      return { replayed: false, ...counts, response: p.request.answer(counts) };
    });
  }
}
