/**
 * Request and response schemas of the admin API. Request bodies for tasks and
 * senders are the config file's schemas (config/schema.ts), validated by the
 * same functions (config/validate.ts) the config loader uses.
 */
import { ID_PATTERN, scheduleSchema, taskOptionsSchema, taskSchema } from '../../../config/schema.js';
import { OBJECT_STATUSES } from '../../../db/task-status-repo.js';

export const errorRef = { $ref: 'ErrorResponse#' } as const;

/** Error responses every admin route can give. */
export const authErrors = {
  401: { description: 'missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED)', ...errorRef },
  403: { description: 'the token lacks the scope (INSUFFICIENT_SCOPE)', ...errorRef },
  503: { description: 'admin API disabled (ADMIN_DISABLED), identity provider or database unavailable', ...errorRef },
} as const;

export const notFoundError = { description: 'NOT_FOUND: no such task, sender or object', ...errorRef } as const;
export const readOnlyError = { description: 'MANAGED_BY_CONFIG: defined in the config file, read-only through the API', ...errorRef } as const;
export const mediaTypeError = { description: 'UNSUPPORTED_MEDIA_TYPE: send application/json', ...errorRef } as const;

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const taskIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128, description: 'task id' } },
} as const;

export const objectKeyParams = {
  type: 'object',
  required: ['id', 'key'],
  properties: {
    id: taskIdParams.properties.id,
    key: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      description: 'object key, URL-encoded as ONE path segment (a/b.txt → a%2Fb.txt, as encodeURIComponent does)',
    },
  },
} as const;

