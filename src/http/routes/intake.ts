/**
 * The signed front door: `POST /sync` (any supported notification format) and
 * the Huawei OMS-compatible `POST /v2/{project_id}/sync-tasks/{task_id}/events`.
 * Order matters: authenticate before reading the body's meaning, and reply
 * 2xx only after the jobs are committed. Replays are found by the enqueue
 * statement itself (queue/enqueue.ts), not by a round trip of their own.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SignatureError, verify } from '../../auth/sdk-hmac.js';
import type { SenderDirectory } from '../../auth/senders.js';
import { EventParseError, parseNotification, parseOmsKeys } from '../../events/index.js';
import type { ParsedNotification } from '../../events/object-change.js';
import { routeChanges, type RoutedChanges } from '../../intake/route-changes.js';
import type { IntakeEnqueuer } from '../../queue/enqueue.js';
import type { TaskRegistry } from '../../tasks/registry.js';
import { AppError } from '../../errors.js';
import { ID_PATTERN } from '../../config/schema.js';
import type { IntakeMetrics } from './intake-metrics.js';

export interface IntakeDeps {
  /** The instance's group-commit enqueuer (one per service; closed after the HTTP server). */
  enqueuer: IntakeEnqueuer;
  tasks: TaskRegistry;
  senders: SenderDirectory;
  maxSkewSeconds: number;
  maxKeys?: number;
  metrics?: IntakeMetrics;
}

const errorRef = { $ref: 'ErrorResponse#' };

/** OMS project ids are hex strings; allow any plain id, never '.', '..', empty or encoded bytes. */
const PROJECT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$';

const acceptedSchema = {
  type: 'object',
  required: ['requestId', 'accepted', 'duplicates', 'ignored', 'jobs'],
  properties: {
    requestId: { type: 'string' },
    format: { type: 'string' },
    accepted: { type: 'integer', description: 'keys newly queued' },
    duplicates: { type: 'integer', description: 'keys already queued (collapsed into the queued job)' },
    ignored: { type: 'integer', description: 'keys deliberately not queued' },
    ignoredReasons: {
      type: 'array',
      items: { type: 'object', properties: { reason: { type: 'string' }, count: { type: 'integer' } } },
    },
    jobs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          taskId: { type: 'string' },
          key: { type: 'string' },
          jobId: { type: ['string', 'null'] },
        },
      },
    },
    replayed: { type: 'boolean' },
  },
} as const;

const responses = {
  200: { description: 'a replay of an accepted request: the first answer again', ...acceptedSchema },
  202: { description: 'durably queued', ...acceptedSchema },
  400: errorRef,
  401: errorRef,
  403: errorRef,
  404: errorRef,
  413: errorRef,
  503: errorRef,
};

/**
 * Intake bodies are parsed raw (the signature covers the exact bytes), so they
 * have no fastify body schema; these describe them in the OpenAPI document
 * only, attached by a per-route @fastify/swagger transform.
 */
const anyObject = { type: 'object', additionalProperties: true } as const;
export const syncBodyDoc = {
  description:
    'The notification exactly as the sender produced it; the signature covers these bytes. The format is detected from the shape. ' +
    'Keys: S3 records form-URL-encoded (+ is a space), OMS keys percent-encoded, others as is. At most 1,000 keys, 1 MiB.',
  anyOf: [
    { title: 'S3 event notification (also inside SNS / SQS envelopes, MinIO)', type: 'object', required: ['Records'], properties: { Records: { type: 'array', items: anyObject } } },
    { title: 'EventBridge S3 event', type: 'object', required: ['detail-type', 'source', 'detail'], properties: { 'detail-type': { type: 'string' }, source: { type: 'string' }, detail: anyObject } },
    { title: 'OSS event (Function Compute trigger)', type: 'object', required: ['events'], properties: { events: { type: 'array', items: anyObject } } },
    { title: 'DTH single object', type: 'object', required: ['key'], properties: { key: { type: 'string' }, size: { type: 'integer' } } },
    { title: 'DTH list', type: 'array', items: { type: 'object', required: ['key'], properties: { key: { type: 'string' }, size: { type: 'integer' } } } },
    { title: 'OMS keys', type: 'object', required: ['object_keys'], properties: { object_keys: { type: 'array', items: { type: 'string' } } } },
  ],
} as const;

export const omsBodyDoc = {
  type: 'object',
  required: ['object_keys'],
  properties: { object_keys: { type: 'array', maxItems: 1000, items: { type: 'string', description: 'URL-encoded object key' } } },
} as const;

/** Route config that documents `body` in OpenAPI without fastify validating (or parsing) it. */
function documentRawBody(body: object) {
  return {
    swaggerTransform: ({ schema, url }: { schema: object; url: string }) => ({ schema: { ...schema, body, consumes: ['application/json'] }, url }),
  };
}

const SIGNATURE_STATUS: Record<SignatureError['code'], number> = {
  SIGNATURE_INVALID: 401,
  REQUEST_EXPIRED: 401,
  UNKNOWN_ACCESS_KEY: 401,
};

/**
 * Headers Node keeps only one of (it silently drops the repeats) or that the
 * signature depends on: a request carrying two is ambiguous (which one did the
 * sender sign, which one did a proxy in front of us act on?), so it is refused.
 */
const SINGLE_HEADERS = new Set(['authorization', 'host', 'content-type', 'content-length', 'x-sdk-date', 'x-sdk-content-sha256']);

