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
import { SenderDirectory } from './auth/senders.js';
import type { Config } from './config/load.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { migrate } from './db/migrate.js';
import { MultipartRepo } from './db/multipart-repo.js';
import { ObjectStatusRepo } from './db/object-status-repo.js';
import { createPool } from './db/pool.js';
import { buildApp } from './http/app.js';
import { createMetrics } from './metrics.js';
import { startBoss } from './queue/boss.js';
import { LeaseKeeper } from './queue/leases.js';
import { ReplicationWorkers } from './queue/replication-worker.js';
import { StoreCache } from './replication/stores.js';
import { TaskRegistry } from './tasks/registry.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Bytes this process may hold in upload buffers at once (all copies together). */
const MEMORY_BUDGET_BYTES = 192 * 1024 * 1024;

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
    const boss = await startBoss(connectionString, log);
    teardown.add('queue', () => boss.stop({ graceful: false, wait: true, timeout: 5_000 }));

    const tasks = new TaskRegistry(pool);
    await tasks.syncConfigTasks(config.file.tasks);
    const senders = SenderDirectory.fromConfig(config.file.senders);
    const metrics = createMetrics();
    const stores = new StoreCache(log);
    teardown.add('storage clients', () => stores.close());

    const leases = new LeaseKeeper(pool, boss, log);
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
        log,
        concurrency: env.workerConcurrency,
        memoryBudgetBytes: MEMORY_BUDGET_BYTES,
      });
      await workers.start();
      const w = workers;
      teardown.add('workers', () => w.stop(env.shutdownGraceMs));
    }

    const app = await buildApp({
      logger: log,
      pool,
      boss,
      tasks,
      senders,
      maxSkewSeconds: env.signatureMaxSkewSeconds,
      metrics: metrics.intake,
      metricsRegistry: metrics.registry,
      isShuttingDown: () => shuttingDown,
      version: VERSION,
    });
    teardown.add('http', () => app.close());
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