export const senderParams = {
  type: 'object',
  required: ['accessKeyId'],
  properties: { accessKeyId: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

/** Body of POST /admin/tasks: the config file's task schema. */
export const taskInputSchema = { $id: 'TaskInput', ...taskSchema } as const;

/** Body of PUT /admin/tasks/{id}: the task schema, with `id` optional (it comes from the path). */
export const taskUpdateBodySchema = {
  $id: 'TaskUpdate',
  ...taskSchema,
  required: ['source', 'destination'],
  properties: { ...taskSchema.properties, id: { ...taskSchema.properties.id, description: 'must equal the path id when given' } },
} as const;

export const taskRecordSchema = {
  $id: 'Task',
  type: 'object',
  required: ['id', 'source', 'destination', 'options', 'schedule', 'managedBy', 'paused', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string', pattern: ID_PATTERN },
    source: taskSchema.properties.source,
    destination: taskSchema.properties.destination,
    options: taskOptionsSchema,
    schedule: scheduleSchema,
    managedBy: { type: 'string', enum: ['config', 'api'], description: 'config: from the config file, read-only here' },
    paused: { type: 'boolean', description: 'a paused task queues events but copies nothing until resumed' },
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const;

export const senderRecordSchema = {
  $id: 'Sender',
  type: 'object',
  required: ['accessKeyId', 'tasks', 'managedBy', 'disabled', 'description', 'createdAt', 'updatedAt', 'rotatedAt', 'previousSecretExpiresAt'],
  properties: {
    accessKeyId: { type: 'string' },
    tasks: { type: 'array', items: { type: 'string' } },
    managedBy: { type: 'string', enum: ['config', 'api'] },
    disabled: { type: 'boolean' },
    description: { type: ['string', 'null'] },
    createdAt: nullableDateTime,
    updatedAt: nullableDateTime,
    rotatedAt: nullableDateTime,
    previousSecretExpiresAt: { ...nullableDateTime, description: 'during a rotation: when the old secret stops working' },
  },
} as const;

export const senderWithSecretSchema = {
  ...senderRecordSchema,
  $id: 'SenderWithSecret',
  required: [...senderRecordSchema.required, 'secret'],
  properties: {
    ...senderRecordSchema.properties,
    secret: { type: 'string', description: 'the signing secret: shown only in this answer, store it now' },
  },
} as const;

const lastErrorSchema = {
  type: ['object', 'null'],
  required: ['code', 'message'],
  properties: { code: { type: ['string', 'null'] }, message: { type: ['string', 'null'] } },
} as const;

const objectStatusEnum = { type: 'string', enum: [...OBJECT_STATUSES] } as const;

const objectProperties = {
  key: { type: 'string' },
  status: objectStatusEnum,
  attempts: { type: 'integer' },
  bytes: { type: ['number', 'null'], description: 'bytes written by the last copy' },
  sourceEtag: { type: ['string', 'null'] },
  sourceCrc64: { type: ['string', 'null'] },
  destinationEtag: { type: ['string', 'null'] },
  durationMs: { type: ['integer', 'null'] },
  lastError: lastErrorSchema,
  firstSeenAt: dateTime,
  updatedAt: dateTime,
  completedAt: nullableDateTime,
} as const;

export const objectSchema = {
  $id: 'ObjectRecord',
  type: 'object',
  required: Object.keys(objectProperties),
  properties: objectProperties,
} as const;

const { $id: _objectId, ...objectSchemaInline } = objectSchema;

export const objectDetailSchema = {
  $id: 'ObjectDetail',
  type: 'object',
  required: ['taskId', 'key', 'status', 'record', 'job'],
  properties: {
    taskId: { type: 'string' },
    key: { type: 'string' },
    status: { type: ['string', 'null'], enum: [...OBJECT_STATUSES, null], description: 'null: queued, never attempted yet' },
    record: { ...objectSchemaInline, type: ['object', 'null'], description: 'the status row: attempts, last error, checksums' },
    job: {
      type: ['object', 'null'],
      description: 'the queued, retrying or running job of this key, if any',
      required: ['id', 'state', 'createdOn', 'startAfter', 'startedOn', 'retryCount', 'retryLimit'],
      properties: {
        id: { type: 'string' },
        state: { type: 'string', enum: ['created', 'retry', 'active'] },
        createdOn: dateTime,
        startAfter: dateTime,
        startedOn: nullableDateTime,
        retryCount: { type: 'integer' },
        retryLimit: { type: 'integer' },
      },
    },
  },
} as const;

export const paginationQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  cursor: { type: 'string', maxLength: 4096, description: 'nextCursor of the previous page (opaque; same filters required)' },
} as const;

export const statusSchema = {
  $id: 'TaskStatus',
  type: 'object',
  required: ['taskId', 'paused', 'objects', 'bytesReplicated', 'jobs', 'lagSeconds', 'oldestUnreplicatedAt', 'lastSuccess', 'lastFailure', 'throughput'],
  properties: {
    taskId: { type: 'string' },
    paused: { type: 'boolean' },
    objects: {
      type: 'object',
      description: 'status rows by status',
      required: [...OBJECT_STATUSES, 'total'],
      properties: Object.fromEntries([...OBJECT_STATUSES, 'total'].map((s) => [s, { type: 'integer' }])),
    },
    bytesReplicated: { type: 'number', description: 'sum of the bytes of objects whose last copy completed' },
    jobs: {
      type: 'object',
      required: ['queued', 'active', 'retrying', 'deadLettered'],
      properties: {
        queued: { type: 'integer' },
        active: { type: 'integer' },
        retrying: { type: 'integer' },
        deadLettered: { type: 'integer', description: 'in bb-replicate-dead (kept 30 days)' },
      },
    },
    lagSeconds: { type: 'number', description: 'age of the oldest change not yet replicated; 0 when none' },
    oldestUnreplicatedAt: nullableDateTime,
    lastSuccess: {
      type: ['object', 'null'],
      required: ['key', 'status', 'at'],
      properties: { key: { type: 'string' }, status: { type: 'string' }, at: dateTime },
    },
    lastFailure: {
      type: ['object', 'null'],
      required: ['key', 'status', 'at', 'code', 'message'],
      properties: {
        key: { type: 'string' },
        status: { type: 'string', description: 'failed (final) or pending (will retry)' },
        at: dateTime,
        code: { type: ['string', 'null'] },
        message: { type: ['string', 'null'] },
      },
    },
    throughput: {
      type: 'object',
      required: ['windowSeconds', 'objects', 'bytes', 'objectsPerSecond', 'bytesPerSecond'],
      properties: {
        windowSeconds: { type: 'integer' },
        objects: { type: 'integer', description: 'objects finished (completed, in_sync, deleted, source_missing) in the window' },
        bytes: { type: 'number', description: 'bytes copied in the window' },
        objectsPerSecond: { type: 'number' },
        bytesPerSecond: { type: 'number' },
      },
    },
  },
} as const;

export const retryResultSchema = {
  $id: 'RetryResult',
  type: 'object',
  required: ['queued', 'duplicates'],
  properties: {
    queued: { type: 'integer', description: 'jobs newly queued' },
    duplicates: { type: 'integer', description: 'keys that already had a queued job' },
    failed: { type: 'integer', description: 'retry-failed only: failed keys found' },
  },
} as const;

export const ledgerEntrySchema = {
  $id: 'IntakeLedgerEntry',
  type: 'object',
  required: ['id', 'requestId', 'sender', 'taskId', 'format', 'accepted', 'duplicates', 'ignored', 'receivedAt'],
  properties: {
    id: { type: 'integer' },
    requestId: { type: 'string' },
    sender: { type: 'string' },
    taskId: { type: ['string', 'null'] },
    format: { type: 'string' },
    accepted: { type: 'integer' },
    duplicates: { type: 'integer' },
    ignored: { type: 'integer' },
    receivedAt: dateTime,
  },
} as const;

/** Shared schemas, registered once on the root app: the OpenAPI document names them under components.schemas. */
export const ADMIN_SCHEMAS = [
  taskInputSchema,
  taskUpdateBodySchema,
  taskRecordSchema,
  statusSchema,
  objectSchema,
  objectDetailSchema,
  retryResultSchema,
  senderRecordSchema,
  senderWithSecretSchema,
  ledgerEntrySchema,
] as const;

/** `{ $ref: 'Name#' }` of a shared schema. */
export function ref(schema: { $id: string }): { $ref: string } {
  return { $ref: `${schema.$id}#` };
}

export function pageSchema<S extends object>(items: S) {
  return {
    type: 'object',
    required: ['items', 'nextCursor'],
    properties: {
      items: { type: 'array', items },
      nextCursor: { type: ['string', 'null'], description: 'pass as ?cursor= for the next page; null on the last page' },
    },
  } as const;
}
