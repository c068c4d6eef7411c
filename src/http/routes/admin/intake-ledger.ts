/** GET /admin/intake: the intake ledger (every accepted notification request), newest first. */
import type { FastifyInstance } from 'fastify';
import type { AdminContext } from './context.js';
import { authErrors, errorRef, ledgerEntrySchema, pageSchema, paginationQuery, ref } from './schemas.js';

export async function registerIntakeLedgerRoutes(app: FastifyInstance, ctx: AdminContext): Promise<void> {
  app.get(
    '/intake',
    {
      schema: {
        operationId: 'listIntakeLedger',
        summary: 'Accepted intake requests, newest first, keyset-paginated; filter by sender and/or task',
        description: 'Scope bb:read. Follow nextCursor with the same filters (400 INVALID_CURSOR otherwise).',
        tags: ['admin: intake'],
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            sender: { type: 'string', maxLength: 128, description: 'access key id' },
            task: { type: 'string', maxLength: 128, description: 'task id' },
            ...paginationQuery,
          },
        },
        response: { 200: pageSchema(ref(ledgerEntrySchema)), 400: { description: 'VALIDATION_FAILED, INVALID_CURSOR', ...errorRef }, ...authErrors },
      },
    },
    async (request) => {
      const q = request.query as { sender?: string; task?: string; limit: number; cursor?: string };
      const filters = { sender: q.sender ?? null, task: q.task ?? null };
      const beforeId = q.cursor === undefined ? undefined : (ctx.cursors.decode(q.cursor, 'intake', filters, 'number') as number);
      const page = await ctx.ledger.list({ sender: q.sender, taskId: q.task, beforeId, limit: q.limit });
      const last = page.rows.at(-1);
      return {
        items: page.rows.map((r) => ({ ...r, receivedAt: r.receivedAt.toISOString() })),
        nextCursor: page.more && last ? ctx.cursors.encode('intake', filters, last.id) : null,
      };
    },
  );
}
