/**
 * The one SQL statement that commits a batch of intake requests (see
 * IntakeEnqueuer in enqueue.ts): in a single round trip and a single implicit
 * transaction it skips requests already in the ledger, queues the jobs of the
 * others through pg-boss's own job INSERT, and writes their ledger rows with
 * the counts it committed.
 *
 *   WITH req   AS (one row per request: ledger fields, signature, job count,
 *                   and the stored answer to its signature if any: one index probe),
 *        fresh AS (requests with no stored answer),
 *        j     AS (<pg-boss's job INSERT, fed only the jobs of fresh requests> RETURNING id),
 *        n     AS (jobs actually inserted, per request),
 *        l     AS (INSERT INTO bb_intake_ledger: one row per fresh request, no ON CONFLICT),
 *        w     AS (pg_notify on the replicate channel, once, if j inserted anything;
 *                  only in the `notifying` variant, see below)
 *   SELECT per request: accepted count, and the stored answer when it is a replay
 *
 * It comes in two variants, built from one text and one capture of pg-boss's
 * SQL: `notifying` (with `w`) and `quiet` (without it). The enqueuer throttles
 * the wake-up notifications (IntakeEnqueuer, `notifyWindowMs`): a statement
 * carries the notify only when the enqueuer sent none within the window, and
 * the quiet statements in between are announced by one trailing standalone
 * notify after they committed.
 *
 * The ledger INSERT deliberately has no ON CONFLICT: if another process
 * commits the same signature while this statement runs, the statement fails
 * with a unique violation and writes nothing (the caller runs the batch again
 * and then sees that request as a replay). With DO NOTHING instead, the jobs of
 * that request would already be inserted by the same statement, and a request
 * answered "replayed" would have queued something.
 */
import { createHash } from 'node:crypto';
import type PgBoss from 'pg-boss';
import { REPLICATE_READY_CHANNEL } from './job-wakeups.js';

/** Where pg-boss feeds its job rows into its INSERT; the rewrite hooks in here. */
const RECORDSET = 'json_to_recordset($1)';

/** The number of parameters pg-boss 10's insert passes: its job list and five queue defaults. */
const BOSS_PARAMS = 6;

export interface IntakeStatement {
  /**
   * Name of the prepared statement, derived from its text: stable across
   * batches and processes, and two different texts can never share a name
   * (node-postgres refuses to reuse a name for a different text).
   */
  name: string;
  text: string;
  /** pg-boss's parameters after the job list ($2…$6: its configured defaults), captured once. */
  bossDefaults: unknown[];
}

/** Ledger fields of one request, as the statement reads them from its last parameter. */
export interface StatementRequest {
  /** Index of the request in the batch; each job names it in `request`. */
  i: number;
  request_id: string;
  sender: string;
  task_id: string | null;
  format: string;
  ignored: number;
  /** Hex of the signature hash (JSON has no bytes). */
  sig: string;
  /** The answer with placeholder counts; the statement stores it with the committed ones. */
  response: Record<string, unknown>;
  /** Keys in the request, repeats included: duplicates = njobs − accepted. */
  njobs: number;
}

/** A pg-boss job row plus the index of the request it belongs to (pg-boss ignores unknown fields). */
export type StatementJob = PgBoss.JobInsert & { id: string; request: number };

/** The two variants of the statement; they differ only in the `w` CTE, so they take the same parameters and return the same rows. */
export interface IntakeStatements {
  /** Runs pg_notify(REPLICATE_READY_CHANNEL) in `w` when it queued a job: delivered when it commits. */
  notifying: IntakeStatement;
  /** The same statement without `w`: its jobs must be announced by a notify sent after it committed. */
  quiet: IntakeStatement;
}

/**
 * Builds both variants of the statement around the job INSERT that the
 * installed pg-boss would run for `boss.insert()`.
 *
 * Why capture pg-boss's SQL instead of writing our own INSERT INTO pgboss.job:
 * that statement is where pg-boss applies the queue's policy (stately singleton
 * keys through the `policy` column and its unique indexes, retry limit, delay
 * and backoff, expiry, retention, dead letter); a copy in this repository would
 * silently drift from the pg-boss version in node_modules on the next upgrade.
 * Capturing it (through a stand-in `executeSql`; nothing reaches the database)
 * reuses exactly the installed version's semantics. Both variants are built
 * from the one capture. The rewrite depends on the
 * statement's shape, so that shape is checked here, once, at startup: if a
 * pg-boss upgrade changes it the service refuses to start, instead of failing
 * (or, worse, queueing wrongly) request by request.
 */
