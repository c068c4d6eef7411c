/** The PostgreSQL pool shared by repositories (pg-boss keeps its own). */
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export function createPool(connectionString: string, max = 20): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    // Fail fast when the database is down, so intake answers 503 quickly.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: 'bucketbridge',
  });
  // An idle client losing its connection must not crash the process; the
  // next query gets a fresh connection.
  pool.on('error', () => {});
  // A client that is checked out (inside a transaction, between two queries)
  // when the connection drops emits 'error' with no listener of pg-pool's
  // attached, which would crash the process. The failure reaches the caller
  // through its next query anyway, so a listener that swallows it is enough.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

/** Run `fn` inside one transaction on one connection. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError; // the connection itself is gone: don't return it to the pool
    });
    throw err;
  } finally {
    client.release(broken);
  }
}
