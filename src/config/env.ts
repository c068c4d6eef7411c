/**
 * Process environment, parsed and validated once with envalid. A bad value
 * becomes a ConfigError naming the variable instead of envalid's banner + exit,
 * so main.ts prints one line and stops the embedded database cleanly.
 */
import { bool, cleanEnv, host, num, port, str, url } from 'envalid';
import { ConfigError } from './validate.js';

export interface Env {
  port: number;
  host: string;
  databaseUrl?: string;
  configPath?: string;
  adminJwtSecret?: string;
  adminJwksUrl?: string;
  adminJwtIssuer?: string;
  adminJwtAudience?: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Where the embedded database and other local state live. */
  dataDir: string;
  /** Jobs a process works on at once (all tasks together). */
  workerConcurrency: number;
  /** Run replication workers in this process (false: intake-only node). */
  workers: boolean;
  /** Accepted clock skew for signed requests. */
  signatureMaxSkewSeconds: number;
  /** How long in-flight jobs get to finish on SIGTERM before they are handed back. */
  shutdownGraceMs: number;
}

export function loadEnv(env: NodeJS.ProcessEnv = process.env): Env {
  const clean = cleanEnv(
    env,
    {
      PORT: port({ default: 8080 }),
      HOST: host({ default: '127.0.0.1' }),
      DATABASE_URL: url({ default: undefined }),
      BB_CONFIG: str({ default: undefined }),
      BB_ADMIN_JWT_SECRET: str({ default: undefined }),
      BB_ADMIN_JWKS_URL: url({ default: undefined }),
      BB_ADMIN_JWT_ISSUER: str({ default: undefined }),
      BB_ADMIN_JWT_AUDIENCE: str({ default: undefined }),
      LOG_LEVEL: str({ choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' }),
      BB_DATA_DIR: str({ default: './.data' }),
      BB_WORKER_CONCURRENCY: num({ default: 16 }),
      BB_WORKERS: bool({ default: true }),
      BB_SIGNATURE_MAX_SKEW_SECONDS: num({ default: 900 }),
      BB_SHUTDOWN_GRACE_MS: num({ default: 25_000 }),
    },
    {
      reporter: ({ errors }) => {
        const [name, error] = Object.entries(errors)[0] ?? [];
        if (name) throw new ConfigError(name, (error as Error | undefined)?.message ?? 'is invalid');
      },
    },
  );
  if (clean.BB_WORKER_CONCURRENCY < 1 || !Number.isInteger(clean.BB_WORKER_CONCURRENCY)) {
    throw new ConfigError('BB_WORKER_CONCURRENCY', 'must be a positive integer');
  }
  return {
    port: clean.PORT,
    host: clean.HOST,
    databaseUrl: clean.DATABASE_URL || undefined,
    configPath: clean.BB_CONFIG || undefined,
    adminJwtSecret: clean.BB_ADMIN_JWT_SECRET || undefined,
    adminJwksUrl: clean.BB_ADMIN_JWKS_URL || undefined,
    adminJwtIssuer: clean.BB_ADMIN_JWT_ISSUER || undefined,
    adminJwtAudience: clean.BB_ADMIN_JWT_AUDIENCE || undefined,
    logLevel: clean.LOG_LEVEL as Env['logLevel'],
    dataDir: clean.BB_DATA_DIR,
    workerConcurrency: clean.BB_WORKER_CONCURRENCY,
    workers: clean.BB_WORKERS,
    signatureMaxSkewSeconds: clean.BB_SIGNATURE_MAX_SKEW_SECONDS,
    shutdownGraceMs: clean.BB_SHUTDOWN_GRACE_MS,
  };
}
