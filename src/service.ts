/**
 * Assembles the running service: config → database → migrations → queue →
 * HTTP + workers, and takes it apart again in reverse order. main.ts and the
 * CLI's `serve` call this; tests start the real process instead.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from 'pino';
import { AdminAuth } from './auth/admin-jwt.js';
import { SecretBox } from './auth/secret-box.js';
import { SenderDirectory } from './auth/senders.js';
import type { Config } from './config/load.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { migrate } from './db/migrate.js';
import { MultipartRepo } from './db/multipart-repo.js';
import { ObjectStatusRepo } from './db/object-status-repo.js';
import { createPool } from './db/pool.js';
import { RegistryRefresher } from './db/registry-refresh.js';
import { SenderRepo } from './db/sender-repo.js';
import { TaskStatusRepo } from './db/task-status-repo.js';
import { buildApp } from './http/app.js';
import { httpsOptions, plaintextWarning } from './http/tls.js';
import { createMetrics, registerQueueGauges } from './metrics.js';
import { Alerts } from './alerts/index.js';
import { DEFAULT_QUEUE_SETTINGS, startBoss } from './queue/boss.js';
import { IntakeEnqueuer } from './queue/enqueue.js';
import { JobWakeups } from './queue/job-wakeups.js';
import { LeaseKeeper } from './queue/leases.js';
import { ReplicationWorkers } from './queue/replication-worker.js';
import { StoreCache } from './replication/stores.js';
import { TaskRegistry } from './tasks/registry.js';
import { ScanRunner } from './scan/runner.js';
import { SCAN_READY_CHANNEL } from './scan/scan-jobs.js';
import { ScanService } from './scan/scans.js';
import { ScanScheduler } from './scan/scheduler.js';
import { ScanWorkers } from './scan/worker.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface RunningService {
  app: FastifyInstance;
  pool: pg.Pool;
  boss: PgBoss;
  address: string;
  /** Graceful stop: refuse new requests, let jobs finish (or hand them back), close everything. */
  stop(): Promise<void>;
}

/** Closers run in reverse order of creation, on failure during start as on stop. */
class Teardown {
  private readonly steps: { name: string; fn: () => Promise<unknown> }[] = [];
  constructor(private readonly log: Logger) {}
  add(name: string, fn: () => Promise<unknown>): void {
    this.steps.push({ name, fn });
  }
  async run(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.fn();
      } catch (err) {
        this.log.warn({ err, step: step.name }, 'shutdown step failed');
      }
    }
  }
}

