/**
 * Prototype D of src/queue/enqueue.ts (bench only): group commit. Requests that
 * arrive while earlier ones are being written wait and go together: one
 * statement (one round trip, one commit, a named prepared statement) queues the
 * jobs and writes the ledger rows of a whole batch. Each request is still
 * answered only after the statement that holds its rows has committed; when
 * that statement fails, every request of the batch gets the error (→ 503, the
 * senders retry).
 *
 *   WITH req   AS (one row per request: ledger fields, signature, job count),
 *        fresh AS (requests whose signature is not in the ledger yet),
 *        j     AS (<pg-boss's own job INSERT, fed only the jobs of fresh requests> RETURNING id),
 *        n     AS (accepted jobs per request),
 *        l     AS (INSERT INTO bb_intake_ledger … ON CONFLICT (signature_hash) DO NOTHING RETURNING request_id)
 *   SELECT per request: accepted, ids, ledgered
 *
 * Batching is natural: at most BENCH_BATCH_IN_FLIGHT statements (default 2)
 * run at once; whatever arrives meanwhile forms the next batch (at most
 * BENCH_BATCH_MAX requests, default 256). At concurrency 1 every batch holds
 * one request and this is prototype C. Replays and keys collapsing into a
 * queued job behave as in prototype B (see enqueue-1-round-trip.mjs).
 */
import { randomUUID } from 'node:crypto';
import { QUEUES, replicateSingletonKey } from '../../../dist/queue/boss.js';

const MAX_BATCH = Number(process.env.BENCH_BATCH_MAX ?? 256);
const MAX_IN_FLIGHT = Number(process.env.BENCH_BATCH_IN_FLIGHT ?? 2);
const RECORDSET = 'json_to_recordset($1)';

export class ReplayError extends Error {
  constructor(answer) {
    super('request was already accepted');
    this.answer = answer;
  }
}

/** The route's pre-parse replay check: folded into the batch statement. */
export async function findReplay(_pool, _signatureHash) {
  return undefined;
}

let state; // one batcher per process: { boss, pool, pending, inFlight, scheduled, sql }
export const batchStats = { batches: 0, requests: 0, maxBatch: 0 };
// For bench/intake: cumulative batch counts on stderr, once a second while they change.
let reported = -1;
setInterval(() => {
  if (batchStats.batches === reported) return;
  reported = batchStats.batches;
  process.stderr.write(`bench-batch-stats ${JSON.stringify(batchStats)}\n`);
}, 500).unref();

export function enqueueReplications(boss, pool, jobs, ledger) {
  if (!ledger) return Promise.reject(new Error('enqueue-batched: prototype covers the intake path only'));
  state ??= { boss, pool, pending: [], inFlight: 0, scheduled: false, sql: undefined };
  return new Promise((resolve, reject) => {
    state.pending.push({ jobs, ledger, resolve, reject });
    if (!state.scheduled) {
      state.scheduled = true;
      // Let the requests parsed in this turn of the event loop join the batch.
      setImmediate(pump);
    }
  });
}

function pump() {
  state.scheduled = false;
  while (state.inFlight < MAX_IN_FLIGHT && state.pending.length > 0) {
    const batch = state.pending.splice(0, MAX_BATCH);
    state.inFlight++;
    flush(batch)
      .catch((err) => {
        for (const b of batch) b.reject(err);
      })
      .finally(() => {
        state.inFlight--;
        if (state.pending.length > 0 && !state.scheduled) {
          state.scheduled = true;
          setImmediate(pump);
        }
      });
  }
}

