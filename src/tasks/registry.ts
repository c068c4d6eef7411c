/**
 * The tasks this process knows, loaded from bb_tasks. Config-file tasks are
 * mirrored into the table at start so that every process on the database sees
 * the same set and the admin API can list them beside API-created ones.
 */
import type pg from 'pg';
import type { TaskConfig } from '../config/types.js';
import { withTransaction } from '../db/pool.js';
import { AppError } from '../errors.js';
import { QUEUES } from '../queue/boss.js';

export interface Task extends TaskConfig {
  managedBy: 'config' | 'api';
  paused: boolean;
}

/** A task as the admin API shows it: the definition plus its state and timestamps. */
export interface TaskRecord extends Task {
  createdAt: Date;
  updatedAt: Date;
}

interface TaskRow {
  id: string;
  definition: TaskConfig;
  managed_by: 'config' | 'api';
  paused: boolean;
  created_at?: Date;
  updated_at?: Date;
}

function toRecord(row: Required<TaskRow>): TaskRecord {
  return { ...row.definition, id: row.id, managedBy: row.managed_by, paused: row.paused, createdAt: row.created_at, updatedAt: row.updated_at };
}

const notFound = (id: string) => new AppError(404, 'NOT_FOUND', `task ${id} does not exist`);
const managedByConfig = (id: string) =>
  new AppError(409, 'MANAGED_BY_CONFIG', `task ${id} comes from the config file and is read-only through the API; edit the file instead`);

function keyMatchesPrefixes(key: string, prefixes: string[] | undefined): boolean {
  return !prefixes || prefixes.length === 0 || prefixes.some((p) => key.startsWith(p));
}

export class TaskRegistry {
  private tasks = new Map<string, Task>();

  constructor(private readonly pool: pg.Pool) {}

  /**
   * Upsert config-file tasks (they win over older config rows) and drop config
   * rows that are no longer in the file. API-managed tasks are left alone; a
   * config task whose id an API task already uses is refused.
   */
  async syncConfigTasks(tasks: TaskConfig[]): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['bucketbridge.tasks']);
      for (const task of tasks) {
        const res = await client.query(
          `INSERT INTO bb_tasks (id, definition, managed_by) VALUES ($1, $2, 'config')
           ON CONFLICT (id) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()
           WHERE bb_tasks.managed_by = 'config'
           RETURNING id`,
          [task.id, JSON.stringify(task)],
        );
        if (res.rowCount === 0) throw new Error(`config task ${task.id} clashes with an API-managed task of the same id`);
      }
      await client.query(`DELETE FROM bb_tasks WHERE managed_by = 'config' AND NOT (id = ANY($1::text[]))`, [
        tasks.map((t) => t.id),
      ]);
    });
    await this.load();
  }

  async load(): Promise<void> {
    const { rows } = await this.pool.query<TaskRow>('SELECT id, definition, managed_by, paused FROM bb_tasks');
    const next = new Map<string, Task>();
    for (const row of rows) next.set(row.id, { ...row.definition, id: row.id, managedBy: row.managed_by, paused: row.paused });
    this.tasks = next;
  }

  /*
   * Admin API reads and writes. Reads go to the database (always fresh, with
   * timestamps); every write reloads this process's cache at once, and other
   * processes pick it up through RegistryRefresher (db/registry-refresh.ts).
   */

  async list(): Promise<TaskRecord[]> {
    const { rows } = await this.pool.query<Required<TaskRow>>(
      'SELECT id, definition, managed_by, paused, created_at, updated_at FROM bb_tasks ORDER BY id',
    );
    return rows.map(toRecord);
  }

  async fetch(id: string): Promise<TaskRecord | undefined> {
    const { rows } = await this.pool.query<Required<TaskRow>>(
      'SELECT id, definition, managed_by, paused, created_at, updated_at FROM bb_tasks WHERE id = $1',
      [id],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** Fetch or 404 NOT_FOUND. */
  async require(id: string): Promise<TaskRecord> {
    const task = await this.fetch(id);
    if (!task) throw notFound(id);
    return task;
  }

  /** Create an API-managed task (validated by the caller); 409 TASK_EXISTS when the id is taken. */
  async create(task: TaskConfig): Promise<TaskRecord> {
    const { rows } = await this.pool.query<Required<TaskRow>>(
      `INSERT INTO bb_tasks (id, definition, managed_by) VALUES ($1, $2, 'api') ON CONFLICT (id) DO NOTHING
       RETURNING id, definition, managed_by, paused, created_at, updated_at`,
      [task.id, JSON.stringify(task)],
    );
    if (!rows[0]) throw new AppError(409, 'TASK_EXISTS', `a task with id ${task.id} already exists`);
    await this.load();
    return toRecord(rows[0]);
  }

  /** Apply `fn` to an existing API-managed task row, locked; 404 / 409 MANAGED_BY_CONFIG otherwise. */
  private async modify(id: string, fn: (client: pg.PoolClient) => Promise<Required<TaskRow> | undefined>): Promise<TaskRecord | undefined> {
    const row = await withTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{ managed_by: string }>('SELECT managed_by FROM bb_tasks WHERE id = $1 FOR UPDATE', [id]);
      if (!rows[0]) throw notFound(id);
      if (rows[0].managed_by !== 'api') throw managedByConfig(id);
      return fn(client);
    });
    await this.load();
    return row ? toRecord(row) : undefined;
  }

  /** Replace an API-managed task's definition (paused state is kept). */
  async update(task: TaskConfig): Promise<TaskRecord> {
    return (await this.modify(task.id, async (client) => {
      const { rows } = await client.query<Required<TaskRow>>(
        `UPDATE bb_tasks SET definition = $2, updated_at = now() WHERE id = $1
         RETURNING id, definition, managed_by, paused, created_at, updated_at`,
        [task.id, JSON.stringify(task)],
      );
      return rows[0];
    }))!;
  }

  async setPaused(id: string, paused: boolean): Promise<TaskRecord> {
    return (await this.modify(id, async (client) => {
      const { rows } = await client.query<Required<TaskRow>>(
        `UPDATE bb_tasks SET paused = $2, updated_at = now() WHERE id = $1
         RETURNING id, definition, managed_by, paused, created_at, updated_at`,
        [id, paused],
      );
      return rows[0];
    }))!;
  }

  /**
   * Delete an API-managed task with its per-object status rows and its jobs
   * that have not started (a running copy finishes; later jobs are dropped by
   * the worker because the task is gone).
   */
  async remove(id: string): Promise<void> {
    await this.modify(id, async (client) => {
      await client.query(`DELETE FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry') AND data->>'taskId' = $2`, [
        QUEUES.replicate,
        id,
      ]);
      await client.query('DELETE FROM bb_object_status WHERE task_id = $1', [id]);
      await client.query('DELETE FROM bb_tasks WHERE id = $1', [id]);
      return undefined;
    });
  }

  get(id: string): Task | undefined {
    return this.tasks.get(id);
  }

  all(): Task[] {
    return [...this.tasks.values()];
  }

  /** Tasks (among `allowed`) whose source bucket is `bucket`. */
  bySourceBucket(bucket: string, allowed: readonly string[]): Task[] {
    return allowed.map((id) => this.tasks.get(id)).filter((t): t is Task => !!t && t.source.bucket === bucket);
  }

  static keyInScope(task: TaskConfig, key: string): boolean {
    return keyMatchesPrefixes(key, task.source.prefixes);
  }
}
