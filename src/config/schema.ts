/**
 * JSON Schemas for tasks and senders. One definition serves the config file
 * loader and the admin API route schemas, so both validate identically.
 */

export const BUCKET_NAME_PATTERN = '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$';
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

const credentialsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['accessKeyIdEnv', 'secretAccessKeyEnv'],
  properties: {
    accessKeyIdEnv: { type: 'string', minLength: 1, description: 'Name of the env var holding the access key id' },
    secretAccessKeyEnv: { type: 'string', minLength: 1, description: 'Name of the env var holding the secret' },
    sessionTokenEnv: { type: 'string', minLength: 1 },
  },
} as const;

export const endpointSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['provider', 'bucket'],
  properties: {
    provider: { type: 'string', enum: ['s3', 'oss'] },
    bucket: { type: 'string', pattern: BUCKET_NAME_PATTERN },
    region: { type: 'string', minLength: 1, maxLength: 64 },
    endpoint: { type: 'string', format: 'uri', pattern: '^https?://' },
    forcePathStyle: { type: 'boolean' },
    credentials: credentialsSchema,
    prefixes: {
      type: 'array',
      maxItems: 1000,
      items: { type: 'string', minLength: 1, maxLength: 1024 },
    },
  },
} as const;

export const taskOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    deletes: { type: 'boolean', default: false },
    compare: { type: 'string', enum: ['checksum', 'size', 'none'], default: 'checksum' },
    markers: {
      type: 'object',
      additionalProperties: false,
      required: ['bucket'],
      properties: {
        bucket: { type: 'string', pattern: BUCKET_NAME_PATTERN },
        prefix: { type: 'string', default: 'bb_records', maxLength: 512 },
        /** Which side holds the marker bucket: the destination's store by default. */
        side: { type: 'string', enum: ['source', 'destination'], default: 'destination' },
      },
    },
    multipartThresholdBytes: { type: 'integer', minimum: 1, default: 16 * 1024 * 1024 },
    partSizeBytes: { type: 'integer', minimum: 1, maximum: 5 * 1024 * 1024 * 1024, default: 8 * 1024 * 1024 },
    partConcurrency: { type: 'integer', minimum: 1, maximum: 64, default: 4 },
    maxConcurrentCopies: { type: 'integer', minimum: 1, maximum: 1024, default: 16 },
    storageClass: { type: 'string', enum: ['STANDARD', 'STANDARD_IA', 'ARCHIVE'] },
    restoreArchived: { type: 'boolean', default: false },
  },
} as const;

export const scheduleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['mode'],
  properties: {
    mode: { type: 'string', enum: ['none', 'once', 'rate', 'cron'] },
    every: { type: 'string', pattern: '^[1-9][0-9]*(s|m|h|d)$' },
    expression: { type: 'string', minLength: 9, maxLength: 120 },
  },
} as const;

export const taskSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'source', 'destination'],
  properties: {
    id: { type: 'string', pattern: ID_PATTERN },
    source: endpointSchema,
    destination: endpointSchema,
    options: { ...taskOptionsSchema, default: {} },
    schedule: { ...scheduleSchema, default: { mode: 'none' } },
  },
} as const;

export const senderSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['accessKeyId', 'secretEnv', 'tasks'],
  properties: {
    accessKeyId: { type: 'string', pattern: '^[A-Za-z0-9_.-]{3,128}$' },
    secretEnv: { type: 'string', minLength: 1, description: 'Env var holding the signing secret' },
    /** A second valid secret during rotation. */
    previousSecretEnv: { type: 'string', minLength: 1 },
    tasks: { type: 'array', minItems: 1, items: { type: 'string', pattern: ID_PATTERN } },
  },
} as const;

export const configFileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tasks: { type: 'array', items: taskSchema, default: [] },
    senders: { type: 'array', items: senderSchema, default: [] },
  },
} as const;
