/**
 * Builds the ObjectStore for one endpoint of a task. Secrets never appear in
 * configuration: the config names environment variables and we read them here.
 */
import { KeyMaterialError, parseCustomerKey, readCaBundle } from '../crypto/keys.js';
import { OssStore } from './oss-store.js';
import { S3Store } from './s3-store.js';
import type { ObjectStore, ServerSideEncryption } from './object-store.js';

export interface StoreConfig {
  provider: 's3' | 'oss';
  bucket: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyIdEnv: string; secretAccessKeyEnv: string; sessionTokenEnv?: string };
  /** PEM CA bundle an https endpoint's certificate must chain to (private endpoints). */
  caBundleFile?: string;
  /** Server-side encryption of every write to this store. */
  encryption?: ServerSideEncryption;
  /** Env var holding the SSE-C key for reading customer-key-encrypted objects (S3). */
  sseCustomerKeyEnv?: string;
}

/** The protection settings of an endpoint, read from files and env vars. */
function protection(config: StoreConfig, env: NodeJS.ProcessEnv): { ca?: string; sseCustomerKey?: Buffer } {
  const out: { ca?: string; sseCustomerKey?: Buffer } = {};
  const where = `${config.provider} bucket ${config.bucket}`;
  if (config.caBundleFile !== undefined) {
    try {
      out.ca = readCaBundle(config.caBundleFile);
    } catch (err) {
      if (err instanceof KeyMaterialError) throw new Error(`CA bundle for ${where}: ${err.message}`);
      throw err;
    }
  }
  if (config.sseCustomerKeyEnv !== undefined) {
    const value = requireEnv(env, config.sseCustomerKeyEnv, `SSE-C key for ${where}`);
    try {
      out.sseCustomerKey = parseCustomerKey(value);
    } catch (err) {
      if (err instanceof KeyMaterialError) throw new Error(`environment variable ${config.sseCustomerKeyEnv} (SSE-C key for ${where}) ${err.message}`);
      throw err;
    }
  }
  return out;
}

function requireEnv(env: NodeJS.ProcessEnv, name: string, purpose: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} (${purpose}) is not set`);
  }
  return value;
}

function secrets(
  config: StoreConfig,
  env: NodeJS.ProcessEnv,
): { accessKeyId: string; secret: string; sessionToken?: string } | undefined {
  const c = config.credentials;
  if (!c) return undefined;
  const where = `${config.provider} bucket ${config.bucket}`;
  const out: { accessKeyId: string; secret: string; sessionToken?: string } = {
    accessKeyId: requireEnv(env, c.accessKeyIdEnv, `access key id for ${where}`),
    secret: requireEnv(env, c.secretAccessKeyEnv, `secret key for ${where}`),
  };
  if (c.sessionTokenEnv !== undefined) out.sessionToken = requireEnv(env, c.sessionTokenEnv, `session token for ${where}`);
  return out;
}

export function createStore(endpointConfig: StoreConfig, env: NodeJS.ProcessEnv = process.env): ObjectStore {
  const creds = secrets(endpointConfig, env);
  const { bucket, endpoint } = endpointConfig;
  const { ca, sseCustomerKey } = protection(endpointConfig, env);
  const encryption = endpointConfig.encryption;
  if (endpointConfig.provider === 's3') {
    return new S3Store({
      bucket,
      ...(ca !== undefined ? { ca } : {}),
      ...(encryption !== undefined ? { encryption } : {}),
      ...(sseCustomerKey !== undefined ? { sseCustomerKey } : {}),
      // S3-compatible stores ignore the region but SigV4 needs one.
      region: endpointConfig.region ?? 'us-east-1',
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(endpointConfig.forcePathStyle !== undefined ? { forcePathStyle: endpointConfig.forcePathStyle } : {}),
      // No credentials configured: the SDK's default chain (env, shared files, SSO, IMDS/ECS roles).
      ...(creds
        ? {
            credentials: {
              accessKeyId: creds.accessKeyId,
              secretAccessKey: creds.secret,
              ...(creds.sessionToken !== undefined ? { sessionToken: creds.sessionToken } : {}),
            },
          }
        : {}),
    });
  }
  if (!creds) {
    // ali-oss has no default credential chain.
    throw new Error(`oss bucket ${bucket}: credentials (accessKeyIdEnv / secretAccessKeyEnv) are required`);
  }
  if (sseCustomerKey !== undefined) throw new Error(`oss bucket ${bucket}: OSS has no customer-provided keys (sseCustomerKeyEnv)`);
  return new OssStore({
    bucket,
    ...(ca !== undefined ? { ca } : {}),
    ...(encryption !== undefined ? { encryption } : {}),
    region: endpointConfig.region ?? 'oss-cn-hangzhou',
    ...(endpoint !== undefined ? { endpoint } : {}),
    credentials: {
      accessKeyId: creds.accessKeyId,
      accessKeySecret: creds.secret,
      ...(creds.sessionToken !== undefined ? { securityToken: creds.sessionToken } : {}),
    },
  });
}
