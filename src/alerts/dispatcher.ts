/**
 * Delivers the alert outbox: each due alert is POSTed, signed with
 * SDK-HMAC-SHA256 (the scheme the intake verifies; auth/signed-client.ts), to
 * its task's receiver. A 2xx marks it delivered; anything else (an error
 * status, a timeout, a refused connection) schedules another attempt with
 * exponential backoff, up to a limit. It runs on its own timer in every
 * process: nothing in replication waits for it.
 */
import type { Logger } from 'pino';
import { signedPost } from '../auth/signed-client.js';
import type { TaskRegistry } from '../tasks/registry.js';
import type { AlertRepo, OutboxRow } from './repo.js';

export interface DispatcherOptions {
  /** How often to look for due alerts when nothing wakes the dispatcher. */
  intervalMs: number;
  /** Backoff base: attempt n waits base × 2^(n-1) seconds, at most `maxBackoffSeconds`. */
  retryBaseSeconds: number;
  maxBackoffSeconds?: number;
  /** Attempts before an alert is abandoned (logged as an error). */
  maxAttempts?: number;
  /** Time one delivery may take. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class AlertDispatcher {
  private running = false;
  private loop?: Promise<void>;
  private wakeUp?: () => void;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly maxBackoff: number;
  /** Counters for tests and metrics. */
  readonly stats = { delivered: 0, failedAttempts: 0, abandoned: 0 };

  constructor(
    private readonly repo: AlertRepo,
    private readonly tasks: TaskRegistry,
    private readonly log: Logger,
    private readonly options: DispatcherOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxAttempts = options.maxAttempts ?? 30;
    this.maxBackoff = options.maxBackoffSeconds ?? 300;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Look now (an alert was just raised in this process). */
  wake(): void {
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let busy = false;
      try {
        busy = await this.deliverDue();
      } catch (err) {
        this.log.warn({ err }, 'alert delivery step failed');
      }
      if (!this.running) break;
      if (busy) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.options.intervalMs);
        timer.unref();
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wakeUp = done;
      });
      this.wakeUp = undefined;
    }
  }

  /** Deliver one batch of due alerts; true when there may be more due right away. */
  async deliverDue(): Promise<boolean> {
    const batch = await this.repo.claim(10, Math.ceil(this.timeoutMs / 1000) + 5);
    // Deliveries of one batch run side by side: a slow receiver costs one timeout, not ten.
    await Promise.all(batch.map((row) => this.deliver(row)));
    return batch.length === 10;
  }

  private backoffSeconds(attempts: number): number {
    return Math.min(this.maxBackoff, this.options.retryBaseSeconds * 2 ** Math.max(0, attempts - 1));
  }

  private async deliver(row: OutboxRow): Promise<void> {
    const log = this.log.child({ alertId: row.id, taskId: row.taskId, alert: row.kind, attempt: row.attempts });
    const config = this.tasks.get(row.taskId)?.options.alerts;
    let error: string;
    if (!config) {
      error = 'the task no longer exists or has no alerts configured';
    } else {
      const secret = (this.options.env ?? process.env)[config.secretEnv];
      if (!secret) {
        error = `env var ${config.secretEnv} (alert signing secret) is not set`;
      } else {
        const body = JSON.stringify({ id: `bb-alert-${row.id}`, ...row.payload });
        try {
          const res = await signedPost(config.url, body, { accessKeyId: config.accessKeyId, secret }, { timeoutMs: this.timeoutMs });
          if (res.status >= 200 && res.status < 300) {
            await this.repo.delivered(row.id);
            this.stats.delivered++;
            log.info({ status: res.status }, 'alert delivered');
            return;
          }
          error = `receiver answered ${res.status}: ${res.text.slice(0, 200)}`;
        } catch (err) {
          error = `delivery failed: ${(err as Error).message}`;
        }
      }
    }
    // A missing task may be one another process just created: retried like any failure.
    const abandon = row.attempts >= this.maxAttempts;
    const retryIn = this.backoffSeconds(row.attempts);
    this.stats.failedAttempts++;
    if (abandon) this.stats.abandoned++;
    await this.repo.failed(row.id, error, retryIn, abandon);
    if (abandon) log.error({ error }, 'alert abandoned');
    else log.warn({ error, retryInSeconds: retryIn }, 'alert delivery failed; will retry');
  }
}