async function statementFor(boss, inserts) {
  let captured;
  await boss.insert(inserts, {
    db: {
      executeSql: async (text, values) => {
        captured = { text, values };
        return { rows: [] };
      },
    },
  });
  if (!captured || !captured.text.includes(RECORDSET) || !/ON CONFLICT DO NOTHING\s*$/.test(captured.text)) {
    throw new Error('enqueue-batched: pg-boss insert statement has an unexpected shape');
  }
  const n = captured.values.length;
  const R = `$${n + 1}`;
  const jobsSql = captured.text.replace(
    RECORDSET,
    `json_to_recordset((SELECT coalesce(json_agg(x.v), '[]'::json) FROM json_array_elements($1::json) x(v) WHERE (x.v->>'req')::int IN (SELECT i FROM fresh)))`,
  );
  const sql = `
    WITH req AS (
           SELECT * FROM json_to_recordset(${R}::json)
             AS r(i int, request_id text, sender text, task_id text, format text, ignored int, sig text, response jsonb, njobs int)),
         fresh AS (
           SELECT r.* FROM req r
            WHERE NOT EXISTS (SELECT 1 FROM bb_intake_ledger l WHERE l.signature_hash = decode(r.sig, 'hex'))),
         j AS (${jobsSql} RETURNING id),
         n AS (
           SELECT (x.v->>'req')::int AS i, count(*)::int AS accepted, array_agg(j.id::text) AS ids
             FROM j JOIN json_array_elements($1::json) x(v) ON (x.v->>'id')::uuid = j.id
            GROUP BY 1),
         l AS (
           INSERT INTO bb_intake_ledger (request_id, sender, task_id, format, accepted, duplicates, ignored, signature_hash, response)
           SELECT f.request_id, f.sender, f.task_id, f.format, coalesce(n.accepted, 0), f.njobs - coalesce(n.accepted, 0), f.ignored,
                  decode(f.sig, 'hex'),
                  f.response || jsonb_build_object('accepted', coalesce(n.accepted, 0), 'duplicates', f.njobs - coalesce(n.accepted, 0))
             FROM fresh f LEFT JOIN n ON n.i = f.i
           ON CONFLICT (signature_hash) DO NOTHING
           RETURNING request_id)
    SELECT r.i, coalesce(n.accepted, 0) AS accepted, coalesce(n.ids, '{}') AS ids,
           EXISTS (SELECT 1 FROM l WHERE l.request_id = r.request_id) AS ledgered
      FROM req r LEFT JOIN n ON n.i = r.i
     ORDER BY r.i`;
  return { sql, values: captured.values };
}

async function flush(batch) {
  const inserts = [];
  const reqs = [];
  batch.forEach((b, i) => {
    const unique = new Map();
    for (const job of b.jobs) unique.set(replicateSingletonKey(job.taskId, job.key), job);
    // `req` is ignored by pg-boss's json_to_recordset; the statement uses it to tie jobs to requests.
    for (const [singletonKey, data] of unique) inserts.push({ id: randomUUID(), name: QUEUES.replicate, data, singletonKey, req: i });
    const e = b.ledger.entry;
    reqs.push({
      i,
      request_id: e.requestId,
      sender: e.sender,
      task_id: e.taskId ?? null,
      format: e.format,
      ignored: e.ignored,
      sig: e.signatureHash.toString('hex'),
      response: b.ledger.answer({ accepted: 0, duplicates: 0, jobIds: [] }),
      njobs: b.jobs.length,
    });
  });
  // pg-boss's parameters ($1 = the jobs; $2..$6 = its defaults) are captured per batch; the text once.
  const { sql, values } = await statementFor(state.boss, inserts);
  state.sql ??= sql;
  if (sql !== state.sql) throw new Error('enqueue-batched: statement text changed');
  const { rows } = await state.pool.query({ name: 'bb_intake_enqueue_batch', text: sql, values: [...values, JSON.stringify(reqs)] });
  batchStats.batches++;
  batchStats.requests += batch.length;
  batchStats.maxBatch = Math.max(batchStats.maxBatch, batch.length);
  const replays = [];
  for (const row of rows) {
    const b = batch[row.i];
    if (row.ledgered) b.resolve({ accepted: row.accepted, duplicates: b.jobs.length - row.accepted, jobIds: row.ids });
    else replays.push(b);
  }
  if (replays.length > 0) {
    const { rows: seen } = await state.pool.query('SELECT signature_hash, response FROM bb_intake_ledger WHERE signature_hash = ANY($1::bytea[])', [
      replays.map((b) => b.ledger.entry.signatureHash),
    ]);
    const bySig = new Map(seen.map((r) => [r.signature_hash.toString('hex'), r.response]));
    for (const b of replays) b.reject(new ReplayError({ response: bySig.get(b.ledger.entry.signatureHash.toString('hex')) ?? {} }));
  }
}
