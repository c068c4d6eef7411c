/**
 * Reconciliation scans of a task (src/scan/):
 *
 *   POST   /admin/tasks/{id}/scans            start one (bb:write)   202 queued | 409 SCAN_ALREADY_ACTIVE (recorded as skipped)
 *   GET    /admin/tasks/{id}/scans            newest first (bb:read)
 *   GET    /admin/tasks/{id}/scans/{scanId}   progress and outcome (bb:read)
 *   DELETE /admin/tasks/{id}/scans/{scanId}   cancel (bb:write)      200 | 409 SCAN_FINISHED
 *
 * The routes live in their own encapsulated scope: a JSON body parser, ajv
 * validation (query strings coerced, bodies strict) and the `authorize`
 * check passed in, run onRequest — before the body is read — (the admin API's
 * JWT check; see adminAuthorizer).
 */
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BUCKET_NAME_PATTERN } from '../../../config/schema.js';
import { AppError } from '../../../errors.js';
import type { ScanRecord, ScanState } from '../../../scan/scan-repo.js';
import type { ScanService } from '../../../scan/scans.js';
import type { ScanRequest } from '../../../scan/scope.js';

export type AdminScopeName = 'bb:read' | 'bb:write';

/** Checks a request may use `scope`; resolves with the caller's subject (recorded as requestedBy), rejects with an AppError. */
export type Authorize = (scope: AdminScopeName) => (request: FastifyRequest, reply: FastifyReply) => Promise<{ subject?: string } | void>;

export interface ScanRouteDeps {
  scans: ScanService;
  authorize: Authorize;
  /** Mount point of the routes. Default "/admin". */
  prefix?: string;
  bodyLimit?: number;
}

/** An Authorize over the admin API's AdminAuth (src/auth/admin-jwt.ts). */
export function adminAuthorizer(auth: {
  authorize(authorization: string | undefined, scope: AdminScopeName): Promise<{ subject?: string }>;
}): Authorize {
  return (scope) => async (request, reply) => {
    try {
      return await auth.authorize(request.headers.authorization, scope);
    } catch (err) {
      if (err instanceof AppError && err.statusCode === 401) {
        reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${err.code}"`);
      }
      throw err;
    }
  };
}

const errorRef = { $ref: 'ErrorResponse#' } as const;
const tags = ['admin: scans'];
const security = [{ bearer: [] }];
const authErrors = {
  401: { description: 'missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED)', ...errorRef },
  403: { description: 'the token lacks the scope (INSUFFICIENT_SCOPE)', ...errorRef },
  503: { description: 'admin API disabled (ADMIN_DISABLED), identity provider or database unavailable', ...errorRef },
} as const;

const count = { type: 'integer', minimum: 0 } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
const patterns = { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 1024 } } as const;

export const scanRequestSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'What to scan. Neither prefixes nor prefixList: the task’s whole scope (its source prefixes, or the whole bucket). ' +
    'Prefixes are always intersected with the task’s own prefixes: a scan never reaches outside its task.',
  properties: {
    prefixes: { type: 'array', minItems: 1, maxItems: 100_000, items: { type: 'string', minLength: 1, maxLength: 1024 }, description: 'list only keys under these prefixes' },
    prefixList: {
      type: 'object',
      additionalProperties: false,
      required: ['key'],
      description: 'an object holding one prefix per line (as DTH’s prefix-list file), read when the scan starts; at most 8 MiB / 100,000 lines',
      properties: {
        key: { type: 'string', minLength: 1, maxLength: 1024 },
        bucket: { type: 'string', pattern: BUCKET_NAME_PATTERN, description: 'bucket holding it (same endpoint and credentials as the source); default the source bucket' },
      },
    },
    include: { ...patterns, description: 'globs (* ** ? [..] {a,b}); a key is scanned when it matches any of them' },
    exclude: { ...patterns, description: 'globs; a key matching any of them is not scanned' },
    minSize: { type: 'integer', minimum: 0, description: 'bytes, inclusive (judged on the source object, or the destination’s when only it exists)' },
    maxSize: { type: 'integer', minimum: 0, description: 'bytes, inclusive' },
    modifiedAfter: { type: 'string', format: 'date-time', description: 'only objects last modified after this instant' },
  },
} as const;

const scopeSchema = {
  type: 'object',
  required: ['mode'],
  properties: {
    mode: { type: 'string', enum: ['bucket', 'prefixes', 'prefix-list'] },
    ...scanRequestSchema.properties,
  },
} as const;

