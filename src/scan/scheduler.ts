/**
 * Turns each task's `schedule` into scans.
 *
 *  - rate (`every: "15m"`): timed in bb_scan_schedules. next_run_at is claimed
 *    with one UPDATE … WHERE next_run_at <= now() RETURNING, so among all
 *    processes exactly one fires each period. The first scan runs as soon as
 *    the schedule is seen, then every `every` after the previous firing (no
 *    catch-up burst after downtime: one scan, then the normal period). Any
 *    period works, seconds to days — cron could not say "every 7m" or "36h".
 *  - cron: a pg-boss schedule (cron evaluated by pg-boss's timekeeper, UTC)
 *    on a per-task queue `bb-scan-cron.<task>` — pg-boss 10 keys schedules by
 *    queue name, one per name — and a worker on that queue in each scanning
 *    process turns a firing into a scan request.
 *  - once: the first sync that sees the task records once_fired_at (an
 *    INSERT … ON CONFLICT that only one process wins) and requests one scan;
 *    restarts and other processes see the mark and never repeat it. Deleting
 *    the task deletes the mark.
 *
 * A firing while the task's previous scan is still active is recorded as a
 * skipped scan. Paused tasks get no scheduled scans (rate periods still
 * advance; a `once` waits until the task is resumed).
 *
 * sync() runs at start and every `syncMs` (reloading tasks, so tasks created
 * by other processes are picked up); tick() every `tickMs` fires due rates.
 * The stale-scan sweep runs with each sync.
 */
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from 'pino';
import { ensureQueue } from '../queue/boss.js';
import type { Task, TaskRegistry } from '../tasks/registry.js';
import type { ScanService } from './scans.js';

export const CRON_QUEUE_PREFIX = 'bb-scan-cron.';

export function cronQueueName(taskId: string): string {
  return `${CRON_QUEUE_PREFIX}${taskId}`;
}

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** "90s" | "15m" | "2h" | "1d" → seconds. */
export function parseEvery(every: string): number {
  const m = /^([1-9][0-9]*)(s|m|h|d)$/.exec(every);
  if (!m) throw new Error(`schedule.every ${JSON.stringify(every)} is not a period like 30s, 15m, 2h or 1d`);
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
  if (!Number.isSafeInteger(seconds) || seconds > 2 ** 31 - 1) throw new Error(`schedule.every ${every} is too long`);
  return seconds;
}

export interface SchedulerOptions {
  tickMs: number;
  syncMs: number;
  /** How often each process polls a cron task's queue for firings. */
  cronPollingIntervalSeconds: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = { tickMs: 5_000, syncMs: 30_000, cronPollingIntervalSeconds: 10 };

export interface SchedulerDeps {
  pool: pg.Pool;
  boss: PgBoss;
  tasks: TaskRegistry;
  scans: ScanService;
  log: Logger;
}

interface CronJobData {
  taskId: string;
}

export class ScanScheduler {
  private readonly options: SchedulerOptions;
  private tickTimer?: NodeJS.Timeout;
  private syncTimer?: NodeJS.Timeout;
  private busy: Promise<unknown> = Promise.resolve();
  private readonly cronWorkers = new Set<string>();
  private readonly warned = new Map<string, string>();
  private stopped = false;

  constructor(
    private readonly deps: SchedulerDeps,
    options: Partial<SchedulerOptions> = {},
  ) {
    this.options = { ...DEFAULT_SCHEDULER_OPTIONS, ...options };
  }

  async start(): Promise<void> {
    await this.sync();
    await this.tick();
    this.tickTimer = setInterval(() => this.serial(() => this.tick()), this.options.tickMs);
    this.syncTimer = setInterval(() => this.serial(() => this.sync()), this.options.syncMs);
    this.tickTimer.unref();
    this.syncTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tickTimer);
    clearInterval(this.syncTimer);
    await this.busy.catch(() => {});
    for (const name of this.cronWorkers) await this.deps.boss.offWork(name).catch(() => {});
    this.cronWorkers.clear();
  }

  /** Run timer work one at a time; errors are logged, never thrown. */
  private serial(fn: () => Promise<unknown>): void {
    this.busy = this.busy.then(async () => {
      if (this.stopped) return;
      try {
        await fn();
      } catch (err) {
        this.deps.log.warn({ err }, 'scan scheduler step failed');
      }
    });
  }

  private async fire(task: Task, trigger: 'schedule' | 'once'): Promise<string | undefined> {
    try {
      const { scan } = await this.deps.scans.request(task.id, undefined, trigger);
      return scan.id;
    } catch (err) {
      this.deps.log.warn({ err, taskId: task.id }, 'scheduled scan could not be requested');
      return undefined;
    }
  }

  /** Fire every rate schedule that is due. Returns the task ids fired. */
  async tick(): Promise<string[]> {
    const { rows } = await this.deps.pool.query<{ task_id: string }>(
      `UPDATE bb_scan_schedules SET next_run_at = now() + make_interval(secs => rate_seconds), last_fired_at = now(), updated_at = now()
        WHERE rate_seconds IS NOT NULL AND next_run_at <= now() RETURNING task_id`,
    );
    const fired: string[] = [];
    for (const { task_id } of rows) {
      const task = this.deps.tasks.get(task_id);
      if (!task || task.paused || task.schedule.mode !== 'rate') continue;
      if (await this.fire(task, 'schedule')) fired.push(task_id);
    }
    return fired;
  }

