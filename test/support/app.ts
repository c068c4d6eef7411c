/**
 * The service's HTTP app for tests, with what every test shares filled in (no
 * API senders, a 900 s skew window, fresh metrics, never shutting down,
 * version "test"): pass what differs.
 */
import type { FastifyInstance } from 'fastify';
import { SenderDirectory } from '../../src/auth/senders.js';
import { buildApp, type AppDeps } from '../../src/http/app.js';
import { createMetrics } from '../../src/metrics.js';

type Shared = 'senders' | 'maxSkewSeconds' | 'metrics' | 'metricsRegistry' | 'isShuttingDown' | 'version';

export function buildTestApp(deps: Omit<AppDeps, Shared> & Partial<Pick<AppDeps, Shared>>): Promise<FastifyInstance> {
  const { metrics, metricsRegistry, ...rest } = deps;
  const shared = metrics && metricsRegistry ? { intake: metrics, registry: metricsRegistry } : createMetrics();
  return buildApp({
    senders: new SenderDirectory(),
    maxSkewSeconds: 900,
    isShuttingDown: () => false,
    version: 'test',
    ...rest,
    metrics: shared.intake,
    metricsRegistry: shared.registry,
  });
}
