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
    caBundleFile: {
      type: 'string',
      minLength: 1,
      description: 'PEM CA bundle the https endpoint\'s certificate must chain to (private endpoints); replaces the default roots',
    },
  },
} as const;

/** Server-side encryption at rest on the destination (data protection). */
export const encryptionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['mode'],
  properties: {
    mode: {
      type: 'string',
      enum: ['AES256', 'aws:kms', 'KMS'],
      description: 'S3: AES256 | aws:kms; OSS: AES256 | KMS',
    },
    keyId: { type: 'string', minLength: 1, maxLength: 2048, description: 'KMS key id/ARN; only with aws:kms (S3) or KMS (OSS)' },
  },
} as const;

/** The source side: an endpoint that may name the SSE-C key its objects are encrypted with. */
export const sourceEndpointSchema = {
  ...endpointSchema,
  properties: {
    ...endpointSchema.properties,
    sseCustomerKeyEnv: {
      type: 'string',
      minLength: 1,
      description: 'Env var holding the 256-bit SSE-C key (base64 or hex) to read customer-key-encrypted source objects (S3 only)',
    },
  },
} as const;

/** The destination side: an endpoint whose writes may be encrypted at rest. */
export const destinationEndpointSchema = {
  ...endpointSchema,
  properties: { ...endpointSchema.properties, encryption: encryptionSchema },
} as const;

/** Client-side envelope encryption: a fresh AES-256 data key per object, wrapped with this RSA public key. */
export const clientSideEncryptionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['publicKeyFile'],
  properties: {
    publicKeyFile: { type: 'string', minLength: 1, description: 'RSA public key (PEM/DER, >= 2048 bits) or certificate' },
    algorithm: { type: 'string', enum: ['AES-256-CTR'], default: 'AES-256-CTR' },
  },
} as const;

/** Limits shared by every worker of every process on the database. */
export const limitsSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    bytesPerSecond: { type: 'integer', minimum: 1024, description: 'Object bytes copied per second (read from the source)' },
    requestsPerSecond: { type: 'number', exclusiveMinimum: 0, maximum: 100000, description: 'Storage requests per second, both sides' },
  },
} as const;

/** Alerts of a task: signed JSON POSTs to a receiver (src/alerts/). */
export const alertsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'secretEnv'],
  properties: {
    url: { type: 'string', format: 'uri', pattern: '^https?://', description: 'Receiver of the alerts (POST, JSON body, SDK-HMAC-SHA256 signed)' },
    secretEnv: { type: 'string', minLength: 1, description: 'Env var holding the secret the alerts are signed with' },
    accessKeyId: { type: 'string', pattern: '^[A-Za-z0-9_.-]{3,128}$', default: 'bucketbridge', description: 'Access key id in the Authorization header' },
    lagSeconds: { type: 'integer', minimum: 1, description: 'Alert when replication lag passes this many seconds; absent: no lag alerts' },
    dedupeSeconds: { type: 'integer', minimum: 0, default: 3600, description: 'The same alert (kind, and key for key failures) is sent at most once per this many seconds' },
    maxPerMinute: { type: 'integer', minimum: 1, maximum: 10000, default: 20, description: 'Alerts per minute for the task; past it they are counted and reported in the next one' },
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
    clientSideEncryption: clientSideEncryptionSchema,
    limits: limitsSchema,
    alerts: alertsSchema,
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
    source: sourceEndpointSchema,
    destination: destinationEndpointSchema,
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

/**
 * A sender created through the admin API: the server generates the secret, so
 * the body names only the access key (optional: generated when absent) and the
 * tasks it may feed. Fields are the config file sender's.
 */
export const apiSenderSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tasks'],
  properties: {
    accessKeyId: { ...senderSchema.properties.accessKeyId, description: 'Access key id; generated (bb-…) when absent' },
    tasks: { ...senderSchema.properties.tasks, description: 'Task ids this sender may feed' },
    description: { type: 'string', maxLength: 500 },
  },
} as const;

/** Rotating a sender's secret: how long the old one keeps working. */
export const senderRotationSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    previousSecretValidUntil: {
      type: 'string',
      format: 'date-time',
      description: 'The old secret is accepted until this time (default: 24 hours from now; a past time revokes it at once)',
    },
  },
} as const;
