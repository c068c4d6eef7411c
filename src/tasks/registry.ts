/**
 * The tasks this process knows, loaded from bb_tasks. Config-file tasks are
 * mirrored into the table at start so that every process on the database sees
 * the same set and the admin API can list them beside API-created ones.
 */
import type pg from 'pg';
import type { TaskConfig } from '../config/types.js';

export interface Task extends TaskConfig {
  managedBy: 'config' | 'api';
  paused: boolean;
}

interface TaskRow {
  id: string;
  definition: TaskConfig;
  managed_by: 'config' | 'api';
  paused: boolean;
}

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
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
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
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
    await this.load();
  }

  async load(): Promise<void> {
    const { rows } = await this.pool.query<TaskRow>('SELECT id, definition, managed_by, paused FROM bb_tasks');
    const next = new Map<string, Task>();
    for (const row of rows) next.set(row.id, { ...row.definition, id: row.id, managedBy: row.managed_by, paused: row.paused });
    this.tasks = next;
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
