/**
 * One pair of storage clients per task (and one per marker bucket), reused
 * across jobs for keep-alive connections, rebuilt when a task's endpoints change.
 */
import type { Logger } from 'pino';
import type { EndpointConfig } from '../config/types.js';
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

export class StoreCache {
  private entries = new Map<string, Entry>();

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  for(task: Task): TaskStores {
    const signature = JSON.stringify([task.source, task.destination, task.options.markers]);
    const existing = this.entries.get(task.id);
    if (existing && existing.signature === signature) return existing.stores;
    if (existing) void Promise.all(existing.all.map((s) => s.close()));
    const source = createStore(task.source, this.env);
    const destination = createStore(task.destination, this.env);
    const all = [source, destination];
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
