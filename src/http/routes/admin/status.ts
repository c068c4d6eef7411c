/**
 * Replication status and repair of one task: aggregate status, the per-object
 * records (keyset-paginated with signed cursors), one object with its job, and
 * re-queueing one key or every failed key (trigger 'retry').
 *
 * Keys travel as ONE URL-encoded path segment: `photos/a b.jpg` is
 * `/admin/tasks/t/objects/photos%2Fa%20b.jpg` (encodeURIComponent), so the
 * `/retry` suffix can never be mistaken for part of a key.
 */
import type { FastifyInstance } from 'fastify';
import type { ObjectStatus, ObjectStatusRow } from '../../../db/object-status-repo.js';
import { OBJECT_STATUSES } from '../../../db/task-status-repo.js';
import { AppError } from '../../../errors.js';
import { QUEUES, replicateSingletonKey } from '../../../queue/boss.js';
import { enqueueReplications } from '../../../queue/enqueue.js';
import { TaskRegistry } from '../../../tasks/registry.js';
import type { AdminContext } from './context.js';
import {
  authErrors,
  errorRef,
  notFoundError,
  objectDetailSchema,
  objectKeyParams,
  objectSchema,
  pageSchema,
  paginationQuery,
  ref,
  retryResultSchema,
  statusSchema,
  taskIdParams,
} from './schemas.js';

const tags = ['admin: status'];
const security = [{ bearer: [] }];
const RETRY_BATCH = 500;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function objectView(r: ObjectStatusRow) {
  return {
    key: r.key,
    status: r.status,
    attempts: r.attempts,
    bytes: r.bytes,
    sourceEtag: r.sourceEtag,
    sourceCrc64: r.sourceCrc64,
    destinationEtag: r.destinationEtag,
    durationMs: r.durationMs,
    lastError: r.lastErrorCode || r.lastErrorMessage ? { code: r.lastErrorCode, message: r.lastErrorMessage } : null,
    firstSeenAt: r.firstSeenAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    completedAt: iso(r.completedAt),
  };
}

