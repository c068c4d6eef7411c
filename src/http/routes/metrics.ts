/** Prometheus text exposition. Unauthenticated: bind the service to a private interface. */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export async function registerMetricsRoute(app: FastifyInstance, registry: Registry): Promise<void> {
  app.get(
    '/metrics',
    { schema: { operationId: 'getMetrics', summary: 'Prometheus metrics', tags: ['health'], produces: ['text/plain'], response: { 200: { type: 'string' } } } },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
}
