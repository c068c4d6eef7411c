/**
 * Data-protection rules of a task that a JSON Schema cannot express: the
 * encryption mode each provider takes, key files that must be readable and
 * hold the right kind of key, and env vars holding keys. Run by validateTask,
 * so the config file and the admin API refuse the same things, with a
 * ConfigError naming the field. Files are read here (at load / API call time)
 * and again by the workers when they use them.
 */
import { KeyMaterialError, loadPublicKey, parseCustomerKey, readCaBundle } from '../crypto/keys.js';
import type { EndpointConfig, TaskConfig } from './types.js';
import { ConfigError } from './validate.js';

/** Server-side encryption modes per provider. */
export const SSE_MODES: Readonly<Record<EndpointConfig['provider'], readonly string[]>> = {
  s3: ['AES256', 'aws:kms'],
  oss: ['AES256', 'KMS'],
};
const KMS_MODES = new Set(['aws:kms', 'KMS']);

function keyError(field: string, err: unknown): never {
  if (err instanceof KeyMaterialError) throw new ConfigError(field, err.message);
  throw err;
}

function checkCaBundle(endpoint: EndpointConfig, field: string): void {
  if (endpoint.caBundleFile === undefined) return;
  if (endpoint.endpoint !== undefined && !endpoint.endpoint.startsWith('https://')) {
    throw new ConfigError(`${field}.caBundleFile`, `is only used with an https:// endpoint (endpoint is ${endpoint.endpoint})`);
  }
  try {
    readCaBundle(endpoint.caBundleFile);
  } catch (err) {
    keyError(`${field}.caBundleFile`, err);
  }
}

export function checkProtection(task: TaskConfig, field: string, env: NodeJS.ProcessEnv): void {
  checkCaBundle(task.source, `${field}.source`);
  checkCaBundle(task.destination, `${field}.destination`);

  const keyEnv = task.source.sseCustomerKeyEnv;
  if (keyEnv !== undefined) {
    const f = `${field}.source.sseCustomerKeyEnv`;
    if (task.source.provider !== 's3') throw new ConfigError(f, 'is only supported for provider s3 (OSS has no customer-provided keys)');
    const value = env[keyEnv];
    if (!value) throw new ConfigError(f, `env var ${keyEnv} is not set`);
    try {
      parseCustomerKey(value);
    } catch (err) {
      keyError(f, err instanceof KeyMaterialError ? new KeyMaterialError(`env var ${keyEnv} ${err.message}`) : err);
    }
  }

  const enc = task.destination.encryption;
  if (enc !== undefined) {
    const provider = task.destination.provider;
    const allowed = SSE_MODES[provider];
    if (!allowed.includes(enc.mode)) {
      throw new ConfigError(`${field}.destination.encryption.mode`, `${enc.mode} is not a mode of provider ${provider}; use one of ${allowed.join(', ')}`);
    }
    if (enc.keyId !== undefined && !KMS_MODES.has(enc.mode)) {
      const kms = allowed.find((m) => KMS_MODES.has(m));
      throw new ConfigError(`${field}.destination.encryption.keyId`, `a KMS key id is only valid with mode ${kms} (mode is ${enc.mode})`);
    }
  }

  const cse = task.options.clientSideEncryption;
  if (cse !== undefined) {
    try {
      loadPublicKey(cse.publicKeyFile);
    } catch (err) {
      keyError(`${field}.options.clientSideEncryption.publicKeyFile`, err);
    }
  }
}