export const scanSchema = {
  type: 'object',
  required: ['id', 'taskId', 'state', 'trigger', 'requestedBy', 'scope', 'listed', 'compared', 'filtered', 'differences', 'same', 'heads', 'archived', 'jobs', 'attempts', 'position', 'skippedFor', 'error', 'createdAt', 'startedAt', 'heartbeatAt', 'finishedAt'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    taskId: { type: 'string' },
    state: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'cancelled', 'skipped'] },
    trigger: { type: 'string', enum: ['api', 'cli', 'schedule', 'once'] },
    requestedBy: { type: ['string', 'null'], description: 'the admin token’s subject, when started through the API' },
    scope: scopeSchema,
    listed: {
      type: 'object',
      required: ['source', 'destination', 'requests'],
      properties: { source: count, destination: count, requests: { ...count, description: 'list requests made, both sides' } },
    },
    compared: { ...count, description: 'keys present on both sides that were compared' },
    filtered: { ...count, description: 'keys left out by minSize / maxSize / modifiedAfter' },
    differences: {
      type: 'object',
      required: ['missing', 'size', 'content', 'extra', 'uncompared', 'total'],
      properties: {
        missing: { ...count, description: 'only in the source' },
        size: { ...count, description: 'sizes differ' },
        content: { ...count, description: 'same size, different content (by the task’s compare rule)' },
        extra: { ...count, description: 'only in the destination (queued as deletes only when the task allows deletes)' },
        uncompared: { ...count, description: 'compare is none: queued without comparing' },
        total: count,
      },
    },
    same: {
      type: 'object',
      required: ['byStatus', 'byEtag', 'byHead'],
      description: 'how equal keys of equal size were recognised',
      properties: { byStatus: count, byEtag: count, byHead: count },
    },
    heads: { ...count, description: 'HEAD requests made to compare content' },
    archived: { ...count, description: 'differing keys not queued: archived sources the task does not restore, already recorded as archived' },
    jobs: {
      type: 'object',
      required: ['queued', 'alreadyQueued'],
      properties: { queued: count, alreadyQueued: { ...count, description: 'differences whose key already had a queued job' } },
    },
    attempts: { ...count, description: 'runs begun (an interrupted scan resumes from its position)' },
    position: { type: ['string', 'null'], description: 'every key up to this one has been compared and queued' },
    skippedFor: { type: ['string', 'null'], description: 'skipped: the active scan of the task at the time' },
    error: { type: ['string', 'null'] },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: nullableDateTime,
    heartbeatAt: nullableDateTime,
    finishedAt: nullableDateTime,
  },
} as const;

const taskParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128, description: 'task id' } },
} as const;

