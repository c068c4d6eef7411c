/**
 * A TaskStoreSource for scan tests that need no storage server: each task id
 * maps to two in-memory listers, optionally slowed down per list request.
 */
import type { ObjectStore } from '../../src/storage/object-store.js';
import type { Task } from '../../src/tasks/registry.js';
import type { TaskStoreSource } from '../../src/scan/runner.js';
import { FakeLister, type FakeObject } from './fake-lister.js';

export function slowed(lister: FakeLister, delayMs: () => number): FakeLister {
  const listPage = lister.listPage.bind(lister);
  lister.listPage = async (o) => {
    const ms = delayMs();
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return listPage(o);
  };
  return lister;
}

export class FakeStores implements TaskStoreSource {
  readonly pairs = new Map<string, { source: FakeLister; destination: FakeLister }>();

  set(taskId: string, source: FakeObject[] | FakeLister, destination: FakeObject[] | FakeLister): { source: FakeLister; destination: FakeLister } {
    const pair = {
      source: source instanceof FakeLister ? source : new FakeLister(`${taskId}-src`, source),
      destination: destination instanceof FakeLister ? destination : new FakeLister(`${taskId}-dst`, destination),
    };
    this.pairs.set(taskId, pair);
    return pair;
  }

  for(task: Task): { source: ObjectStore; destination: ObjectStore } {
    const pair = this.pairs.get(task.id) ?? this.set(task.id, [], []);
    return pair as unknown as { source: ObjectStore; destination: ObjectStore };
  }
}

export function numbered(n: number, prefix = 'k/'): FakeObject[] {
  return Array.from({ length: n }, (_, i) => ({ key: `${prefix}${String(i).padStart(6, '0')}`, size: 10, etag: i.toString(16).padStart(32, '0') }));
}
