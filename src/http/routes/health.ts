/** Liveness and readiness. Readiness means the database and the queue answer. */
import type { FastifyInstance } from 'fastify';
import type PgBoss from 'pg-boss';
import type pg from 'pg';

const statusSchema = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    checks: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function registerHealthRoutes(
  app: FastifyInstance,
  deps: { pool: pg.Pool; boss: PgBoss; isShuttingDown: () => boolean },
): Promise<void> {
  app.get('/healthz', { schema: { operationId: 'getHealth', summary: 'Liveness: the process is up', tags: ['health'], response: { 200: statusSchema } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadiness',
        summary: 'Readiness: database and queue reachable',
        tags: ['health'],
        response: { 200: statusSchema, 503: statusSchema },
      },
    },
    async (_request, reply) => {
      const checks: Record<string, string> = {};
      let ready = !deps.isShuttingDown();
      if (!ready) checks.process = 'shutting down';
      try {
        await withTimeout(deps.pool.query('SELECT 1'), 2_000);
        checks.database = 'ok';
      } catch (err) {
        ready = false;
        checks.database = (err as Error).message;
      }
      try {
        await withTimeout(deps.boss.getQueueSize('bb-replicate'), 2_000);
        checks.queue = 'ok';
      } catch (err) {
        ready = false;
        checks.queue = (err as Error).message;
      }
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
    },
  );
}