export async function buildIntakeStatements(boss: PgBoss): Promise<IntakeStatements> {
  let captured: { text: string; values: unknown[] } | undefined;
  await boss.insert([], {
    db: {
      executeSql: async (text: string, values: unknown[]) => {
        captured = { text, values: values ?? [] };
        return { rows: [] };
      },
    },
  });
  const problem = shapeProblem(captured);
  if (problem || !captured) {
    throw new Error(`intake: pg-boss's job INSERT has an unexpected shape (${problem ?? 'not captured'}); the batched intake statement cannot be built for this pg-boss version`);
  }
  const jobInsert = captured.text.replace(RECORDSET, JOBS_OF_FRESH_REQUESTS).trimEnd();
  const bossDefaults = captured.values.slice(1);
  const variant = (notify: boolean): IntakeStatement => {
    const text = statementText(jobInsert, notify);
    // Each variant is prepared under its own name (once per connection), as node-postgres requires.
    const name = `bb_intake_batch_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
    return { name, text, bossDefaults };
  };
  return { notifying: variant(true), quiet: variant(false) };
}

/** The job list pg-boss's INSERT reads instead of all of $1: only the jobs of requests without a stored answer. */
const JOBS_OF_FRESH_REQUESTS =
  `json_to_recordset((SELECT coalesce(json_agg(x.job), '[]'::json) FROM json_array_elements($1::json) AS x(job) ` +
  `WHERE (x.job->>'request')::int IN (SELECT i FROM fresh)))`;

/** The statement's text around pg-boss's (rewritten) job INSERT, with or without the `w` CTE that notifies. */
function statementText(jobInsert: string, notify: boolean): string {
  const requestParam = `$${BOSS_PARAMS + 1}`;
  // The ledger is read once per request, in `req`, by a correlated scalar subquery: a probe of the
  // unique signature index per request (≈ 3 buffer hits), for whichever plan is cached. As joins (a
  // NOT EXISTS in `fresh` and a LEFT JOIN in the final SELECT, until 2026-11-22), the ledger lookups
  // were a plan choice, and the choice went wrong: after five executions a prepared statement runs a
  // cached generic plan, planned once per connection; planned while the ledger was young (never
  // analyzed: estimated at 320 rows) and sized for json_to_recordset's fixed 100-row estimate, it
  // hashed the requests and SEQ-SCANNED THE WHOLE LEDGER, twice per statement, for as long as the
  // connection lived, while the ledger grew by every accepted request. With 20,000 ledger rows the
  // two scans were 11.5 of the 14.0 ms of a 1-request execution and 7.2 of 8.4 ms of a 20-request
  // one (EXPLAIN ANALYZE); per statement, commit included, 11.2 → 1.0 ms and 10.0 → 2.9 ms with the
  // probe. (plan_cache_mode = force_custom_plan also cures it, for 0.4–1.1 ms of planning per
  // statement, which at one request per statement is most of its cost.) Residual: a generic plan
  // made right after an ANALYZE of a ledger of under ≈ 200 rows (a few pages, where a seq scan costs
  // less than one index probe) still scans it, until the ledger's next autoanalyze (10 % growth)
  // invalidates that plan.
  //
  // One read also serves both uses, `fresh` (no stored answer) and the replay answer, and the two
  // cannot disagree: every part of one statement sees the same snapshot, the one the ledger INSERT's
  // unique index check goes beyond (see the note on the missing ON CONFLICT above).
  // `w` wakes idle workers in every process (job-wakeups.ts): one notification per statement, and
  // only when it queued a job (j returned a row). The statement is its own transaction, so the
  // notification is delivered when it commits, after the jobs are visible, and never when it
  // fails (a failed batch, a twin's unique violation: nothing was queued). A CTE that nothing reads
  // is never run, hence the cross join with its one-row count. Cost: 0.01–0.02 ms per statement on
  // one connection; but PostgreSQL serialises the commits of notifying transactions (a cluster-wide
  // lock held until each commit is flushed), so two statements in flight cannot commit at the same
  // instant: 2–11 % of the statement rate with two connections committing back to back
  // (RELIABILITY.md, Limits); in the intake benchmark at c=64 (≈ 320 statements a second) the
  // difference was within the ±5 % spread between runs (bench/README.md, Intake, session 4).
  //
  // Hence the `quiet` variant, the same text without `w` (and without the cross join): the
  // enqueuer (IntakeEnqueuer, notifyWindowMs) sends the notify in a statement only when it sent
  // none within the last window (the leading edge: an isolated request still wakes the workers with
  // its own commit, no extra transaction), and runs the quiet variant otherwise, announcing those
  // jobs with one standalone `SELECT pg_notify(…)` after they committed (the trailing edge). Under
  // load that is about one notifying transaction per window instead of one per statement.
  const wakeCte = `,
         w AS (
           SELECT pg_notify('${REPLICATE_READY_CHANNEL}', '') FROM (SELECT 1 FROM j LIMIT 1) one)`;
  const wakeJoin = `
     CROSS JOIN (SELECT count(*) FROM w) wake`;
  return `
    WITH req AS (
           SELECT r.i, r.request_id, r.sender, r.task_id, r.format, r.ignored, r.response, r.njobs, r.sig,
                  (SELECT old.response FROM bb_intake_ledger old WHERE old.signature_hash = r.sig) AS replay
             FROM (SELECT r.i, r.request_id, r.sender, r.task_id, r.format, r.ignored, r.response, r.njobs, decode(r.sig, 'hex') AS sig
                     FROM json_to_recordset(${requestParam}::json)
                       AS r(i int, request_id text, sender text, task_id text, format text, ignored int, sig text, response jsonb, njobs int)) r),
         fresh AS (
           SELECT * FROM req WHERE replay IS NULL),
         j AS (${jobInsert}
           RETURNING id),
         n AS (
           SELECT x.request AS i, count(*)::int AS accepted
             FROM j JOIN json_to_recordset($1::json) AS x(id uuid, request int) ON x.id = j.id
            GROUP BY x.request),
         l AS (
           INSERT INTO bb_intake_ledger (request_id, sender, task_id, format, accepted, duplicates, ignored, signature_hash, response)
           SELECT f.request_id, f.sender, f.task_id, f.format, coalesce(n.accepted, 0), f.njobs - coalesce(n.accepted, 0), f.ignored, f.sig,
                  f.response || jsonb_build_object('accepted', coalesce(n.accepted, 0), 'duplicates', f.njobs - coalesce(n.accepted, 0))
             FROM fresh f LEFT JOIN n ON n.i = f.i)${notify ? wakeCte : ''}
    SELECT r.i, coalesce(n.accepted, 0) AS accepted, r.replay
      FROM req r
      LEFT JOIN n ON n.i = r.i${notify ? wakeJoin : ''}`;
}

/** Why the captured statement cannot be rewritten, or undefined when it can. */
function shapeProblem(captured: { text: string; values: unknown[] } | undefined): string | undefined {
  if (!captured) return 'boss.insert ran no SQL';
  const { text, values } = captured;
  if (values.length !== BOSS_PARAMS) return `${values.length} parameters instead of ${BOSS_PARAMS}`;
  if (text.split(RECORDSET).length !== 2) return `${RECORDSET} does not occur exactly once`;
  // The job list must be read only where the rewrite replaces it.
  if ((text.match(/\$1(?!\d)/g) ?? []).length !== 1) return '$1 is used outside the job recordset';
  if (new RegExp(`\\$${BOSS_PARAMS + 1}(?!\\d)`).test(text)) return `more than ${BOSS_PARAMS} parameters are referenced`;
  if (!/^\s*WITH\b[\s\S]*\bINSERT INTO\s+\S+\.job\s*\(/.test(text)) return 'not a WITH … INSERT INTO <schema>.job statement';
  // RETURNING id is appended, and the caller counts inserted rows: a conflict must skip a row, not update it.
  if (!/ON CONFLICT DO NOTHING\s*$/.test(text)) return 'does not end with ON CONFLICT DO NOTHING';
  if (/\bRETURNING\b/i.test(text)) return 'already has a RETURNING clause';
  // The job fields this module sets must be the ones the recordset reads.
  for (const column of ['id uuid', 'name text', 'data jsonb', '"singletonKey" text']) {
    if (!text.includes(column)) return `the job recordset no longer reads ${column}`;
  }
  return undefined;
}
