/**
 * Prototype B of src/queue/enqueue.ts (bench only): one statement, one round
 * trip, autocommit (a single statement is atomic; no BEGIN/COMMIT):
 *
 *   WITH j AS (<pg-boss's own job INSERT, unchanged> RETURNING id),
 *        n AS (SELECT count(*) FROM j),
 *        l AS (INSERT INTO bb_intake_ledger … ON CONFLICT (signature_hash) DO NOTHING RETURNING id)
 *   SELECT accepted, ledgered, ids
 *
 * - pg-boss's SQL text and parameters are captured from `boss.insert` itself (a
 *   db wrapper that records instead of executing), so queue policies, retry
 *   settings and the stately singleton collapse are exactly pg-boss's.
 * - Replays: the job rows are read from `json_to_recordset(CASE WHEN EXISTS
 *   (ledger row with this signature) THEN '[]' ELSE $1 END)`, so a replay of a
 *   committed request queues nothing, and the ledger insert's ON CONFLICT tells
 *   us to answer with the stored first answer (ReplayError), as today.
 *   One difference: two *concurrent* copies of one request, where neither has
 *   committed, may both insert jobs (today the second rolls back). The second
 *   job of a key collapses into the first while it is queued (stately singleton
 *   key); at worst one extra reconcile, which is harmless by design.
 * - The stored answer is built with the counts computed in SQL
 *   (`answer(counts) || {accepted, duplicates}`); the route's answer only
 *   depends on those two counts.
 */
import { randomUUID } from 'node:crypto';
import { QUEUES, replicateSingletonKey } from '../../../dist/queue/boss.js';

export class ReplayError extends Error {
  constructor(answer) {
    super('request was already accepted');
    this.answer = answer;
  }
}

/** The route's pre-parse replay check: folded into the single statement. */
export async function findReplay(_pool, _signatureHash) {
  return undefined;
}

const RECORDSET = 'json_to_recordset($1)';
async function bossInsertStatement(boss, inserts) {
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
    throw new Error('enqueue-1-round-trip: pg-boss insert statement has an unexpected shape');
  }
  return captured;
}

/** `prepared`: send the statement as a named prepared statement (parsed and planned once per connection). */
export function makeEnqueue({ prepared }) {
  return (boss, pool, jobs, ledger) => enqueue(boss, pool, jobs, ledger, prepared);
}

export const enqueueReplications = makeEnqueue({ prepared: false });

async function enqueue(boss, pool, jobs, ledger, prepared) {
  const unique = new Map();
  for (const job of jobs) unique.set(replicateSingletonKey(job.taskId, job.key), job);
  const inserts = [...unique.entries()].map(([singletonKey, data]) => ({ id: randomUUID(), name: QUEUES.replicate, data, singletonKey }));
  if (!ledger) throw new Error('enqueue-1-round-trip: prototype covers the intake path only');
  const e = ledger.entry;
  const captured = await bossInsertStatement(boss, inserts);
  // $1..$6 are pg-boss's; ours follow.
  const n = captured.values.length;
  const p = (i) => `$${n + i}`;
  const jobsSql = captured.text.replace(
    RECORDSET,
    `json_to_recordset(CASE WHEN EXISTS (SELECT 1 FROM bb_intake_ledger WHERE signature_hash = ${p(8)}) THEN '[]'::json ELSE $1::json END)`,
  );
  const sql = `
    WITH j AS (${jobsSql} RETURNING id),
         n AS (SELECT count(*)::int AS accepted FROM j),
         l AS (
           INSERT INTO bb_intake_ledger (request_id, sender, task_id, format, accepted, duplicates, ignored, signature_hash, response)
           SELECT ${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, n.accepted, ${p(5)}::int - n.accepted, ${p(6)}::int, ${p(8)}::bytea,
                  ${p(7)}::jsonb || jsonb_build_object('accepted', n.accepted, 'duplicates', ${p(5)}::int - n.accepted)
             FROM n
           ON CONFLICT (signature_hash) DO NOTHING
           RETURNING id)
    SELECT n.accepted, (SELECT count(*)::int FROM l) AS ledgered, (SELECT coalesce(array_agg(id::text), '{}') FROM j) AS ids FROM n`;
  const values = [
    ...captured.values,
    e.requestId,
    e.sender,
    e.taskId ?? null,
    e.format,
    jobs.length,
    e.ignored,
    JSON.stringify(ledger.answer({ accepted: 0, duplicates: 0, jobIds: [] })),
    e.signatureHash,
  ];
  // The text is the same for every request (pg-boss's statement is fixed per process).
  const { rows } = await pool.query(prepared ? { name: 'bb_intake_enqueue', text: sql, values } : { text: sql, values });
  const row = rows[0];
  if (row.ledgered === 0) {
    const seen = await pool.query('SELECT response FROM bb_intake_ledger WHERE signature_hash = $1', [e.signatureHash]);
    throw new ReplayError({ response: seen.rows[0]?.response ?? {} });
  }
  return { accepted: row.accepted, duplicates: jobs.length - row.accepted, jobIds: row.ids };
}
