/**
 * Process environment, parsed and validated once with envalid. A bad value
 * becomes a ConfigError naming the variable instead of envalid's banner + exit,
 * so main.ts prints one line and stops the embedded database cleanly.
 */
import { bool, cleanEnv, host, num, port, str, url } from 'envalid';
import { MIN_ADMIN_SECRET_LENGTH } from '../auth/admin-jwt.js';
import { MasterKeyError, parseMasterKey } from '../auth/secret-box.js';
import { loadTlsFiles, type TlsFiles } from '../http/tls.js';
import { ConfigError } from './validate.js';

export interface Env {
  /** BB_TLS_CERT / BB_TLS_KEY, read and checked: the intake serves HTTPS (TLS 1.2+). */
  tls?: TlsFiles;
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
  /** BB_MASTER_KEY: encrypts API-created sender secrets at rest (32 bytes). */
  masterKey?: Buffer;
  /** How often each process checks bb_tasks / bb_senders for changes made elsewhere. */
  refreshIntervalMs?: number;
  /** Retries of a replication job after its first attempt (transient failures), then the dead-letter queue. */
  retryLimit: number;
  /** Base of the exponential retry backoff (pg-boss adds jitter). */
  retryDelaySeconds: number;
  /** A worker process whose heartbeat is this old is taken for dead and its jobs are handed back. */
  leaseStaleSeconds: number;
  /** Heartbeat (and dead-worker sweep) interval. */
  leaseHeartbeatSeconds: number;
  /** Seconds before an archived object whose restore was requested is reconciled again. */
  restoreRecheckSeconds: number;
  /** Bytes this process may hold in upload buffers at once, all copies together. */
  uploadMemoryBytes: number;
  /** How often the alert monitor checks dead letters and replication lag (src/alerts/). */
  alertPollSeconds: number;
  /** Backoff base of failed alert deliveries. */
  alertRetrySeconds: number;
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
      BB_TLS_CERT: str({ default: undefined }),
      BB_TLS_KEY: str({ default: undefined }),
      BB_MASTER_KEY: str({ default: undefined }),
      BB_REFRESH_INTERVAL_MS: num({ default: 2_000 }),
      BB_RETRY_LIMIT: num({ default: 6 }),
      BB_RETRY_DELAY_SECONDS: num({ default: 2 }),
      BB_LEASE_STALE_SECONDS: num({ default: 30 }),
      BB_LEASE_HEARTBEAT_SECONDS: num({ default: 5 }),
      BB_RESTORE_RECHECK_SECONDS: num({ default: 900 }),
      BB_UPLOAD_MEMORY_MB: num({ default: 192 }),
      BB_ALERT_POLL_SECONDS: num({ default: 15 }),
      BB_ALERT_RETRY_SECONDS: num({ default: 5 }),
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
  if (clean.BB_ADMIN_JWT_SECRET && clean.BB_ADMIN_JWT_SECRET.length < MIN_ADMIN_SECRET_LENGTH) {
    throw new ConfigError('BB_ADMIN_JWT_SECRET', `must be at least ${MIN_ADMIN_SECRET_LENGTH} characters (try: openssl rand -hex 32)`);
  }
  if (clean.BB_REFRESH_INTERVAL_MS < 100 || !Number.isInteger(clean.BB_REFRESH_INTERVAL_MS)) {
    throw new ConfigError('BB_REFRESH_INTERVAL_MS', 'must be an integer of at least 100');
  }
  let masterKey: Buffer | undefined;
  if (clean.BB_MASTER_KEY) {
    try {
      masterKey = parseMasterKey(clean.BB_MASTER_KEY);
    } catch (err) {
      if (err instanceof MasterKeyError) throw new ConfigError('BB_MASTER_KEY', err.message);
      throw err;
    }
  }
  const nonNegativeInt = (name: string, v: number): void => {
    if (v < 0 || !Number.isInteger(v)) throw new ConfigError(name, 'must be a non-negative integer');
  };
  nonNegativeInt('BB_RETRY_LIMIT', clean.BB_RETRY_LIMIT);
  nonNegativeInt('BB_RETRY_DELAY_SECONDS', clean.BB_RETRY_DELAY_SECONDS);
  nonNegativeInt('BB_RESTORE_RECHECK_SECONDS', clean.BB_RESTORE_RECHECK_SECONDS);
  for (const [name, v] of [
    ['BB_LEASE_STALE_SECONDS', clean.BB_LEASE_STALE_SECONDS],
    ['BB_LEASE_HEARTBEAT_SECONDS', clean.BB_LEASE_HEARTBEAT_SECONDS],
    ['BB_UPLOAD_MEMORY_MB', clean.BB_UPLOAD_MEMORY_MB],
    ['BB_ALERT_POLL_SECONDS', clean.BB_ALERT_POLL_SECONDS],
    ['BB_ALERT_RETRY_SECONDS', clean.BB_ALERT_RETRY_SECONDS],
  ] as const) {
    if (v < 1 || !Number.isInteger(v)) throw new ConfigError(name, 'must be a positive integer');
  }
  const tls = loadTlsFiles(clean.BB_TLS_CERT || undefined, clean.BB_TLS_KEY || undefined);
  return {
    ...(tls !== undefined ? { tls } : {}),
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
    masterKey,
    refreshIntervalMs: clean.BB_REFRESH_INTERVAL_MS,
    retryLimit: clean.BB_RETRY_LIMIT,
    retryDelaySeconds: clean.BB_RETRY_DELAY_SECONDS,
    leaseStaleSeconds: clean.BB_LEASE_STALE_SECONDS,
    leaseHeartbeatSeconds: clean.BB_LEASE_HEARTBEAT_SECONDS,
    restoreRecheckSeconds: clean.BB_RESTORE_RECHECK_SECONDS,
    uploadMemoryBytes: clean.BB_UPLOAD_MEMORY_MB * 1024 * 1024,
    alertPollSeconds: clean.BB_ALERT_POLL_SECONDS,
    alertRetrySeconds: clean.BB_ALERT_RETRY_SECONDS,
  };
}
