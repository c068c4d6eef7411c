/** bb_intake_ledger, read side: the accepted intake requests, newest first. */
import type pg from 'pg';

export interface LedgerRow {
  id: number;
  requestId: string;
  sender: string;
  taskId: string | null;
  format: string;
  accepted: number;
  duplicates: number;
  ignored: number;
  receivedAt: Date;
}

export interface LedgerQuery {
  sender?: string;
  taskId?: string;
  /** Keyset position: rows with ids below this one. */
  beforeId?: number;
  limit: number;
}

export class IntakeLedgerRepo {
  constructor(private readonly pool: pg.Pool) {}

  async list(q: LedgerQuery): Promise<{ rows: LedgerRow[]; more: boolean }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.sender !== undefined) add('sender = ?', q.sender);
    if (q.taskId !== undefined) add('task_id = ?', q.taskId);
    if (q.beforeId !== undefined) add('id < ?', q.beforeId);
    params.push(q.limit + 1);
    const { rows } = await this.pool.query<LedgerRow>(
      `SELECT id::float8 AS id, request_id AS "requestId", sender, task_id AS "taskId", format, accepted, duplicates, ignored,
              received_at AS "receivedAt"
         FROM bb_intake_ledger ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
  }
}
