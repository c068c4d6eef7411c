/**
 * OMS-layout marker objects: empty objects at
 * `{prefix}/{task_id}/success_object/{key}` and `.../failed_object/{key}`.
 * The database rows are the source of truth; markers are a convenience for
 * people who audit from the bucket, so a marker write failure is logged and
 * never fails the copy.
 */
import type { Logger } from 'pino';
import type { ObjectStore } from '../storage/object-store.js';

export function markerKey(prefix: string, taskId: string, kind: 'success' | 'failed', key: string): string {
  const base = prefix.replace(/\/+$/, '');
  return `${base ? `${base}/` : ''}${taskId}/${kind}_object/${key}`;
}

export class MarkerWriter {
  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
    private readonly taskId: string,
    private readonly log: Logger,
  ) {}

  async success(key: string): Promise<void> {
    await this.write(key, 'success', 'failed');
  }

  async failed(key: string): Promise<void> {
    await this.write(key, 'failed', 'success');
  }

  private async write(key: string, kind: 'success' | 'failed', stale: 'success' | 'failed'): Promise<void> {
    try {
      await this.store.put(markerKey(this.prefix, this.taskId, kind, key), Buffer.alloc(0), 0, {});
      await this.store.delete(markerKey(this.prefix, this.taskId, stale, key));
    } catch (err) {
      this.log.warn({ err, key, marker: kind }, 'marker write failed');
    }
  }
}