  /** Bring bb_scan_schedules, pg-boss cron schedules and this process's cron workers in line with the tasks. */
  async sync(): Promise<void> {
    await this.deps.tasks.load();
    const tasks = this.deps.tasks.all();
    await this.syncRates(tasks);
    await this.syncOnce(tasks);
    await this.syncCron(tasks);
    await this.deps.scans.sweep().catch((err: unknown) => this.deps.log.warn({ err }, 'scan sweep failed'));
  }

  private async syncRates(tasks: Task[]): Promise<void> {
    const rates: { id: string; seconds: number }[] = [];
    for (const task of tasks) {
      if (task.schedule.mode !== 'rate') continue;
      try {
        rates.push({ id: task.id, seconds: parseEvery(task.schedule.every) });
      } catch (err) {
        this.warnOnce(task.id, (err as Error).message);
      }
    }
    for (const r of rates) {
      await this.deps.pool.query(
        `INSERT INTO bb_scan_schedules (task_id, rate_seconds, next_run_at) VALUES ($1, $2, now())
         ON CONFLICT (task_id) DO UPDATE SET rate_seconds = EXCLUDED.rate_seconds,
           next_run_at = CASE WHEN bb_scan_schedules.next_run_at IS NULL THEN now()
                              ELSE LEAST(bb_scan_schedules.next_run_at, now() + make_interval(secs => EXCLUDED.rate_seconds)) END,
           updated_at = now()
         WHERE bb_scan_schedules.rate_seconds IS DISTINCT FROM EXCLUDED.rate_seconds`,
        [r.id, r.seconds],
      );
    }
    await this.deps.pool.query(
      `UPDATE bb_scan_schedules SET rate_seconds = NULL, next_run_at = NULL, updated_at = now()
        WHERE rate_seconds IS NOT NULL AND NOT (task_id = ANY($1::text[]))`,
      [rates.map((r) => r.id)],
    );
  }

  private async syncOnce(tasks: Task[]): Promise<void> {
    for (const task of tasks) {
      if (task.schedule.mode !== 'once' || task.paused) continue;
      const { rows } = await this.deps.pool.query<{ task_id: string }>(
        `INSERT INTO bb_scan_schedules (task_id, once_fired_at) VALUES ($1, now())
         ON CONFLICT (task_id) DO UPDATE SET once_fired_at = now(), updated_at = now()
         WHERE bb_scan_schedules.once_fired_at IS NULL
         RETURNING task_id`,
        [task.id],
      );
      if (rows.length === 0) continue;
      const scanId = await this.fire(task, 'once');
      if (scanId) {
        await this.deps.pool.query('UPDATE bb_scan_schedules SET once_scan_id = $2 WHERE task_id = $1', [task.id, scanId]);
      } else {
        // Not requested after all: let the next sync try again.
        await this.deps.pool.query('UPDATE bb_scan_schedules SET once_fired_at = NULL WHERE task_id = $1', [task.id]);
      }
    }
  }

  private async syncCron(tasks: Task[]): Promise<void> {
    const { boss } = this.deps;
    const wanted = new Map<string, Task & { schedule: { mode: 'cron'; expression: string } }>();
    for (const task of tasks) {
      if (task.schedule.mode === 'cron') wanted.set(cronQueueName(task.id), task as Task & { schedule: { mode: 'cron'; expression: string } });
    }
    const existing = new Map(
      (await boss.getSchedules()).filter((s) => s.name.startsWith(CRON_QUEUE_PREFIX)).map((s) => [s.name, s]),
    );
    for (const [name, task] of wanted) {
      const current = existing.get(name);
      if (!current || current.cron !== task.schedule.expression) {
        try {
          await ensureQueue(boss, name, { policy: 'standard', retryLimit: 0, expireInSeconds: 300, retentionDays: 1 });
          const data: CronJobData = { taskId: task.id };
          await boss.schedule(name, task.schedule.expression, data, { tz: 'UTC' });
          this.deps.log.info({ taskId: task.id, cron: task.schedule.expression }, 'cron scan schedule registered');
        } catch (err) {
          this.warnOnce(task.id, `cron schedule ${JSON.stringify(task.schedule.expression)} refused: ${(err as Error).message}`);
          continue;
        }
      }
      if (!this.cronWorkers.has(name)) {
        await boss.work<CronJobData>(name, { batchSize: 1, pollingIntervalSeconds: this.options.cronPollingIntervalSeconds }, async ([job]) => {
          const t = job ? this.deps.tasks.get(job.data.taskId) : undefined;
          if (!t || t.paused || t.schedule.mode !== 'cron') return { fired: false };
          return { fired: true, scanId: await this.fire(t, 'schedule') };
        });
        this.cronWorkers.add(name);
      }
    }
    for (const name of existing.keys()) {
      if (wanted.has(name)) continue;
      await boss.unschedule(name);
      // pg-boss 10 refuses to drop a queue that still holds jobs (even finished ones); these are only firing marks.
      await this.deps.pool.query('DELETE FROM pgboss.job WHERE name = $1', [name]);
      await boss.deleteQueue(name).catch((err: unknown) => this.deps.log.warn({ err, queue: name }, 'could not delete a cron queue'));
      this.deps.log.info({ queue: name }, 'cron scan schedule removed');
    }
    for (const name of [...this.cronWorkers]) {
      if (wanted.has(name)) continue;
      await boss.offWork(name).catch(() => {});
      this.cronWorkers.delete(name);
    }
  }

  private warnOnce(taskId: string, message: string): void {
    if (this.warned.get(taskId) === message) return;
    this.warned.set(taskId, message);
    this.deps.log.warn({ taskId }, message);
  }
}
