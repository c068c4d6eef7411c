/**
 * A fresh database per test file in the run's PostgreSQL (scripts/test.mjs
 * starts one and passes BB_TEST_ADMIN_URL). Run alone (`npx tap file`), a file
 * starts its own embedded cluster instead.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';

export interface TestDatabase {
  url: string;
  /** Connection string of the server's admin database (for chaos tests that need it). */
  adminUrl: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  let adminUrl = process.env.BB_TEST_ADMIN_URL;
  let stopCluster: (() => Promise<void>) | undefined;
  if (!adminUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'bb-pg-'));
    const cluster = await startEmbeddedPostgres({ dataDir: dir, database: 'postgres' });
    adminUrl = cluster.connectionString;
    stopCluster = async () => {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const name = `bbt_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const finalAdminUrl = adminUrl;
  return {
    url: withDatabase(adminUrl, name),
    adminUrl: finalAdminUrl,
    async drop() {
      const c = new pg.Client({ connectionString: finalAdminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await c.end();
      if (stopCluster) await stopCluster();
    },
  };
}
