/**
 * Alerts (task option `alerts: { url, secretEnv, lagSeconds }`): BucketBridge
 * POSTs a signed JSON alert to the task's receiver when
 *  - a key fails permanently (`key_failed`, raised by the worker that gave up);
 *  - the task's dead-letter queue becomes non-empty (`dead_letter`);
 *  - replication lag passes `lagSeconds` (`replication_lag`);
 * the last two found by a monitor that polls the queue (the same figures as
 * /metrics and the admin status, db/task-status-repo.ts) in every process.
 *
 * Raising is one short transaction (repo.ts): deduplicated per (task, kind,
 * key) over `dedupeSeconds`, rate-limited per task to `maxPerMinute` (the held
 * back ones are counted into the next alert as `suppressed`), written to an
 * outbox. Delivery (dispatcher.ts) is separate, retried with backoff, and
 * never on the replication path: a worker only ever waits for the insert, and
 * not even for that when the database refuses it (the monitor will see the
 * dead letter later).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { AlertsConfig } from '../config/types.js';
import type { TaskStatusRepo } from '../db/task-status-repo.js';
import type { Task, TaskRegistry } from '../tasks/registry.js';
import { AlertDispatcher } from './dispatcher.js';
import { AlertRepo, type AlertKind, type AlertPayload, type RaiseResult } from './repo.js';

export { AlertRepo } from './repo.js';
export type { AlertKind, AlertPayload, RaiseResult } from './repo.js';

export interface AlertsOptions {
  pool: pg.Pool;
  tasks: TaskRegistry;
  statuses: TaskStatusRepo;
  log: Logger;
  /** How often the monitor checks dead letters and lag. Default 15 s. */
  pollIntervalMs?: number;
  /** How often the dispatcher looks for due alerts when not woken. Default 5 s. */
  deliveryIntervalMs?: number;
  /** Backoff base of failed deliveries. Default 5 s. */
  retryBaseSeconds?: number;
  env?: NodeJS.ProcessEnv;
}

/** What a worker calls when it gives a key up. */
export interface KeyFailureAlerts {
  keyFailed(task: Task, key: string, failure: { code: string; message: string; attempts: number }): Promise<void>;
}

export class Alerts implements KeyFailureAlerts {
  readonly repo: AlertRepo;
  readonly dispatcher: AlertDispatcher;
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;

  constructor(private readonly o: AlertsOptions) {
    this.repo = new AlertRepo(o.pool);
    this.dispatcher = new AlertDispatcher(this.repo, o.tasks, o.log, {
      intervalMs: o.deliveryIntervalMs ?? 5_000,
      retryBaseSeconds: o.retryBaseSeconds ?? 5,
      ...(o.env ? { env: o.env } : {}),
    });
  }

  start(): void {
    this.dispatcher.start();
    this.timer = setInterval(() => {
      this.polling ??= this.poll()
        .catch((err: unknown) => this.o.log.warn({ err }, 'alert monitor step failed'))
        .finally(() => (this.polling = undefined));
    }, this.o.pollIntervalMs ?? 15_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.polling;
    await this.dispatcher.stop();
  }

  /** Never throws: an alert that cannot be written is logged, and the dead-letter alert still follows. */
  async keyFailed(task: Task, key: string, failure: { code: string; message: string; attempts: number }): Promise<void> {
    const config = task.options.alerts;
    if (!config) return;
    await this.raise(config, {
      type: 'key_failed',
      taskId: task.id,
      summary: `${task.id}: ${key} failed permanently (${failure.code})`,
      raisedAt: new Date().toISOString(),
      key,
      error: { code: failure.code, message: failure.message.slice(0, 1000) },
      attempts: failure.attempts,
    }, `key_failed:${key}`);
  }

  private async raise(config: AlertsConfig, payload: AlertPayload, dedupeKey: string, client?: pg.PoolClient): Promise<RaiseResult | undefined> {
    try {
      const r = await this.repo.raise(config, payload, dedupeKey, client);
      if (r.raised) {
        this.o.log.info({ taskId: payload.taskId, alert: payload.type, alertId: r.id }, 'alert raised');
        if (!client) this.dispatcher.wake();
      } else {
        this.o.log.debug({ taskId: payload.taskId, alert: payload.type, reason: r.reason }, 'alert not raised');
      }
      return r;
    } catch (err) {
      if (client) throw err;
      this.o.log.warn({ err, taskId: payload.taskId, alert: payload.type }, 'could not record an alert');
      return undefined;
    }
  }

  /** One look at every task with alerts: dead letters and lag. */
  async poll(): Promise<void> {
    const watched = this.o.tasks.all().filter((t) => t.options.alerts);
    if (watched.length === 0) return;
    const snapshot = await this.o.statuses.queueSnapshot();
    let raised = false;
    for (const task of watched) {
      const config = task.options.alerts!;
      const dead = snapshot.jobs.filter((j) => j.task === task.id && j.state === 'failed').reduce((n, j) => n + j.count, 0);
      const lag = snapshot.lag.find((l) => l.task === task.id)?.seconds ?? 0;
      const checks: { kind: AlertKind; active: boolean; payload: () => AlertPayload }[] = [
        {
          kind: 'dead_letter',
          active: dead > 0,
          payload: () => ({ type: 'dead_letter', taskId: task.id, summary: `${task.id}: ${dead} key(s) in the dead-letter queue`, raisedAt: new Date().toISOString(), deadLetters: dead }),
        },
      ];
      if (config.lagSeconds !== undefined) {
        // Rounded up: a lag of 2.03 s over a 2 s threshold must not read "2 s is over 2 s".
        const shown = Math.ceil(lag * 10) / 10;
        checks.push({
          kind: 'replication_lag',
          active: lag > config.lagSeconds,
          payload: () => ({
            type: 'replication_lag',
            taskId: task.id,
            summary: `${task.id}: replication lag ${shown} s is over ${config.lagSeconds} s`,
            raisedAt: new Date().toISOString(),
            lagSeconds: shown,
            thresholdSeconds: config.lagSeconds,
          }),
        });
      }
      for (const check of checks) {
        raised = (await this.transition(task.id, check.kind, check.active, config, check.payload)) || raised;
      }
    }
    if (raised) this.dispatcher.wake();
  }

  /** The condition's new state and, when it just became true, its alert: one transaction. */
  private async transition(taskId: string, kind: AlertKind, active: boolean, config: AlertsConfig, payload: () => AlertPayload): Promise<boolean> {
    const c = await this.o.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const due = await this.repo.transition(c, taskId, kind, active);
      const r = due ? await this.raise(config, payload(), kind, c) : undefined;
      await c.query('COMMIT');
      return r?.raised === true;
    } catch (err) {
      await c.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      c.release(broken);
    }
  }
}
