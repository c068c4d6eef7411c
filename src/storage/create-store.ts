/**
 * Builds the ObjectStore for one endpoint of a task. Secrets never appear in
 * configuration: the config names environment variables and we read them here.
 */
import { OssStore } from './oss-store.js';
import { S3Store } from './s3-store.js';
import type { ObjectStore } from './object-store.js';

export interface StoreConfig {
  provider: 's3' | 'oss';
  bucket: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyIdEnv: string; secretAccessKeyEnv: string; sessionTokenEnv?: string };
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
  if (endpointConfig.provider === 's3') {
    return new S3Store({
      bucket,
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
  return new OssStore({
    bucket,
    region: endpointConfig.region ?? 'oss-cn-hangzhou',
    ...(endpoint !== undefined ? { endpoint } : {}),
    credentials: {
      accessKeyId: creds.accessKeyId,
      accessKeySecret: creds.secret,
      ...(creds.sessionToken !== undefined ? { securityToken: creds.sessionToken } : {}),
    },
  });
}
