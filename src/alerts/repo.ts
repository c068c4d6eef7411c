/**
 * The alert tables (migrations/007_alerts.sql): raising an alert (dedupe, rate
 * limit, outbox row, in one transaction), condition transitions, and the
 * outbox as the dispatcher sees it (claim, delivered, failed).
 */
import type pg from 'pg';
import type { AlertsConfig } from '../config/types.js';

export type AlertKind = 'key_failed' | 'dead_letter' | 'replication_lag';

/** What the receiver gets (plus `id`, `suppressed`, added at raise / delivery). */
export interface AlertPayload {
  type: AlertKind;
  taskId: string;
  summary: string;
  raisedAt: string;
  [field: string]: unknown;
}

export type RaiseResult = { raised: true; id: string } | { raised: false; reason: 'deduplicated' | 'rate-limited' };

export interface OutboxRow {
  id: string;
  taskId: string;
  kind: AlertKind;
  payload: AlertPayload;
  attempts: number;
}

type Db = pg.Pool | pg.PoolClient;

const RATE_WINDOW_SECONDS = 60;

export class AlertRepo {
  constructor(private readonly pool: pg.Pool) {}

  /** Raise an alert unless the same one was raised within `dedupeSeconds` or the task is over its rate. */
  async raise(config: AlertsConfig, payload: AlertPayload, dedupeKey: string, client?: pg.PoolClient): Promise<RaiseResult> {
    if (client) return this.raiseIn(client, config, payload, dedupeKey);
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const r = await this.raiseIn(c, config, payload, dedupeKey);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      c.release(broken);
    }
  }

  /** The raise itself, inside the caller's transaction. */
  private async raiseIn(c: pg.PoolClient, config: AlertsConfig, payload: AlertPayload, dedupeKey: string): Promise<RaiseResult> {
    const taskId = payload.taskId;
    const fresh = await c.query(
      `INSERT INTO bb_alert_dedupe AS d (task_id, dedupe_key, raised_at) VALUES ($1, $2, now())
       ON CONFLICT (task_id, dedupe_key) DO UPDATE SET raised_at = now()
        WHERE d.raised_at <= now() - make_interval(secs => $3)
       RETURNING 1`,
      [taskId, dedupeKey, config.dedupeSeconds],
    );
    if (fresh.rowCount === 0) return { raised: false, reason: 'deduplicated' };

    await c.query(`INSERT INTO bb_alert_limits (task_id, window_start, raised, suppressed) VALUES ($1, now(), 0, 0) ON CONFLICT (task_id) DO NOTHING`, [taskId]);
    const { rows } = await c.query<{ raised: number; suppressed: number; expired: boolean }>(
      `SELECT raised, suppressed, window_start <= now() - make_interval(secs => $2) AS expired FROM bb_alert_limits WHERE task_id = $1 FOR UPDATE`,
      [taskId, RATE_WINDOW_SECONDS],
    );
    const limit = rows[0]!;
    if (!limit.expired && limit.raised >= config.maxPerMinute) {
      await c.query('UPDATE bb_alert_limits SET suppressed = suppressed + 1 WHERE task_id = $1', [taskId]);
      return { raised: false, reason: 'rate-limited' };
    }
    // This alert goes out and carries the count of those held back before it.
    await c.query(
      `UPDATE bb_alert_limits SET window_start = CASE WHEN $2 THEN now() ELSE window_start END,
              raised = CASE WHEN $2 THEN 1 ELSE raised + 1 END, suppressed = 0
        WHERE task_id = $1`,
      [taskId, limit.expired],
    );
    const body: AlertPayload = limit.suppressed > 0 ? { ...payload, suppressed: limit.suppressed } : payload;
    const inserted = await c.query<{ id: string }>(
      'INSERT INTO bb_alert_outbox (task_id, kind, dedupe_key, payload) VALUES ($1, $2, $3, $4) RETURNING id::text AS id',
      [taskId, payload.type, dedupeKey, JSON.stringify(body)],
    );
    return { raised: true, id: inserted.rows[0]!.id };
  }

  /**
   * Record whether a watched condition holds now; true when this call changed it
   * (or set it for the first time) to `active`, i.e. when an alert is due.
   */
  async transition(c: Db, taskId: string, kind: AlertKind, active: boolean): Promise<boolean> {
    const { rows } = await c.query<{ active: boolean }>(
      `INSERT INTO bb_alert_conditions AS k (task_id, kind, active) VALUES ($1, $2, $3)
       ON CONFLICT (task_id, kind) DO UPDATE SET active = EXCLUDED.active, changed_at = now()
        WHERE k.active <> EXCLUDED.active
       RETURNING active`,
      [taskId, kind, active],
    );
    return rows[0]?.active === true;
  }

  /**
   * Take up to `limit` due alerts for delivery. Their due time moves past the
   * delivery timeout first, so no other dispatcher takes them meanwhile, and a
   * dispatcher that dies mid-delivery only delays them.
   */
  async claim(limit: number, leaseSeconds: number): Promise<OutboxRow[]> {
    const { rows } = await this.pool.query<OutboxRow>(
      `UPDATE bb_alert_outbox o SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
        WHERE o.id IN (SELECT id FROM bb_alert_outbox WHERE state = 'pending' AND next_attempt_at <= now()
                        ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING o.id::text AS id, o.task_id AS "taskId", o.kind, o.payload, o.attempts`,
      [limit, leaseSeconds],
    );
    return rows;
  }

  async delivered(id: string): Promise<void> {
    await this.pool.query(`UPDATE bb_alert_outbox SET state = 'delivered', delivered_at = now(), last_error = NULL WHERE id = $1`, [id]);
  }

  /** A failed delivery: try again after `retryInSeconds`, or give up (`abandon`). */
  async failed(id: string, error: string, retryInSeconds: number, abandon: boolean): Promise<void> {
    await this.pool.query(
      `UPDATE bb_alert_outbox SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3),
              state = CASE WHEN $4 THEN 'abandoned' ELSE state END
        WHERE id = $1`,
      [id, error.slice(0, 1000), retryInSeconds, abandon],
    );
  }

  /** Earliest due time of a pending alert (the dispatcher sleeps until then). */
  async nextDue(): Promise<Date | undefined> {
    const { rows } = await this.pool.query<{ at: Date | null }>("SELECT min(next_attempt_at) AS at FROM bb_alert_outbox WHERE state = 'pending'");
    return rows[0]?.at ?? undefined;
  }
}
