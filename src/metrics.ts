/**
 * Prometheus metrics (prom-client): one registry per process, passed to the
 * modules that report, never a global, so tests can build several apps.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IntakeMetrics } from './http/routes/intake-metrics.js';

export interface ReplicationMetrics {
  objectDone(taskId: string, outcome: string, bytes: number, seconds: number): void;
  integrityMismatch(taskId: string, side: 'source' | 'destination'): void;
}

export interface Metrics {
  registry: Registry;
  intake: IntakeMetrics;
  replication: ReplicationMetrics;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'bb_process_' });
  const notifications = new Counter({
    name: 'bb_notifications_total',
    help: 'Notification requests received, by format and outcome (accepted, replayed or an error code)',
    labelNames: ['format', 'outcome'],
    registers: [registry],
  });
  const keys = new Counter({
    name: 'bb_notification_keys_total',
    help: 'Keys in accepted notifications, by result (queued or duplicate)',
    labelNames: ['format', 'result'],
    registers: [registry],
  });
  const objects = new Counter({
    name: 'bb_objects_replicated_total',
    help: 'Reconciled keys by task and final outcome of the attempt',
    labelNames: ['task', 'outcome'],
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'bb_bytes_replicated_total',
    help: 'Bytes written to destinations, by task',
    labelNames: ['task'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'bb_copy_duration_seconds',
    help: 'Time to reconcile one key, by task and outcome',
    labelNames: ['task', 'outcome'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  const mismatches = new Counter({
    name: 'bb_integrity_mismatches_total',
    help: 'Checksum mismatches detected (the attempt is failed and retried)',
    labelNames: ['task', 'side'],
    registers: [registry],
  });
  return {
    registry,
    intake: {
      notification(format, outcome, accepted = 0, duplicates = 0) {
        notifications.inc({ format, outcome });
        if (accepted) keys.inc({ format, result: 'queued' }, accepted);
        if (duplicates) keys.inc({ format, result: 'duplicate' }, duplicates);
      },
    },
    replication: {
      objectDone(taskId, outcome, n, seconds) {
        objects.inc({ task: taskId, outcome });
        if (n > 0) bytes.inc({ task: taskId }, n);
        duration.observe({ task: taskId, outcome }, seconds);
      },
      integrityMismatch(taskId, side) {
        mismatches.inc({ task: taskId, side });
      },
    },
  };
}
