/**
 * A separate process taking byte tokens from the shared PostgreSQL bucket
 * (src/limits/token-bucket.ts), for the cross-process test in limits.test.ts:
 *   node <tap's loader flags> limits-worker.ts DB_URL TASK RATE BYTES QUANTUM START_AT_MS
 * Waits until START_AT_MS, takes BYTES in QUANTUM steps from 3 concurrent
 * loops, and prints {"start":…, "done":…} (epoch ms).
 */
import pg from 'pg';
import { PgTokenBucket } from '../../src/limits/token-bucket.js';

const [url, taskId, rate, bytes, quantum, startAt] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: url, max: 4 });
const bucket = new PgTokenBucket(pool);
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const start = Date.now();
let remaining = Number(bytes);
const loop = async (): Promise<void> => {
  while (remaining > 0) {
    const n = Math.min(Number(quantum), remaining);
    remaining -= n;
    await bucket.take(taskId!, 'bytes', Number(rate), n);
  }
};
await Promise.all([loop(), loop(), loop()]);
process.stdout.write(`${JSON.stringify({ start, done: Date.now() })}\n`);
await pool.end();