const scanParams = {
  type: 'object',
  required: ['id', 'scanId'],
  properties: { id: taskParams.properties.id, scanId: { type: 'string', format: 'uuid' } },
} as const;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function scanView(s: ScanRecord) {
  const c = s.counters;
  return {
    id: s.id,
    taskId: s.taskId,
    state: s.state,
    trigger: s.trigger,
    requestedBy: s.requestedBy,
    scope: s.scope,
    listed: { source: c.sourceKeys, destination: c.destinationKeys, requests: c.listRequests },
    compared: c.compared,
    filtered: c.filtered,
    differences: {
      missing: c.missing,
      size: c.sizeDiffers,
      content: c.contentDiffers,
      extra: c.extra,
      uncompared: c.uncompared,
      total: c.missing + c.sizeDiffers + c.contentDiffers + c.extra + c.uncompared,
    },
    same: { byStatus: c.sameByStatus, byEtag: c.sameByEtag, byHead: c.sameByHead },
    heads: c.heads,
    archived: c.archived,
    jobs: { queued: c.jobsQueued, alreadyQueued: c.jobsAlreadyQueued },
    attempts: s.attempts,
    position: s.position,
    skippedFor: s.skippedFor,
    error: s.error,
    createdAt: s.createdAt.toISOString(),
    startedAt: iso(s.startedAt),
    heartbeatAt: iso(s.heartbeatAt),
    finishedAt: iso(s.finishedAt),
  };
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export async function registerScanRoutes(app: FastifyInstance, deps: ScanRouteDeps): Promise<void> {
  const { scans } = deps;
  const requesters = new WeakMap<FastifyRequest, string>();
  const guard = (scope: AdminScopeName) => {
    const check = deps.authorize(scope);
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const principal = await check(request, reply);
      if (principal && principal.subject !== undefined) requesters.set(request, principal.subject);
    };
  };
  const queryAjv = addFormats(new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));
  const bodyAjv = addFormats(new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));

  await app.register(
    async (scope) => {
      if (!scope.hasContentTypeParser('application/json')) {
        scope.addContentTypeParser('application/json', { parseAs: 'string', ...(deps.bodyLimit ? { bodyLimit: deps.bodyLimit } : {}) }, (_req, body, done) => {
          const text = typeof body === 'string' ? body : body.toString('utf8');
          if (text.trim() === '') return done(null, undefined);
          try {
            done(null, JSON.parse(text));
          } catch {
            done(new AppError(400, 'INVALID_JSON', 'request body is not valid JSON'), undefined);
          }
        });
      }
      scope.setValidatorCompiler(({ schema, httpPart }) => {
        if (httpPart !== 'body') return queryAjv.compile(schema);
        // The body is optional (no body: the task's whole scope); when present it must match.
        const validate = bodyAjv.compile(schema);
        const optional = (data: unknown) => data === undefined || data === null || validate(data);
        Object.defineProperty(optional, 'errors', { get: () => validate.errors });
        return optional;
      });

      const requireTask = async (id: string) => {
        if (!(await scans.taskExists(id))) throw new AppError(404, 'NOT_FOUND', `task ${id} does not exist`);
      };

      scope.post(
        '/tasks/:id/scans',
        {
          onRequest: guard('bb:write'),
          schema: {
            summary: 'Start a reconciliation scan of a task',
            description:
              'Scope bb:write. Lists source and destination in key order, merge-joins them and queues a reconcile job for every key ' +
              'missing on the destination, differing in size or content, or (when the task allows deletes) only on the destination. ' +
              'The body is optional. One scan per task runs at a time: a request while one is queued or running is recorded as skipped (409).',
            tags,
            security,
            params: taskParams,
            body: scanRequestSchema,
            response: {
              202: { description: 'queued', ...scanSchema },
              400: { description: 'VALIDATION_FAILED, INVALID_SCAN_REQUEST (naming the field), INVALID_JSON', ...errorRef },
              404: { description: 'NOT_FOUND: no such task', ...errorRef },
              409: { description: 'SCAN_ALREADY_ACTIVE: recorded as a skipped scan; the message names it and the active scan', ...errorRef },
              ...authErrors,
            },
          },
        },
        async (request, reply) => {
          const { id } = request.params as { id: string };
          const { scan, started } = await scans.request(id, (request.body ?? undefined) as ScanRequest | undefined, 'api', requesters.get(request));
          if (!started) {
            throw new AppError(
              409,
              'SCAN_ALREADY_ACTIVE',
              `scan ${scan.skippedFor} of task ${id} is already queued or running; this request was recorded as skipped scan ${scan.id}`,
            );
          }
          return reply
            .code(202)
            .header('location', `${deps.prefix ?? '/admin'}/tasks/${encodeURIComponent(id)}/scans/${scan.id}`)
            .send(scanView(scan));
        },
      );

      scope.get(
        '/tasks/:id/scans',
        {
          onRequest: guard('bb:read'),
          schema: {
            summary: 'List the scans of a task, newest first',
            description: 'Scope bb:read.',
            tags,
            security,
            params: taskParams,
            querystring: {
              type: 'object',
              additionalProperties: false,
              properties: {
                limit: { type: 'integer', minimum: 1, maximum: 200, default: 20 },
                state: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'cancelled', 'skipped'] },
                before: { type: 'string', format: 'date-time', description: 'only scans created before this instant (the createdAt of the last one seen)' },
              },
            },
            response: {
              200: { type: 'object', required: ['scans'], properties: { scans: { type: 'array', items: scanSchema } } },
              400: errorRef,
              404: { description: 'NOT_FOUND: no such task', ...errorRef },
              ...authErrors,
            },
          },
        },
        async (request) => {
          const { id } = request.params as { id: string };
          const q = request.query as { limit: number; state?: ScanState; before?: string };
          await requireTask(id);
          const list = await scans.list(id, {
            limit: q.limit,
            ...(q.state ? { state: q.state } : {}),
            ...(q.before ? { before: new Date(q.before) } : {}),
          });
          return { scans: list.map(scanView) };
        },
      );

      scope.get(
        '/tasks/:id/scans/:scanId',
        {
          onRequest: guard('bb:read'),
          schema: {
            summary: 'A scan: state, keys listed per side, differences by kind, jobs queued, times, error',
            description: 'Scope bb:read.',
            tags,
            security,
            params: scanParams,
            response: { 200: scanSchema, 400: errorRef, 404: { description: 'NOT_FOUND: no such task or scan', ...errorRef }, ...authErrors },
          },
        },
        async (request) => {
          const { id, scanId } = request.params as { id: string; scanId: string };
          const scan = await scans.get(id, scanId);
          if (!scan) throw new AppError(404, 'NOT_FOUND', `task ${id} has no scan ${scanId}`);
          return scanView(scan);
        },
      );

      scope.delete(
        '/tasks/:id/scans/:scanId',
        {
          onRequest: guard('bb:write'),
          schema: {
            summary: 'Cancel a queued or running scan',
            description:
              'Scope bb:write. A running scan stops at its next progress check (about a second); reconcile jobs it already queued stay queued.',
            tags,
            security,
            params: scanParams,
            response: {
              200: { description: 'cancelled', ...scanSchema },
              400: errorRef,
              404: { description: 'NOT_FOUND: no such task or scan', ...errorRef },
              409: { description: 'SCAN_FINISHED: the scan had already ended', ...errorRef },
              ...authErrors,
            },
          },
        },
        async (request) => {
          const { id, scanId } = request.params as { id: string; scanId: string };
          const result = await scans.cancel(id, scanId);
          if (!result) throw new AppError(404, 'NOT_FOUND', `task ${id} has no scan ${scanId}`);
          if (!result.cancelled) throw new AppError(409, 'SCAN_FINISHED', `scan ${scanId} already ended (${result.scan.state})`);
          return scanView(result.scan);
        },
      );
    },
    { prefix: deps.prefix ?? '/admin' },
  );
}
