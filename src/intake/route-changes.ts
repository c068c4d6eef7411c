/**
 * Decides which task each notified key belongs to. An explicit task wins;
 * otherwise the change's bucket selects the sender's task(s) with that source
 * bucket. Keys outside a task's prefixes are ignored with a reason, not queued.
 */
import type { ReplicateJob } from '../queue/boss.js';
import type { ObjectChange } from '../events/object-change.js';
import { TaskRegistry, type Task } from '../tasks/registry.js';
import type { Sender } from '../auth/senders.js';
import { AppError } from '../errors.js';

export interface RoutedChanges {
  jobs: ReplicateJob[];
  ignored: { reason: string; count: number }[];
  /** The task, when the request named one. */
  taskId?: string;
}

export function routeChanges(
  changes: ObjectChange[],
  sender: Sender,
  registry: TaskRegistry,
  explicitTaskId: string | undefined,
  alreadyIgnored: { reason: string; count: number }[] = [],
): RoutedChanges {
  const ignored = new Map<string, number>(alreadyIgnored.map((i) => [i.reason, i.count]));
  const ignore = (reason: string) => ignored.set(reason, (ignored.get(reason) ?? 0) + 1);
  let explicit: Task | undefined;
  if (explicitTaskId !== undefined) {
    if (!sender.tasks.includes(explicitTaskId)) {
      throw new AppError(403, 'TASK_FORBIDDEN', `access key ${sender.accessKeyId} may not feed task ${explicitTaskId}`);
    }
    explicit = registry.get(explicitTaskId);
    if (!explicit) throw new AppError(404, 'TASK_NOT_FOUND', `task ${explicitTaskId} does not exist`);
  }
  const jobs: ReplicateJob[] = [];
  for (const change of changes) {
    let targets: Task[];
    if (explicit) targets = [explicit];
    else if (change.bucket === undefined) {
      throw new AppError(400, 'TASK_REQUIRED', 'this notification names no bucket: pass ?task=ID');
    } else {
      targets = registry.bySourceBucket(change.bucket, sender.tasks);
      if (targets.length === 0) {
        ignore(`no task of this sender has source bucket ${change.bucket}`);
        continue;
      }
    }
    for (const task of targets) {
      if (!TaskRegistry.keyInScope(task, change.key)) {
        ignore('outside the task prefixes');
        continue;
      }
      jobs.push({ taskId: task.id, key: change.key, trigger: 'event', kind: change.kind });
    }
  }
  return {
    jobs,
    ignored: [...ignored.entries()].map(([reason, count]) => ({ reason, count })),
    taskId: explicit?.id,
  };
}
