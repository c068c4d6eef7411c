/**
 * Durable, idempotent enqueue of replication jobs: one transaction holds the
 * multi-row job insert and the intake ledger row, so a 2xx is sent only for
 * work that is committed, and a replayed request finds the first answer.
 */
import { randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import { QUEUES, replicateSingletonKey, type ReplicateJob } from './boss.js';

export interface LedgerEntry {
  requestId: string;
  sender: string;
  taskId?: string;
  format: string;
  ignored: number;
  /** sha256 of the request signature: a replay has the same one. */
  signatureHash: Buffer;
}

export interface EnqueueResult {
  accepted: number;
  duplicates: number;
  /** pg-boss ids of the jobs this call created. */
  jobIds: string[];
}

export interface StoredAnswer {
  response: Record<string, unknown>;
}

function dbFor(client: pg.PoolClient): PgBoss.Db {
  return { executeSql: (text, values) => client.query(text, values) };
}

/** Find the answer already given to a request with this signature. */
export async function findReplay(pool: pg.Pool | pg.PoolClient, signatureHash: Buffer): Promise<StoredAnswer | undefined> {
  const { rows } = await pool.query<{ response: Record<string, unknown> }>(
    'SELECT response FROM bb_intake_ledger WHERE signature_hash = $1',
    [signatureHash],
  );
  return rows[0] ? { response: rows[0].response } : undefined;
}

export class ReplayError extends Error {
  constructor(readonly answer: StoredAnswer) {
    super('request was already accepted');
  }
}

/**
 * Insert jobs (deduplicated by task:key) and, when given, the ledger row built
 * by `answer` from the counts. Throws ReplayError when a concurrent twin of the
 * request committed first.
 */
export async function enqueueReplications(
  boss: PgBoss,
  pool: pg.Pool,
  jobs: ReplicateJob[],
  ledger?: { entry: LedgerEntry; answer: (r: EnqueueResult) => Record<string, unknown> },
): Promise<EnqueueResult> {
  const unique = new Map<string, ReplicateJob>();
  const queuedAt = new Date().toISOString();
  for (const job of jobs) unique.set(replicateSingletonKey(job.taskId, job.key), { ...job, queuedAt: job.queuedAt ?? queuedAt });
  const inserts: PgBoss.JobInsert[] = [...unique.entries()].map(([singletonKey, data]) => ({
    id: randomUUID(),
    name: QUEUES.replicate,
    data,
    singletonKey,
  }));
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    if (ledger) {
      const seen = await findReplay(client, ledger.entry.signatureHash);
      if (seen) throw new ReplayError(seen);
    }
    let jobIds: string[] = [];
    if (inserts.length > 0) {
      await boss.insert(inserts, { db: dbFor(client) });
      const { rows } = await client.query<{ id: string }>('SELECT id FROM pgboss.job WHERE name = $1 AND id = ANY($2::uuid[])', [
        QUEUES.replicate,
        inserts.map((j) => j.id),
      ]);
      jobIds = rows.map((r) => r.id);
    }
    const result: EnqueueResult = { accepted: jobIds.length, duplicates: jobs.length - jobIds.length, jobIds };
    if (ledger) {
      const e = ledger.entry;
      const inserted = await client.query(
        `INSERT INTO bb_intake_ledger (request_id, sender, task_id, format, accepted, duplicates, ignored, signature_hash, response)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (signature_hash) DO NOTHING RETURNING id`,
        [e.requestId, e.sender, e.taskId ?? null, e.format, result.accepted, result.duplicates, e.ignored, e.signatureHash, JSON.stringify(ledger.answer(result))],
      );
      if (inserted.rowCount === 0) {
        // A concurrent copy of this request committed first: undo ours, give its answer.
        await client.query('ROLLBACK');
        const seen = await findReplay(client, e.signatureHash);
        throw new ReplayError(seen ?? { response: {} });
      }
    }
    await client.query('COMMIT');
    return result;
  } catch (err) {
    if (!(err instanceof ReplayError)) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
    } else {
      await client.query('ROLLBACK').catch(() => {});
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
