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
import type { Logger } from 'pino';
import { withTransaction } from '../db/pool.js';
import { AppError } from '../errors.js';
import { QUEUES, replicateSingletonKey, type ReplicateJob } from './boss.js';
import { NOTIFY_REPLICATE_READY_SQL } from './job-wakeups.js';
import { buildIntakeStatements, type IntakeStatements, type StatementJob, type StatementRequest } from './intake-statement.js';

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
  /**
   * The wake-up notifications this enqueuer sends on the replicate channel are
   * at least this far apart (default 20 ms): see "Wake-ups" on IntakeEnqueuer.
   */
  notifyWindowMs?: number;
  /** Where a failed trailing notify is reported (warn once, then debug until one succeeds). */
  log?: Pick<Logger, 'warn' | 'debug'>;
}

export interface IntakeWakeStats {
  /** Committed statements that carried the notify (it notified if the statement queued a job). */
  inStatement: number;
  /** Standalone notifies sent after quiet statements committed, and those that failed. */
  trailing: number;
  trailingFailed: number;
  /** A trailing notify is due or being sent. */
  pending: boolean;
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
 * Wake-ups. Idle replication workers in every process are woken by a
 * notification on the replicate channel (job-wakeups.ts). Sent by every
 * statement, it would make every intake commit wait its turn: PostgreSQL
 * serialises the commits of notifying transactions (intake-statement.ts;
 * measured in isolation, 2–11 % of the statement rate; in the intake
 * benchmark within its run-to-run spread). So the notifications are
 * throttled to one per `notifyWindowMs` (W), with a leading and a trailing edge:
 * - leading: a statement that starts when this enqueuer has sent (or
 *   scheduled) no notify within the last W carries it (the `notifying`
 *   variant): delivered with its commit, no extra transaction; an isolated
 *   request costs exactly that;
 * - trailing: any other statement runs the `quiet` variant, and once it has
 *   committed having queued a job, one standalone `SELECT pg_notify(…)` is
 *   scheduled for the end of the window (W after the previous notify), after
 *   the commit by construction, so a worker it wakes sees the jobs. The quiet
 *   statements that commit before it fires share it; one that commits while it
 *   is being sent schedules the next one (that one might not cover it).
 * So no queued job is left unannounced by this enqueuer, and under load it
 * sends about one notification per W instead of one per statement, i.e. a
 * job waits at most about W longer for its wake-up. A trailing notify that
 * fails (a database blip between the commit and the notify) is logged and
 * dropped: workers still poll (500 ms), so it costs at most a poll interval,
 * never a job, like any lost notification (RELIABILITY.md, Job wake-ups).
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
  private readonly notifyWindowMs: number;
  /** When the last notify was sent or scheduled (a notifying statement started, a trailing one sent); performance.now(). */
  private lastNotifyAt = Number.NEGATIVE_INFINITY;
  /** The trailing notify, while it waits for the end of the window. */
  private trailingTimer?: NodeJS.Timeout;
  /** The trailing notify, while it is being sent. */
  private trailingSend?: Promise<void>;
  /** A quiet statement that queued jobs committed, and no notify issued after its commit has been sent yet. */
  private unannounced = false;
  /** The last trailing notify failed: the next failure logs at debug only. */
  private notifyFailing = false;
  private readonly wakeCounts = { inStatement: 0, trailing: 0, trailingFailed: 0 };

  /** Builds (and checks) the statements before the first request: a pg-boss they cannot work with fails start-up. */
  static async create(boss: PgBoss, pool: pg.Pool, options: IntakeEnqueuerOptions = {}): Promise<IntakeEnqueuer> {
    return new IntakeEnqueuer(pool, await buildIntakeStatements(boss), options);
  }