function duplicatedHeader(request: FastifyRequest): string | undefined {
  const seen = new Set<string>();
  const raw = request.raw.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!SINGLE_HEADERS.has(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** JSON text must be UTF-8 (RFC 8259); a lenient decode would turn bad bytes into U+FFFD and queue keys that do not exist. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function rawPathAndQuery(request: FastifyRequest): { path: string; query: string } {
  const url = request.raw.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

export async function registerIntakeRoutes(app: FastifyInstance, deps: IntakeDeps): Promise<void> {
  const handle = async (
    request: FastifyRequest,
    reply: FastifyReply,
    parse: (body: unknown) => ParsedNotification,
    explicitTaskId: string | undefined,
  ) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const { path, query } = rawPathAndQuery(request);
    const duplicated = duplicatedHeader(request);
    if (duplicated) {
      deps.metrics?.notification('unknown', 'DUPLICATE_HEADER');
      throw new AppError(400, 'DUPLICATE_HEADER', `the ${duplicated} header occurs more than once`);
    }
    let auth: { accessKeyId: string; signature: string };
    try {
      auth = verify({ method: request.method, path, query, headers: request.headers, body }, deps.senders.secretsOf, {
        maxSkewSeconds: deps.maxSkewSeconds,
      });
    } catch (err) {
      if (err instanceof SignatureError) {
        deps.metrics?.notification('unknown', err.code);
        throw new AppError(SIGNATURE_STATUS[err.code] ?? 401, err.code, err.message);
      }
      throw err;
    }
    const sender = deps.senders.get(auth.accessKeyId)!;
    const signatureHash = createHash('sha256').update(auth.signature).digest();
    const replay = (response: Record<string, unknown>) => {
      deps.metrics?.notification('replay', 'replayed');
      return reply.code(200).send({ ...response, replayed: true });
    };
    let text: string;
    try {
      text = strictUtf8.decode(body);
    } catch {
      deps.metrics?.notification('unknown', 'INVALID_JSON');
      throw new AppError(400, 'INVALID_JSON', 'request body is not valid UTF-8');
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      deps.metrics?.notification('unknown', 'INVALID_JSON');
      throw new AppError(400, 'INVALID_JSON', 'request body is not valid JSON');
    }
    let parsed: ParsedNotification;
    try {
      parsed = parse(json);
    } catch (err) {
      if (err instanceof EventParseError) {
        deps.metrics?.notification('unknown', err.code);
        throw new AppError(400, err.code, err.message);
      }
      throw err;
    }
    let routed: RoutedChanges;
    try {
      routed = routeChanges(parsed.changes, sender, deps.tasks, explicitTaskId, parsed.ignored);
    } catch (err) {
      // Parsing depends only on the signed bytes, routing also on the tasks and the sender's
      // grants, which may have changed since the first copy of this request was accepted:
      // a replay still gets its first answer (one lookup, on this error path only).
      if (err instanceof AppError) {
        const first = await deps.enqueuer.storedAnswer(signatureHash);
        if (first) return replay(first);
      }
      throw err;
    }
    const requestId = randomUUID();
    const ignoredCount = routed.ignored.reduce((n, i) => n + i.count, 0);
    const outcome = await deps.enqueuer.submit({
      jobs: routed.jobs,
      entry: {
        requestId,
        sender: sender.accessKeyId,
        taskId: routed.taskId ?? routed.jobs[0]?.taskId,
        format: parsed.format,
        ignored: ignoredCount,
        signatureHash,
      },
      answer: (r) => ({
        requestId,
        format: parsed.format,
        accepted: r.accepted,
        duplicates: r.duplicates,
        ignored: ignoredCount,
        ignoredReasons: routed.ignored,
        jobs: routed.jobs.map((j) => ({ taskId: j.taskId, key: j.key })),
      }),
    });
    if (outcome.replayed) return replay(outcome.response);
    deps.metrics?.notification(parsed.format, 'accepted', outcome.accepted, outcome.duplicates);
    request.log.info(
      { requestId, sender: sender.accessKeyId, format: parsed.format, accepted: outcome.accepted, duplicates: outcome.duplicates, ignored: ignoredCount },
      'notification accepted',
    );
    return reply.code(202).send(outcome.response);
  };

  app.post(
    '/sync',
    {
      config: documentRawBody(syncBodyDoc),
      schema: {
        operationId: 'postSync',
        summary: 'Accept an object-change notification (S3, EventBridge, OSS, MinIO, DTH or OMS format)',
        tags: ['intake'],
        security: [{ sdkHmac: [] }],
        querystring: {
          type: 'object',
          properties: { task: { type: 'string', description: 'route every key to this task' } },
        },
        response: responses,
      },
    },
    async (request, reply) => {
      const { task } = request.query as { task?: string };
      return handle(request, reply, (b) => parseNotification(b, { maxKeys: deps.maxKeys }), task);
    },
  );

  app.post(
    '/v2/:project_id/sync-tasks/:task_id/events',
    {
      config: documentRawBody(omsBodyDoc),
      schema: {
        operationId: 'postOmsSyncEvents',
        summary: 'Huawei OMS-compatible sync request: {"object_keys": [URL-encoded keys]}',
        tags: ['intake'],
        security: [{ sdkHmac: [] }],
        params: {
          type: 'object',
          required: ['project_id', 'task_id'],
          properties: {
            project_id: { type: 'string', maxLength: 128, pattern: PROJECT_ID_PATTERN },
            task_id: { type: 'string', maxLength: 128, pattern: ID_PATTERN },
          },
        },
        // The task is the path's; a query string (e.g. ?task=) would only suggest otherwise.
        querystring: { type: 'object', additionalProperties: false, properties: {} },
        response: responses,
      },
    },
    async (request, reply) => {
      const { task_id: taskId } = request.params as { task_id: string };
      return handle(request, reply, (b) => parseOmsKeys(b, { maxKeys: deps.maxKeys }), taskId);
    },
  );
}