export async function registerStatusRoutes(app: FastifyInstance, ctx: AdminContext): Promise<void> {
  app.get(
    '/tasks/:id/status',
    {
      schema: {
        operationId: 'getTaskStatus',
        summary: 'Replication status of a task: counts, bytes, jobs, lag, last success and failure, 5-minute throughput',
        description:
          'Scope bb:read. lagSeconds is the age of the oldest change not yet replicated: the oldest queued, retrying or running job ' +
          '(counted from its first enqueue) or the oldest pending status row; 0 when nothing is outstanding.',
        tags,
        security,
        params: taskIdParams,
        response: { 200: ref(statusSchema), 404: notFoundError, ...authErrors },
      },
    },
    async (request) => {
      const task = await ctx.tasks.require((request.params as { id: string }).id);
      const s = await ctx.statusRepo.status(task.id);
      return {
        taskId: task.id,
        paused: task.paused,
        ...s,
        oldestUnreplicatedAt: iso(s.oldestUnreplicatedAt),
        lastSuccess: s.lastSuccess && { ...s.lastSuccess, at: s.lastSuccess.at.toISOString() },
        lastFailure: s.lastFailure && { ...s.lastFailure, at: s.lastFailure.at.toISOString() },
      };
    },
  );

  app.get(
    '/tasks/:id/objects',
    {
      schema: {
        operationId: 'listTaskObjects',
        summary: 'Per-object records of a task, in key order, keyset-paginated',
        description: 'Scope bb:read. Follow nextCursor with the same filters; a cursor that was altered or belongs to other filters is refused (400 INVALID_CURSOR).',
        tags,
        security,
        params: taskIdParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: [...OBJECT_STATUSES] },
            prefix: { type: 'string', maxLength: 1024 },
            ...paginationQuery,
          },
        },
        response: { 200: pageSchema(ref(objectSchema)), 400: { description: 'VALIDATION_FAILED, INVALID_CURSOR', ...errorRef }, 404: notFoundError, ...authErrors },
      },
    },
    async (request) => {
      const task = await ctx.tasks.require((request.params as { id: string }).id);
      const q = request.query as { status?: ObjectStatus; prefix?: string; limit: number; cursor?: string };
      const filters = { task: task.id, status: q.status ?? null, prefix: q.prefix || null };
      const afterKey = q.cursor === undefined ? undefined : (ctx.cursors.decode(q.cursor, 'objects', filters, 'string') as string);
      const page = await ctx.objects.list({ taskId: task.id, status: q.status, prefix: q.prefix, afterKey, limit: q.limit });
      const last = page.rows.at(-1);
      return {
        items: page.rows.map(objectView),
        nextCursor: page.more && last ? ctx.cursors.encode('objects', filters, last.key) : null,
      };
    },
  );

  app.get(
    '/tasks/:id/objects/:key',
    {
      schema: {
        operationId: 'getTaskObject',
        summary: 'One object: its status record (attempts, last error, checksums) and its pending job',
        description: 'Scope bb:read. The key is URL-encoded as one path segment (slashes as %2F).',
        tags,
        security,
        params: objectKeyParams,
        response: { 200: ref(objectDetailSchema), 404: notFoundError, ...authErrors },
      },
    },
    async (request) => {
      const { id, key } = request.params as { id: string; key: string };
      const task = await ctx.tasks.require(id);
      const [record, jobs] = await Promise.all([
        ctx.objects.get(task.id, key),
        ctx.pool.query<{ id: string; state: 'created' | 'retry' | 'active'; createdOn: Date; startAfter: Date; startedOn: Date | null; retryCount: number; retryLimit: number }>(
          `SELECT id, state::text AS state, created_on AS "createdOn", start_after AS "startAfter", started_on AS "startedOn",
                  retry_count AS "retryCount", retry_limit AS "retryLimit"
             FROM pgboss.job WHERE name = $1 AND singleton_key = $2 AND state IN ('created', 'retry', 'active')
            ORDER BY created_on LIMIT 1`,
          [QUEUES.replicate, replicateSingletonKey(task.id, key)],
        ),
      ]);
      const job = jobs.rows[0];
      if (!record && !job) throw new AppError(404, 'NOT_FOUND', `task ${task.id} has no record of key ${JSON.stringify(key)}`);
      return {
        taskId: task.id,
        key,
        status: record?.status ?? null,
        record: record ? objectView(record) : null,
        job: job
          ? { ...job, createdOn: job.createdOn.toISOString(), startAfter: job.startAfter.toISOString(), startedOn: iso(job.startedOn) }
          : null,
      };
    },
  );

  app.post(
    '/tasks/:id/objects/:key/retry',
    {
      schema: {
        operationId: 'retryTaskObject',
        summary: 'Re-queue one key (trigger retry)',
        description:
          'Scope bb:write. The worker reconciles the key again from the current state of both sides. A key already queued counts as a duplicate. ' +
          'A paused task queues the job and copies once resumed. Keys outside the task prefixes: 400 KEY_OUT_OF_SCOPE.',
        tags,
        security,
        params: objectKeyParams,
        response: { 202: ref(retryResultSchema), 400: { description: 'KEY_OUT_OF_SCOPE, VALIDATION_FAILED', ...errorRef }, 404: notFoundError, ...authErrors },
      },
    },
    async (request, reply) => {
      const { id, key } = request.params as { id: string; key: string };
      const task = await ctx.tasks.require(id);
      if (!TaskRegistry.keyInScope(task, key)) {
        throw new AppError(400, 'KEY_OUT_OF_SCOPE', `key ${JSON.stringify(key)} is outside the prefixes of task ${task.id}`);
      }
      const r = await enqueueReplications(ctx.boss, ctx.pool, [{ taskId: task.id, key, trigger: 'retry' }]);
      return reply.code(202).send({ queued: r.accepted, duplicates: r.duplicates });
    },
  );

  app.post(
    '/tasks/:id/retry-failed',
    {
      schema: {
        operationId: 'retryFailedObjects',
        summary: 'Re-queue every failed key of a task (trigger retry)',
        description: 'Scope bb:write. Answers how many failed keys were found, newly queued, and already queued.',
        tags,
        security,
        params: taskIdParams,
        response: { 202: ref(retryResultSchema), 404: notFoundError, ...authErrors },
      },
    },
    async (request, reply) => {
      const task = await ctx.tasks.require((request.params as { id: string }).id);
      let after: string | undefined;
      const total = { failed: 0, queued: 0, duplicates: 0 };
      for (;;) {
        const keys = await ctx.objects.keysWithStatus(task.id, 'failed', after, RETRY_BATCH);
        if (keys.length === 0) break;
        const r = await enqueueReplications(
          ctx.boss,
          ctx.pool,
          keys.map((key) => ({ taskId: task.id, key, trigger: 'retry' as const })),
        );
        total.failed += keys.length;
        total.queued += r.accepted;
        total.duplicates += r.duplicates;
        after = keys.at(-1);
        if (keys.length < RETRY_BATCH) break;
      }
      request.log.info({ taskId: task.id, ...total }, 'failed keys re-queued');
      return reply.code(202).send(total);
    },
  );
}