  private constructor(
    private readonly pool: pg.Pool,
    private readonly statements: IntakeStatements,
    private readonly options: IntakeEnqueuerOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.maxInFlight = options.maxInFlight ?? 2;
    this.notifyWindowMs = options.notifyWindowMs ?? 20;
    if (!(this.maxBatch >= 1 && this.maxInFlight >= 1)) throw new Error('IntakeEnqueuer: maxBatch and maxInFlight must be at least 1');
    if (!(this.notifyWindowMs >= 0)) throw new Error('IntakeEnqueuer: notifyWindowMs must not be negative');
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

  /** How the wake-up notifications were sent (see "Wake-ups" above). */
  wakeStats(): IntakeWakeStats {
    return { ...this.wakeCounts, pending: this.trailingTimer !== undefined || this.trailingSend !== undefined };
  }

  /**
   * Refuse new requests (503 SHUTTING_DOWN) and resolve once every request
   * already submitted is answered: the waiting ones are still written (the
   * pool must stay open until this resolves). A trailing notify still due for
   * committed jobs is sent at once rather than at the end of its window, and
   * awaited, so the workers of other processes hear of the last jobs without
   * waiting for their poll. No timer is left behind.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.waiting.length > 0 || this.statementsInFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    // No statement runs any more, so nothing can schedule another trailing notify after this loop.
    while (this.trailingTimer || this.trailingSend) {
      if (this.trailingSend) {
        await this.trailingSend;
      } else {
        clearTimeout(this.trailingTimer);
        this.trailingTimer = undefined;
        await this.sendTrailing();
      }
    }
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

  /**
   * The leading edge: whether the statement about to start carries the notify.
   * Yes when none was sent or scheduled within the window; it then counts as
   * sent now (if it fails, it queued nothing, and quiet statements never rely on
   * it: each schedules its own trailing notify).
   */
  private takeLeadingNotify(): boolean {
    if (this.trailingTimer || this.trailingSend) return false;
    const now = performance.now(); // monotonic: a clock step cannot stop the notifications
    if (now - this.lastNotifyAt < this.notifyWindowMs) return false;
    this.lastNotifyAt = now;
    return true;
  }

  /** A quiet statement committed having queued jobs: make sure a notify is sent after this point. */
  private announceLater(): void {
    this.unannounced = true;
    // Scheduled, or being sent: a notify being sent may have been issued before this commit, so
    // sendTrailing() checks `unannounced` again when it is done.
    if (this.trailingTimer || this.trailingSend) return;
    this.armTrailing();
  }

  private armTrailing(): void {
    const wait = this.lastNotifyAt + this.notifyWindowMs - performance.now();
    this.trailingTimer = setTimeout(() => {
      this.trailingTimer = undefined;
      // A timer armed late in a long turn of the event loop can fire a little early by
      // performance.now(); the window is a promise (notifications at least W apart), so wait it out.
      if (performance.now() - this.lastNotifyAt < this.notifyWindowMs) this.armTrailing();
      else void this.sendTrailing();
    }, Math.max(0, wait));
    // close() sends a due notify itself; a process that exits without close() loses it, and the
    // workers find the jobs at their next poll.
    this.trailingTimer.unref();
  }

  /** Send the trailing notify now, and schedule the next one if more quiet statements committed meanwhile. Never rejects. */
  private sendTrailing(): Promise<void> {
    this.unannounced = false;
    this.lastNotifyAt = performance.now();
    const send = (async () => {
      try {
        // Its own implicit transaction on any pooled connection; issued after the commits it
        // announces were acknowledged, so delivered after them.
        await this.pool.query(NOTIFY_REPLICATE_READY_SQL);
        this.wakeCounts.trailing++;
        this.notifyFailing = false;
      } catch (err) {
        this.wakeCounts.trailingFailed++;
        const message = 'intake: the trailing job wake-up notify failed; workers find the jobs at their next poll';
        if (this.notifyFailing) this.options.log?.debug({ err }, message);
        else this.options.log?.warn({ err }, message);
        this.notifyFailing = true;
      }
    })();
    this.trailingSend = send.finally(() => {
      this.trailingSend = undefined;
      // Quiet statements that committed while it was on its way: this one may have been issued
      // before their commit, so they get the next one (at the end of the next window).
      if (this.unannounced && !this.trailingTimer) this.armTrailing();
    });
    return this.trailingSend;
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
    // Decided once per batch: a retry runs the same variant (the failed run sent nothing).
    const notify = this.takeLeadingNotify();
    const statement = notify ? this.statements.notifying : this.statements.quiet;
    const values = [JSON.stringify(jobs), ...statement.bossDefaults, JSON.stringify(requests)];
    let rows: { i: number; accepted: number; replay: Record<string, unknown> | null }[];
    for (let attempt = 1; ; attempt++) {
      try {
        // pool.query releases the connection with the error when the statement fails, and pg-pool
        // then destroys it: a broken connection (or one in an unknown state) never carries the
        // prepared statement into the next batch. A healthy one keeps it: prepared once per
        // connection, each variant under its own name.
        ({ rows } = await this.pool.query({ name: statement.name, text: statement.text, values }));
        break;
      } catch (err) {
        // The statement wrote nothing; run it again and the twin is then seen in the ledger.
        if (attempt >= ATTEMPTS || !worthRetrying(err)) throw err;
        this.counts.retries++;
      }
    }
    // Committed. Before anything else can throw: the jobs are queued whatever happens to the answers.
    if (notify) this.wakeCounts.inStatement++;
    else if (rows.some((r) => r.accepted > 0)) this.announceLater();
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
