/**
 * Keeps the in-memory registries (tasks, senders) of every process current.
 * A statement trigger bumps bb_registry_versions.version on any write to
 * bb_tasks / bb_senders (migration 004); each process polls that two-row
 * table every few seconds and reloads a registry whose version moved.
 *
 * Chosen over LISTEN/NOTIFY: one indexed read per interval per process, no
 * dedicated connection to keep alive and re-LISTEN after an outage (a missed
 * NOTIFY would leave a process stale until the next change), works through
 * transaction-pooling proxies, and catches writes made outside the service.
 * The process that makes a change through the admin API reloads at once.
 */
import type pg from 'pg';
import type { Logger } from 'pino';

export type Reloader = () => Promise<void>;

export class RegistryRefresher {
  private readonly seen = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly reloaders: Record<string, Reloader>,
    private readonly options: { intervalMs: number; log?: Logger },
  ) {}

  private async versions(): Promise<Map<string, string>> {
    const { rows } = await this.pool.query<{ name: string; version: string }>('SELECT name, version::text AS version FROM bb_registry_versions');
    return new Map(rows.map((r) => [r.name, r.version]));
  }

  /** Read the versions, load every registry, then poll. Versions are read first so no change can slip between. */
  async start(): Promise<void> {
    const versions = await this.versions();
    for (const [name, reload] of Object.entries(this.reloaders)) {
      await reload();
      const v = versions.get(name);
      if (v !== undefined) this.seen.set(name, v);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.check()
        .then(() => undefined)
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** One poll: reload the registries whose version changed. Never throws; returns the names reloaded. */
  async check(): Promise<string[]> {
    const reloaded: string[] = [];
    try {
      const versions = await this.versions();
      for (const [name, reload] of Object.entries(this.reloaders)) {
        const v = versions.get(name);
        if (v === undefined || v === this.seen.get(name)) continue;
        await reload();
        this.seen.set(name, v);
        reloaded.push(name);
      }
      if (this.failing) this.options.log?.info('registry refresh recovered');
      this.failing = false;
    } catch (err) {
      // Database down: keep serving from memory, say so once per outage.
      if (!this.failing) this.options.log?.warn({ err }, 'registry refresh failed; serving the last loaded tasks and senders');
      this.failing = true;
    }
    return reloaded;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
