/**
 * A checked-out connection that drops (database restarted, network cut)
 * must fail the caller's next query, not crash the process with an
 * unhandled 'error' event.
 */
import t from 'tap';
import { createPool } from '../src/db/pool.js';
import { createTestDatabase } from './support/postgres.js';
import { startTcpProxy, viaProxy } from './support/tcp-proxy.js';

t.test('a checked-out client losing its connection rejects its next query, process survives', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const proxy = await startTcpProxy(Number(new URL(db.url).port));
  t.teardown(() => proxy.close());
  const pool = createPool(viaProxy(db.url, proxy), 2);
  t.teardown(() => pool.end());
  const client = await pool.connect();
  await client.query('SELECT 1');
  await proxy.cut();
  await new Promise((r) => setTimeout(r, 300)); // the socket close arrives while the client is idle-but-checked-out
  await t.rejects(client.query('SELECT 1'), 'the next query fails');
  client.release(true);
  await proxy.restore();
  const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
  t.equal(rows[0]!.one, 1, 'the pool works again after the outage');
});
