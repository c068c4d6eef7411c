import t from 'tap';
import { migrate, readMigrations } from '../src/db/migrate.js';
import { createPool } from '../src/db/pool.js';
import { createTestDatabase } from './support/postgres.js';

t.test('migrations apply in order, once, and concurrently safely', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const a = createPool(db.url, 2);
  const b = createPool(db.url, 2);
  t.teardown(async () => {
    await a.end();
    await b.end();
  });
  // Two processes starting at once: the advisory lock makes them take turns.
  const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
  const all = readMigrations().map((m) => `${m.version}_${m.name}`);
  t.same([...ra, ...rb].sort(), all, 'each migration applied exactly once across both');
  t.same(await migrate(a), [], 'second run applies nothing');
  const { rows } = await a.query('SELECT version FROM bb_schema_migrations ORDER BY version');
  t.same(rows.map((r: { version: string }) => r.version), readMigrations().map((m) => m.version));
  const tables = await a.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('bb_tasks','bb_object_status','bb_intake_ledger','bb_multipart_uploads','bb_job_leases')");
  t.equal(tables.rows[0].n, 5);
});

t.test('an edited migration is refused', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const pool = createPool(db.url, 2);
  t.teardown(() => pool.end());
  await migrate(pool);
  await pool.query("UPDATE bb_schema_migrations SET checksum = 'x' WHERE version = '001'");
  await t.rejects(migrate(pool), /was edited after it was applied/);
});
