/**
 * One pair of storage clients per task (and one per marker bucket), reused
 * across jobs for keep-alive connections, rebuilt when a task's endpoints or
 * limits change.
 *
 * A task with `options.limits` gets its source and destination wrapped by
 * throttledStore (src/limits/throttle.ts) sharing one TaskLimiter over the
 * PostgreSQL token bucket: requests on both sides take request tokens, bytes
 * read from the source take byte tokens. Every caller (replication, scans)
 * then honours the limits without knowing of them. Marker writes are not
 * throttled: one empty object per key, and they must not wait behind a copy.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { EndpointConfig } from '../config/types.js';
import { throttledStore, TaskLimiter } from '../limits/throttle.js';
import { PgTokenBucket } from '../limits/token-bucket.js';
import { createStore } from '../storage/create-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Task } from '../tasks/registry.js';
import { MarkerWriter } from './markers.js';

export interface TaskStores {
  source: ObjectStore;
  destination: ObjectStore;
  markers?: MarkerWriter;
}

interface Entry {
  signature: string;
  stores: TaskStores;
  all: ObjectStore[];
}

export interface StoreCacheOptions {
  /** The database holding the shared token buckets. Without it, task limits cannot be applied (logged once per task). */
  pool?: pg.Pool;
}

export class StoreCache {
  private entries = new Map<string, Entry>();
  private readonly buckets: PgTokenBucket | undefined;
  private readonly warned = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
    options: StoreCacheOptions = {},
  ) {
    this.buckets = options.pool ? new PgTokenBucket(options.pool) : undefined;
  }

  for(task: Task): TaskStores {
    const signature = JSON.stringify([task.source, task.destination, task.options.markers, task.options.limits ?? null]);
    const existing = this.entries.get(task.id);
    if (existing && existing.signature === signature) return existing.stores;
    if (existing) void Promise.all(existing.all.map((s) => s.close()));
    let source = createStore(task.source, this.env);
    let destination = createStore(task.destination, this.env);
    // Closing the wrappers closes these; the raw clients are what `all` releases.
    const all = [source, destination];
    const limits = task.options.limits;
    if (limits) {
      if (this.buckets) {
        const limiter = new TaskLimiter(this.buckets, task.id, limits);
        source = throttledStore(source, limiter, { countBytes: true });
        destination = throttledStore(destination, limiter, { countBytes: false });
      } else if (!this.warned.has(task.id)) {
        this.warned.add(task.id);
        this.log.warn({ taskId: task.id }, 'task limits are not applied: this store cache has no database pool');
      }
    }
    let markers: MarkerWriter | undefined;
    const m = task.options.markers;
    if (m) {
      const side: EndpointConfig = m.side === 'source' ? task.source : task.destination;
      const store = createStore({ ...side, bucket: m.bucket }, this.env);
      all.push(store);
      markers = new MarkerWriter(store, m.prefix, task.id, this.log);
    }
    const stores = { source, destination, markers };
    this.entries.set(task.id, { signature, stores, all });
    return stores;
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()].flatMap((e) => e.all);
    this.entries.clear();
    await Promise.allSettled(all.map((s) => s.close()));
  }
}
