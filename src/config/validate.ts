/**
 * Validation of tasks, senders and whole config files against config/schema.ts,
 * plus the rules a JSON Schema cannot express (cross references, env vars,
 * replication loops). Every failure is a ConfigError naming the field.
 */
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { checkProtection } from './protection.js';
import { apiSenderSchema, configFileSchema, senderRotationSchema, taskSchema } from './schema.js';
import type { ConfigFile, EndpointConfig, TaskConfig } from './types.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** Dotted path of the offending field, e.g. `tasks[0].source.provider`. */
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** A task whose destination would feed its own source (same store, overlapping prefixes). */
export class ReplicationLoopError extends ConfigError {}

// ajv-formats ships CJS with a default export that NodeNext sees as a namespace.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ useDefaults: true, allErrors: false, strict: false }));
const validateFile = ajv.compile(configFileSchema);
const validateTaskShape = ajv.compile(taskSchema);
const validateApiSenderShape = ajv.compile(apiSenderSchema);
const validateRotationShape = ajv.compile(senderRotationSchema);

/** `/tasks/0/source` → `tasks[0].source` */
function fieldPath(base: string, pointer: string): string {
  let out = base;
  for (const part of pointer.split('/').slice(1)) {
    const seg = part.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  }
  return out;
}

function toConfigError(base: string, error: ErrorObject): ConfigError {
  let field = fieldPath(base, error.instancePath);
  let reason = error.message ?? 'is invalid';
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required') {
    field = fieldPath(base, `${error.instancePath}/${String(params.missingProperty)}`);
    reason = 'is required';
  } else if (error.keyword === 'additionalProperties') {
    field = fieldPath(base, `${error.instancePath}/${String(params.additionalProperty)}`);
    reason = 'is not a known field';
  } else if (error.keyword === 'enum') {
    reason = `must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
  }
  return new ConfigError(field || '(root)', reason);
}

function checkSchedule(task: TaskConfig, field: string): void {
  const s = task.schedule as { mode: string; every?: string; expression?: string };
  if (s.mode === 'rate' && !s.every) throw new ConfigError(`${field}.schedule.every`, 'is required when mode is rate');
  if (s.mode === 'cron' && !s.expression) throw new ConfigError(`${field}.schedule.expression`, 'is required when mode is cron');
  if (s.mode === 'cron' && s.expression && s.expression.trim().split(/\s+/).length < 5) {
    throw new ConfigError(`${field}.schedule.expression`, 'must be a cron expression of 5 or 6 fields');
  }
}

function checkCredentialEnv(endpoint: EndpointConfig, field: string, env: NodeJS.ProcessEnv): void {
  const creds = endpoint.credentials;
  if (!creds) return;
  for (const name of ['accessKeyIdEnv', 'secretAccessKeyEnv', 'sessionTokenEnv'] as const) {
    const varName = creds[name];
    if (varName !== undefined && !env[varName]) {
      throw new ConfigError(`${field}.credentials.${name}`, `env var ${varName} is not set`);
    }
  }
}

function sameStore(a: EndpointConfig, b: EndpointConfig): boolean {
  return a.provider === b.provider && a.bucket === b.bucket && (a.endpoint ?? '') === (b.endpoint ?? '');
}

function prefixesOverlap(a: string[] | undefined, b: string[] | undefined): boolean {
  const pa = a && a.length > 0 ? a : [''];
  const pb = b && b.length > 0 ? b : [''];
  return pa.some((x) => pb.some((y) => x.startsWith(y) || y.startsWith(x)));
}

/** True when writing to the destination would feed events back into the source. */
export function isReplicationLoop(task: Pick<TaskConfig, 'source' | 'destination'>): boolean {
  return sameStore(task.source, task.destination) && prefixesOverlap(task.source.prefixes, task.destination.prefixes);
}

/** Validate one task (config file entry or admin API body); fills defaults in place. */
export function validateTask(input: unknown, field = 'task', env: NodeJS.ProcessEnv = process.env): TaskConfig {
  if (!validateTaskShape(input)) throw toConfigError(field, validateTaskShape.errors![0]!);
  const task = input as unknown as TaskConfig;
  checkSchedule(task, field);
  if (task.source.provider === 'oss' && !task.source.credentials) {
    throw new ConfigError(`${field}.source.credentials`, 'is required for provider oss');
  }
  if (task.destination.provider === 'oss' && !task.destination.credentials) {
    throw new ConfigError(`${field}.destination.credentials`, 'is required for provider oss');
  }
  checkCredentialEnv(task.source, `${field}.source`, env);
  checkCredentialEnv(task.destination, `${field}.destination`, env);
  const alerts = task.options.alerts;
  if (alerts && !env[alerts.secretEnv]) throw new ConfigError(`${field}.options.alerts.secretEnv`, `env var ${alerts.secretEnv} is not set`);
  checkProtection(task, field, env);
  if (isReplicationLoop(task)) {
    throw new ReplicationLoopError(`${field}.destination`, 'is the same bucket and prefix as the source (replication loop)');
  }
  return task;
}

/** Validate a whole config file's parsed JSON. */
export function validateConfigFile(input: unknown, env: NodeJS.ProcessEnv = process.env): ConfigFile {
  if (!validateFile(input)) throw toConfigError('', validateFile.errors![0]!);
  const file = input as unknown as ConfigFile;
  const ids = new Set<string>();
  file.tasks.forEach((task, i) => {
    validateTask(task, `tasks[${i}]`, env);
    if (ids.has(task.id)) throw new ConfigError(`tasks[${i}].id`, `duplicate task id ${task.id}`);
    ids.add(task.id);
  });
  const keys = new Set<string>();
  file.senders.forEach((sender, i) => {
    if (keys.has(sender.accessKeyId)) throw new ConfigError(`senders[${i}].accessKeyId`, 'is a duplicate');
    keys.add(sender.accessKeyId);
    if (!env[sender.secretEnv]) throw new ConfigError(`senders[${i}].secretEnv`, `env var ${sender.secretEnv} is not set`);
    if (sender.previousSecretEnv && !env[sender.previousSecretEnv]) {
      throw new ConfigError(`senders[${i}].previousSecretEnv`, `env var ${sender.previousSecretEnv} is not set`);
    }
    sender.tasks.forEach((t, j) => {
      if (!ids.has(t)) throw new ConfigError(`senders[${i}].tasks[${j}]`, `unknown task ${t}`);
    });
  });
  return file;
}

export interface ApiSenderInput {
  accessKeyId?: string;
  tasks: string[];
  description?: string;
}

/** Validate an admin API sender body (schema: apiSenderSchema); task ids are checked against `knownTasks`. */
export function validateApiSender(input: unknown, field = 'sender', knownTasks?: (id: string) => boolean): ApiSenderInput {
  if (!validateApiSenderShape(input)) throw toConfigError(field, validateApiSenderShape.errors![0]!);
  const sender = input as unknown as ApiSenderInput;
  sender.tasks.forEach((t, j) => {
    if (knownTasks && !knownTasks(t)) throw new ConfigError(`${field}.tasks[${j}]`, `unknown task ${t}`);
  });
  return sender;
}

/** Validate a rotation body (schema: senderRotationSchema). */
export function validateSenderRotation(input: unknown, field = 'rotation'): { previousSecretValidUntil?: string } {
  if (!validateRotationShape(input ?? {})) throw toConfigError(field, validateRotationShape.errors![0]!);
  return (input ?? {}) as { previousSecretValidUntil?: string };
}
