/**
 * A token bucket kept in PostgreSQL (table bb_rate_buckets, migration 006),
 * shared by every worker of every process on the database: a task's
 * `limits.bytesPerSecond` and `limits.requestsPerSecond` hold for the whole
 * deployment, not per process.
 *
 * One statement per take, no polling. `reserve(n)` runs a single upsert that,
 * under the row lock, refills the bucket for the time since its last update
 * (rate × elapsed, capped at capacity, measured with the DATABASE's
 * clock_timestamp() so hosts with skewed clocks agree) and subtracts n. The
 * balance may go negative: that is tokens reserved ahead. A taker whose
 * reservation left the balance at -d waits d / rate seconds and then goes;
 * the next taker finds the balance lower still and waits longer. Concurrent
 * takers are therefore served in the order their upserts committed, at the
 * configured rate, and each sleeps exactly once.
 *
 * Granularity: callers reserve in bounded quanta (bytes: a tenth of a second
 * of the rate, at least 16 KiB; requests: 1), so a reservation never runs
 * ahead by more than about 0.1 s plus the queue in front of it, and a taker
 * that is cancelled while waiting gives its tokens back (`refund`).
 * Capacity (the burst an idle bucket can accumulate) is 0.2 s of the rate,
 * at least one quantum: a throttled transfer runs at the rate from its start.
 * When a task's rate changes, the debt is rescaled so the queue's wait in
 * seconds is kept.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';

export type BucketKind = 'bytes' | 'requests';

/** Seconds of the rate an idle bucket may save up. */
export const BURST_SECONDS = 0.2;
/** Seconds of the rate one byte reservation covers. */
export const QUANTUM_SECONDS = 0.1;
export const MIN_BYTE_QUANTUM = 16 * 1024;

/** The reservation quantum for a bucket of `kind` at `rate`. */
export function quantumFor(kind: BucketKind, rate: number): number {
  return kind === 'requests' ? 1 : Math.max(MIN_BYTE_QUANTUM, Math.ceil(rate * QUANTUM_SECONDS));
}

export function capacityFor(kind: BucketKind, rate: number): number {
  return Math.max(quantumFor(kind, rate), rate * BURST_SECONDS);
}

const RESERVE_SQL = `
INSERT INTO bb_rate_buckets AS b (task_id, kind, rate, capacity, tokens, updated_at)
VALUES ($1::text, $2::text, $3::float8, $4::float8, $4::float8 - $5::float8, clock_timestamp())
ON CONFLICT (task_id, kind) DO UPDATE SET
  tokens = LEAST(
             EXCLUDED.capacity,
             (CASE WHEN b.tokens < 0 AND b.rate <> EXCLUDED.rate THEN b.tokens * EXCLUDED.rate / b.rate ELSE b.tokens END)
               + EXCLUDED.rate * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at))
           ) - $5::float8,
  rate = EXCLUDED.rate,
  capacity = EXCLUDED.capacity,
  updated_at = clock_timestamp()
RETURNING tokens`;

const REFUND_SQL = `UPDATE bb_rate_buckets SET tokens = LEAST(capacity, tokens + $3::float8) WHERE task_id = $1 AND kind = $2`;

export class PgTokenBucket {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Reserve `n` tokens of `taskId`'s `kind` bucket at `rate` per second.
   * Resolves with the milliseconds the caller must wait before using them.
   */
  async reserve(taskId: string, kind: BucketKind, rate: number, n: number): Promise<number> {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be a positive number, got ${rate}`);
    if (!(n >= 0) || !Number.isFinite(n)) throw new RangeError(`token count must be a non-negative number, got ${n}`);
    const { rows } = await this.pool.query<{ tokens: number }>(RESERVE_SQL, [taskId, kind, rate, capacityFor(kind, rate), n]);
    const tokens = Number(rows[0]!.tokens);
    return tokens >= 0 ? 0 : Math.ceil((-tokens / rate) * 1000);
  }

  /** Give back tokens reserved but not used (a cancelled wait, the rest of a quantum). */
  async refund(taskId: string, kind: BucketKind, n: number): Promise<void> {
    if (n <= 0) return;
    await this.pool.query(REFUND_SQL, [taskId, kind, n]);
  }

  /**
   * Reserve `n` tokens and wait until they are due. Aborting the wait refunds
   * the reservation and rejects with the signal's reason.
   */
  async take(taskId: string, kind: BucketKind, rate: number, n: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const waitMs = await this.reserve(taskId, kind, rate, n);
    if (waitMs <= 0) return;
    try {
      await sleep(waitMs, undefined, signal ? { signal } : undefined);
    } catch (err) {
      await this.refund(taskId, kind, n).catch(() => {});
      throw signal?.reason ?? err;
    }
  }
}
