/**
 * Tasks: list, get, create, replace, delete, pause, resume. Bodies are checked
 * by validateTask(), exactly as config-file tasks are (schema, schedule rules,
 * credential env vars present on this server, no replication loop). Tasks from
 * the config file are listed with managedBy "config" and are read-only here.
 */
import type { FastifyInstance } from 'fastify';
import { validateTask } from '../../../config/validate.js';
import type { TaskRecord } from '../../../tasks/registry.js';
import { AppError } from '../../../errors.js';
import { validated, type AdminContext } from './context.js';
import { authErrors, errorRef, mediaTypeError, notFoundError, readOnlyError, ref, taskIdParams, taskInputSchema, taskRecordSchema, taskUpdateBodySchema } from './schemas.js';

const tags = ['admin: tasks'];
const security = [{ bearer: [] }];

function view(t: TaskRecord) {
  return { ...t, createdAt: t.createdAt.toISOString(), updatedAt: t.updatedAt.toISOString() };
}

export async function registerTaskRoutes(app: FastifyInstance, ctx: AdminContext): Promise<void> {
  app.get(
    '/tasks',
    {
      schema: {
        operationId: 'listTasks',
        summary: 'List tasks (config-file and API-managed)',
        description: 'Scope bb:read.',
        tags,
        security,
        response: {
          200: { type: 'object', required: ['tasks'], properties: { tasks: { type: 'array', items: ref(taskRecordSchema) } } },
          ...authErrors,
        },
      },
    },
    async () => ({ tasks: (await ctx.tasks.list()).map(view) }),
  );

  app.post(
    '/tasks',
    {
      schema: {
        operationId: 'createTask',
        summary: 'Create a task',
        description:
          'Scope bb:write. The body is a task exactly as in the config file; credentials name env vars that must be set on the server. ' +
          'A destination that is its own source (same provider, endpoint, bucket, overlapping prefixes) is refused with REPLICATION_LOOP.',
        tags,
        security,
        body: ref(taskInputSchema),
        response: {
          201: ref(taskRecordSchema),
          400: { description: 'VALIDATION_FAILED (naming the field), REPLICATION_LOOP, INVALID_JSON', ...errorRef },
          409: { description: 'TASK_EXISTS', ...errorRef },
          415: mediaTypeError,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const task = validated(() => validateTask(structuredClone(request.body ?? null), 'body', ctx.env));
      const created = await ctx.tasks.create(task);
      return reply.code(201).header('location', `/admin/tasks/${encodeURIComponent(created.id)}`).send(view(created));
    },
  );

  app.get(
    '/tasks/:id',
    {
      schema: {
        operationId: 'getTask',
        summary: 'Get a task',
        description: 'Scope bb:read.',
        tags,
        security,
        params: taskIdParams,
        response: { 200: ref(taskRecordSchema), 404: notFoundError, ...authErrors },
      },
    },
    async (request) => view(await ctx.tasks.require((request.params as { id: string }).id)),
  );

  app.put(
    '/tasks/:id',
    {
      schema: {
        operationId: 'replaceTask',
        summary: 'Replace an API-managed task',
        description: 'Scope bb:write. Same rules as create; the paused state is kept. Config-file tasks: 409 MANAGED_BY_CONFIG.',
        tags,
        security,
        params: taskIdParams,
        body: ref(taskUpdateBodySchema),
        response: {
          200: ref(taskRecordSchema),
          400: { description: 'VALIDATION_FAILED, REPLICATION_LOOP, INVALID_JSON', ...errorRef },
          404: notFoundError,
          409: readOnlyError,
          415: mediaTypeError,
          ...authErrors,
        },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const body = structuredClone(request.body ?? null) as Record<string, unknown> | null;
      if (body && typeof body === 'object' && !Array.isArray(body)) {
        if (body.id !== undefined && body.id !== id) throw new AppError(400, 'VALIDATION_FAILED', 'body.id: must equal the task id in the path', { field: 'body.id' });
        body.id = id;
      }
      const existing = await ctx.tasks.require(id);
      if (existing.managedBy !== 'api') {
        throw new AppError(409, 'MANAGED_BY_CONFIG', `task ${id} comes from the config file and is read-only through the API; edit the file instead`);
      }
      const task = validated(() => validateTask(body, 'body', ctx.env));
      return view(await ctx.tasks.update(task));
    },
  );

  app.delete(
    '/tasks/:id',
    {
      schema: {
        operationId: 'deleteTask',
        summary: 'Delete an API-managed task',
        description: 'Scope bb:write. Removes the task, its status rows and its jobs not yet started. Config-file tasks: 409 MANAGED_BY_CONFIG.',
        tags,
        security,
        params: taskIdParams,
        response: { 204: { type: 'null', description: 'deleted' }, 404: notFoundError, 409: readOnlyError, ...authErrors },
      },
    },
    async (request, reply) => {
      await ctx.tasks.remove((request.params as { id: string }).id);
      return reply.code(204).send();
    },
  );

  for (const [action, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    app.post(
      `/tasks/:id/${action}`,
      {
        schema: {
          operationId: paused ? 'pauseTask' : 'resumeTask',
          summary: paused ? 'Pause a task: events are still accepted and queued, nothing is copied' : 'Resume a paused task',
          description:
            'Scope bb:write. Every process sees the change within BB_REFRESH_INTERVAL_MS; jobs of a paused task wait and are ' +
            're-examined every 30 s. Idempotent. Config-file tasks: 409 MANAGED_BY_CONFIG.',
          tags,
          security,
          params: taskIdParams,
          response: { 200: ref(taskRecordSchema), 404: notFoundError, 409: readOnlyError, ...authErrors },
        },
      },
      async (request) => view(await ctx.tasks.setPaused((request.params as { id: string }).id, paused)),
    );
  }
}
