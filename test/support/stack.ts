/**
 * The service's parts assembled in-process over a real database and queue
 * (no workers unless asked), listening on an ephemeral loopback port. For
 * HTTP-level tests that need to look inside the database between requests.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { JWTVerifyGetKey } from 'jose';
import PgBoss from 'pg-boss';
import type pg from 'pg';
import { AdminAuth, mintAdminToken } from '../../src/auth/admin-jwt.js';
import { SecretBox } from '../../src/auth/secret-box.js';
import { SenderDirectory, type Sender } from '../../src/auth/senders.js';
import type { TaskConfig } from '../../src/config/types.js';
import { validateTask } from '../../src/config/validate.js';
import { migrate } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { SenderRepo } from '../../src/db/sender-repo.js';
import { TaskStatusRepo } from '../../src/db/task-status-repo.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, registerQueueGauges, type Metrics } from '../../src/metrics.js';
import { QUEUES, startBoss } from '../../src/queue/boss.js';
import { IntakeEnqueuer, type IntakeEnqueuerOptions } from '../../src/queue/enqueue.js';
import { TaskRegistry } from '../../src/tasks/registry.js';
import { buildTestApp } from './app.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { startTcpProxy, viaProxy, type TcpProxy } from './tcp-proxy.js';

export interface Stack {
  db: TestDatabase;
  pool: pg.Pool;
  boss: PgBoss;
  /** The app's intake enqueuer: its stats() show how requests were batched. */
  enqueuer: IntakeEnqueuer;
  tasks: TaskRegistry;
  senders: SenderDirectory;
  app: FastifyInstance;
  url: string;
  /** The metrics the app serves on GET /metrics (workers of startReplication({ metrics }) can report into them). */
  metrics: Metrics;
  /** Present with `{ dbProxy: true }`: the app reaches PostgreSQL through it, so a test can cut the database. */
  dbProxy?: TcpProxy;
  /** The admin JWT secret (HS256) the app accepts, unless `admin.secret: null`. */
  adminSecret?: string;
  /** BB_MASTER_KEY of the app, unless `admin.masterKey: null`. */
  masterKey?: Buffer;
  /** An admin token signed with adminSecret; default scopes bb:read and bb:write. */
  token(scopes?: string[], options?: { ttlSeconds?: number; issuer?: string; audience?: string; subject?: string }): Promise<string>;
  /** An admin API call with a bearer token (default: a read+write token); the body is sent as JSON. */
  admin(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: any; headers: Headers }>;
  /** Jobs in the replicate queue (any state), for "nothing was queued" assertions. */
  jobCount(): Promise<number>;
  jobs(): Promise<{ taskId: string; key: string; state: string }[]>;
  close(): Promise<void>;
}

export interface StackAdminOptions {
  /** HS256 secret; default random, null: no secret. */
  secret?: string | null;
  /** A key set resolver (as from a JWKS). */
  jwks?: JWTVerifyGetKey;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** BB_MASTER_KEY; default random, null: none. */
  masterKey?: Buffer | null;
}

export async function startStack(
  options: {
    tasks?: unknown[];
    senders?: Sender[];
    env?: NodeJS.ProcessEnv;
    dbProxy?: boolean;
    admin?: StackAdminOptions;
    metricsTtlMs?: number;
    enqueuer?: IntakeEnqueuerOptions;
  } = {},
): Promise<Stack> {
  const db = await createTestDatabase();
  const dbProxy = options.dbProxy ? await startTcpProxy(Number(new URL(db.url).port)) : undefined;
  const appDbUrl = dbProxy ? viaProxy(db.url, dbProxy) : db.url;
  const pool = createPool(appDbUrl, 10);
  await migrate(pool);
  const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');
  const boss = await startBoss(appDbUrl, log, undefined, { supervise: false, schedule: false });
  const tasks = new TaskRegistry(pool);
  const configs: TaskConfig[] = (options.tasks ?? []).map((t, i) => validateTask(structuredClone(t), `tasks[${i}]`, options.env ?? { ...process.env }));
  await tasks.syncConfigTasks(configs);
  const senders = new SenderDirectory();
  for (const s of options.senders ?? []) senders.set(s);
  const adminSecret = options.admin?.secret === null ? undefined : (options.admin?.secret ?? randomBytes(32).toString('hex'));
  const masterKey = options.admin?.masterKey === null ? undefined : (options.admin?.masterKey ?? randomBytes(32));
  const metrics = createMetrics();
  const statusRepo = new TaskStatusRepo(pool);
  registerQueueGauges(metrics.registry, { snapshot: () => statusRepo.queueSnapshot(), taskIds: () => tasks.all().map((t) => t.id) }, options.metricsTtlMs ?? 0);
  await senders.loadApiSenders(new SenderRepo(pool, masterKey ? new SecretBox(masterKey) : undefined));
  const enqueuer = await IntakeEnqueuer.create(boss, pool, {
    log,
    ...options.enqueuer,
    onBatch: (n, committed) => {
      metrics.intakeBatches.batch(n, committed);
      options.enqueuer?.onBatch?.(n, committed);
    },
  });
  const app = await buildTestApp({
    logger: log,
    pool,
    boss,
    enqueuer,
    tasks,
    senders,
    metrics: metrics.intake,
    metricsRegistry: metrics.registry,
    admin: {
      auth: new AdminAuth({ secret: adminSecret, jwks: options.admin?.jwks, jwksUrl: options.admin?.jwksUrl, issuer: options.admin?.issuer, audience: options.admin?.audience }),
      masterKey,
      env: options.env ?? process.env,
    },
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const token: Stack['token'] = async (scopes = ['bb:read', 'bb:write'], o = {}) => {
    if (!adminSecret) throw new Error('this stack has no admin secret');
    return mintAdminToken({ secret: adminSecret, scopes, ttlSeconds: o.ttlSeconds ?? 300, issuer: o.issuer ?? options.admin?.issuer, audience: o.audience ?? options.admin?.audience, subject: o.subject ?? 'test' });
  };
  // Assertions read the database directly, so they work while the proxy is cut.
  const direct = createPool(db.url, 2);
  return {
    db,
    pool,
    boss,
    enqueuer,
    tasks,
    senders,
    app,
    url,
    metrics,
    dbProxy,
    adminSecret,
    masterKey,
    token,
    async admin(method, path, body, bearer) {
      const auth = bearer === null ? undefined : (bearer ?? (await token()));
      const headers: Record<string, string> = {};
      if (auth) headers.authorization = `Bearer ${auth}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async jobCount() {
      const { rows } = await direct.query<{ n: number }>('SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1', [QUEUES.replicate]);
      return rows[0]!.n;
    },
    async jobs() {
      const { rows } = await direct.query<{ data: { taskId: string; key: string }; state: string }>(
        'SELECT data, state FROM pgboss.job WHERE name = $1 ORDER BY created_on, id',
        [QUEUES.replicate],
      );
      return rows.map((r) => ({ taskId: r.data.taskId, key: r.data.key, state: r.state }));
    },
    async close() {
      await app.close();
      await enqueuer.close();
      await boss.stop({ graceful: false, wait: true, timeout: 2000 });
      await pool.end();
      await direct.end();
      await dbProxy?.close();
      await db.drop();
    },
  };
}

/** A task definition for tests; endpoints are never contacted unless workers run. */
export function testTask(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    source: { provider: 's3', bucket: `${id}-src`, region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true },
    destination: { provider: 's3', bucket: `${id}-dst`, region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true },
    ...overrides,
  };
}
