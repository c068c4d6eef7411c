/**
 * The bb-scan queue's jobs: putting one in (for a new, resumed or re-queued
 * scan) and putting back one that was fetched but never started.
 *
 * Every statement that makes a bb-scan job runnable also runs
 * `pg_notify(SCAN_READY_CHANNEL, '')` in the same transaction, so the scan
 * workers of every process (ScanWorkers, woken through a JobWakeups on this
 * channel) fetch it within milliseconds instead of at their next poll.
 * PostgreSQL delivers the notification only when the transaction commits, i.e.
 * once the job is visible, and never for a rolled-back one. The payload is
 * empty: nothing about tasks leaves the transaction. Polling stays as the
 * fallback for a lost notification (see src/queue/job-wakeups.ts).
 */
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import { QUEUES } from '../queue/boss.js';

export interface ScanJobData {
  scanId: string;
}

/** The channel that announces runnable bb-scan jobs. Per database, as every LISTEN. */
export const SCAN_READY_CHANNEL = 'bb_scan_ready';

/** The statement that sends the wake-up; run it inside the transaction that makes the job runnable. */
export const NOTIFY_SCAN_READY_SQL = `SELECT pg_notify('${SCAN_READY_CHANNEL}', '')`;

function dbFor(client: pg.PoolClient): PgBoss.Db {
  return { executeSql: (text, values) => client.query(text, values) };
}

/** Insert the bb-scan job that runs (or resumes) `scanId`, and announce it, inside the caller's transaction. */
export async function insertScanJob(boss: PgBoss, client: pg.PoolClient, jobId: string, scanId: string): Promise<void> {
  const data: ScanJobData = { scanId };
  await boss.insert([{ id: jobId, name: QUEUES.scan, data }], { db: dbFor(client) });
  await client.query(NOTIFY_SCAN_READY_SQL);
}

/**
 * Put a fetched (`active`) bb-scan job that was never started back in the
 * queue as it was (`created`, same id, so its scan row still points at it),
 * and announce it, inside the caller's transaction. pg-boss only resumes a
 * cancelled job, hence cancel then resume; in one transaction nobody sees the
 * cancelled state in between. Not boss.fail(): bb-scan jobs have no retries
 * (retryLimit 0), so a failed job would leave its scan waiting for the
 * stale-scan sweep (a minute or more) instead of being fetched again at once.
 */
export async function returnScanJob(boss: PgBoss, client: pg.PoolClient, jobId: string): Promise<void> {
  const db = dbFor(client);
  await boss.cancel(QUEUES.scan, jobId, { db });
  await boss.resume(QUEUES.scan, jobId, { db });
  await client.query(NOTIFY_SCAN_READY_SQL);
}