export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const { env } = config;
  const teardown = new Teardown(log);
  let shuttingDown = false;
  try {
    let connectionString = env.databaseUrl;
    if (!connectionString) {
      log.info({ dataDir: env.dataDir }, 'DATABASE_URL unset: starting embedded PostgreSQL');
      const embedded: EmbeddedDatabase = await startEmbeddedPostgres({ dataDir: env.dataDir, logger: log });
      teardown.add('embedded postgres', () => embedded.stop());
      connectionString = embedded.connectionString;
    }
    const pool = createPool(connectionString);
    teardown.add('pool', () => pool.end());
    const applied = await migrate(pool);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
    const boss = await startBoss(connectionString, log, {
      ...DEFAULT_QUEUE_SETTINGS,
      retryLimit: env.retryLimit,
      retryDelaySeconds: env.retryDelaySeconds,
    });
    teardown.add('queue', () => boss.stop({ graceful: false, wait: true, timeout: 5_000 }));

    const tasks = new TaskRegistry(pool);
    await tasks.syncConfigTasks(config.file.tasks);
    const senders = SenderDirectory.fromConfig(config.file.senders);
    // API-managed senders and every registry change made by other processes:
    // polled from bb_registry_versions (see db/registry-refresh.ts).
    const senderRepo = new SenderRepo(pool, env.masterKey ? new SecretBox(env.masterKey) : undefined);
    const refresher = new RegistryRefresher(
      pool,
      { tasks: () => tasks.load(), senders: () => senders.loadApiSenders(senderRepo, log) },
      { intervalMs: env.refreshIntervalMs ?? 2_000, log },
    );
    await refresher.start();
    teardown.add('registry refresh', () => refresher.stop());
    const adminAuth = new AdminAuth({
      secret: env.adminJwtSecret,
      jwksUrl: env.adminJwksUrl,
      issuer: env.adminJwtIssuer,
      audience: env.adminJwtAudience,
    });
    if (adminAuth.enabled) log.info({ auth: adminAuth.mode }, 'admin API enabled');
    else log.warn('admin API disabled: neither BB_ADMIN_JWT_SECRET nor BB_ADMIN_JWKS_URL is set; every /admin call answers 503 ADMIN_DISABLED');
    if (!env.masterKey) log.info('BB_MASTER_KEY is not set: senders cannot be created through the admin API');
    const metrics = createMetrics();
    const statusRepo = new TaskStatusRepo(pool);
    registerQueueGauges(metrics.registry, { snapshot: () => statusRepo.queueSnapshot(), taskIds: () => tasks.all().map((t) => t.id) });
    const stores = new StoreCache(log, process.env, { pool });
    // Alerts (src/alerts/): an outbox delivered on its own timer; workers only record failures into it.
    const alerts = new Alerts({
      pool,
      tasks,
      statuses: statusRepo,
      log,
      pollIntervalMs: env.alertPollSeconds * 1000,
      deliveryIntervalMs: Math.min(5_000, env.alertPollSeconds * 1000),
      retryBaseSeconds: env.alertRetrySeconds,
    });
    alerts.start();
    teardown.add('alerts', () => alerts.stop());
    teardown.add('storage clients', () => stores.close());

    const leases = new LeaseKeeper(pool, boss, log, {
      heartbeatSeconds: env.leaseHeartbeatSeconds,
      staleAfterSeconds: env.leaseStaleSeconds,
    });
    await leases.start();
    teardown.add('worker leases', () => leases.stop());
    let workers: ReplicationWorkers | undefined;
    if (env.workers) {
      workers = new ReplicationWorkers({
        boss,
        pool,
        tasks,
        stores,
        statuses: new ObjectStatusRepo(pool),
        uploads: new MultipartRepo(pool),
        leases,
        metrics: metrics.replication,
        onSettleStatement: (jobs, committed, next) => metrics.settleBatches.batch(jobs, committed, next),
        log,
        concurrency: env.workerConcurrency,
        memoryBudgetBytes: env.uploadMemoryBytes,
        restoreRecheckSeconds: env.restoreRecheckSeconds,
        // Follow-ups of a cleanup that failed back off like job retries (upload-intents.ts).
        intentRecheckSeconds: env.retryDelaySeconds,
        alerts,
      });
      await workers.start();
      const w = workers;
      teardown.add('workers', () => w.stop(env.shutdownGraceMs));
      // Jobs queued by any process (this one's intake, an intake-only deployment, scans, the CLI)
      // wake the dispatcher at once instead of at its next poll; polling stays as the fallback
      // (a lost notification costs at most one poll interval). Closed before the workers stop.
      const wakeups = new JobWakeups({ connectionString, log, onWake: () => w.nudge() });
      await wakeups.start();
      teardown.add('job wake-ups', () => wakeups.close());
    }

    // Reconciliation scans (src/scan/): any process records requests; worker processes run them and the schedules.
    const scans = new ScanService(pool, boss, tasks, log);
    if (env.workers) {
      const scanWorkers = new ScanWorkers(boss, new ScanRunner({ pool, boss, tasks, stores, log }), log);
      await scanWorkers.start();
      teardown.add('scan workers', () => scanWorkers.stop());
      // A scan queued by any process (the admin API, the CLI, a schedule, a hand-back) wakes the
      // scan workers at once instead of at their next poll (2 s), which stays as the fallback.
      // Closed before the scan workers stop.
      const scanWakeups = new JobWakeups({ connectionString, log, channel: SCAN_READY_CHANNEL, onWake: () => scanWorkers.nudge() });
      await scanWakeups.start();
      teardown.add('scan wake-ups', () => scanWakeups.close());
      const scheduler = new ScanScheduler({ pool, boss, tasks, scans, log });
      await scheduler.start();
      teardown.add('scan scheduler', () => scheduler.stop());
    }

    // Closed after the HTTP server (teardown runs in reverse): requests still waiting for
    // their batch are written before the pool closes.
    const enqueuer = await IntakeEnqueuer.create(boss, pool, { log, onBatch: (n, committed) => metrics.intakeBatches.batch(n, committed) });
    teardown.add('intake enqueuer', () => enqueuer.close());
    const app = await buildApp({
      logger: log,
      pool,
      boss,
      enqueuer,
      tasks,
      senders,
      maxSkewSeconds: env.signatureMaxSkewSeconds,
      metrics: metrics.intake,
      metricsRegistry: metrics.registry,
      isShuttingDown: () => shuttingDown,
      version: VERSION,
      admin: { auth: adminAuth, masterKey: env.masterKey },
      scans,
      ...(env.tls ? { https: httpsOptions(env.tls) } : {}),
    });
    teardown.add('http', () => app.close());
    const plaintext = plaintextWarning(env.host, env.tls !== undefined);
    if (plaintext) log.warn({ host: env.host }, plaintext);
    let address: string;
    try {
      address = await app.listen({ port: env.port, host: env.host });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EADDRINUSE') throw new StartupError(`port ${env.port} on ${env.host} is already in use`);
      if (code === 'EACCES') throw new StartupError(`not allowed to listen on ${env.host}:${env.port}`);
      throw err;
    }
    log.info({ address, tasks: tasks.all().length, senders: config.file.senders.length, workers: env.workers ? env.workerConcurrency : 0 }, 'bucketbridge ready');

    let stopping: Promise<void> | undefined;
    return {
      app,
      pool,
      boss,
      address,
      stop() {
        shuttingDown = true;
        stopping ??= teardown.run();
        return stopping;
      },
    };
  } catch (err) {
    shuttingDown = true;
    await teardown.run();
    throw err;
  }
}
