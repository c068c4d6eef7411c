/**
 * Reconciliation scans against real servers: an S3 (s3rver) → OSS task and an
 * OSS → S3 task, each with a few thousand objects — missing, different in size,
 * different in content at equal size, extra on the destination, and keys in
 * tricky orders. The first scan queues exactly the expected keys; once the
 * replication workers have copied them, a second scan finds nothing; with the
 * status rows gone a third one decides by ETags and HEADs and still finds
 * nothing. Then scope (prefix-list object, globs, size) narrows what a scan sees.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { ObjectStatusRepo } from '../src/db/object-status-repo.js';
import { MultipartRepo } from '../src/db/multipart-repo.js';
import { LeaseKeeper } from '../src/queue/leases.js';
import { ReplicationWorkers } from '../src/queue/replication-worker.js';
import { StoreCache } from '../src/replication/stores.js';
import { createStore } from '../src/storage/create-store.js';
import type { ObjectStore } from '../src/storage/object-store.js';
import { ScanRunner } from '../src/scan/runner.js';
import { ScanService } from '../src/scan/scans.js';
import { ScanWorkers } from '../src/scan/worker.js';
import type { ScanRecord } from '../src/scan/scan-repo.js';
import type { ScanRequest } from '../src/scan/scope.js';
import { compareKeysByBytes } from '../src/scan/key-order.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { startStack, type Stack } from './support/stack.js';
import { eventually } from './support/service.js';

const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');

/** Keys whose UTF-8 order differs from naive orders: "/" vs ".", "-", " ", %-escapes, combining marks, astral vs BMP. */
const TRICKY = ['a', 'a/', 'a/b', 'a.b', 'a-b', 'a b', 'a%', '%', '%25', '100%', 'a+b', 'é', 'e\u0301', 'ü/x', '\u{1F600}', '\u{1F600}/x', '\uFF5E', 'z\u{1F600}', 'z\uFF5E', '日本/語', 'дом', 'a~', 'A', 'q?x', 'h#1', 'x&y=z'];

type Kind = 'same' | 'missing' | 'size' | 'content' | 'extra';
interface Plan {
  source: Map<string, Buffer>;
  destination: Map<string, Buffer>;
  expected: Record<Exclude<Kind, 'same'>, string[]>;
}

function body(key: string, variant = 0, extra = 0): Buffer {
  const base = createHash('sha256').update(`${variant}:${key}`).digest();
  return Buffer.concat([base, Buffer.alloc(extra, 0x61)]);
}

/** `count` numbered keys under `prefix` (kind by index), the tricky keys under `tricky` (kinds in rotation), and extras. */
function plan(prefix: string, count: number, tricky: string, extras: number): Plan {
  const p: Plan = { source: new Map(), destination: new Map(), expected: { missing: [], size: [], content: [], extra: [] } };
  const put = (key: string, kind: Kind) => {
    if (kind !== 'extra') p.source.set(key, body(key));
    if (kind === 'same') p.destination.set(key, body(key));
    else if (kind === 'size') p.destination.set(key, body(key, 0, 1));
    else if (kind === 'content') p.destination.set(key, body(key, 1));
    else if (kind === 'extra') p.destination.set(key, body(key, 2));
    if (kind !== 'same') p.expected[kind].push(key);
  };
  for (let i = 0; i < count; i++) {
    const m = i % 20;
    put(`${prefix}${String(i).padStart(5, '0')}`, m < 2 ? 'missing' : m === 2 ? 'size' : m === 3 ? 'content' : 'same');
  }
  // Extras sort right after a numbered key ("…00012" < "…00012x" < "…00013").
  for (let i = 0; i < extras; i++) put(`${prefix}${String(i * 7).padStart(5, '0')}x`, 'extra');
  const rotation: Kind[] = ['same', 'missing', 'size', 'content', 'extra'];
  TRICKY.forEach((k, i) => put(`${tricky}${k}`, rotation[i % rotation.length]!));
  return p;
}

async function fill(store: ObjectStore, objects: Map<string, Buffer>, concurrency = 16): Promise<void> {
  const entries = [...objects];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < entries.length) {
        const [key, data] = entries[next++]!;
        await store.put(key, data, data.length);
      }
    }),
  );
}

let s3: S3Server;
let oss: OssServer;
let stack: Stack;
let stores: StoreCache;
let scans: ScanService;
let runner: ScanRunner;
let s3Src: ObjectStore;
let ossDst: ObjectStore;
let ossSrc: ObjectStore;
let s3Dst: ObjectStore;
let s3Lists: ObjectStore;
let planA: Plan;
let planB: Plan;
const env: NodeJS.ProcessEnv = {};
const BIG = ['big/1', 'big/2', 'big/3'];

t.before(async () => {
  s3 = await startS3Server({ buckets: ['scan-src', 'back-dst', 'scan-lists'] });
  oss = await startOssServer({ buckets: ['scan-dst', 'back-src'] });
  Object.assign(env, { ...process.env, SCAN_S3_AK: s3.accessKeyId, SCAN_S3_SK: s3.secretAccessKey, SCAN_OSS_AK: oss.accessKeyId, SCAN_OSS_SK: oss.accessKeySecret });
  const s3Endpoint = { provider: 's3', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'SCAN_S3_AK', secretAccessKeyEnv: 'SCAN_S3_SK' } } as const;
  const ossEndpoint = { provider: 'oss', region: 'oss-cn-hangzhou', endpoint: oss.endpoint, credentials: { accessKeyIdEnv: 'SCAN_OSS_AK', secretAccessKeyEnv: 'SCAN_OSS_SK' } } as const;
  stack = await startStack({
    env,
    tasks: [
      {
        id: 's3-to-oss',
        source: { ...s3Endpoint, bucket: 'scan-src' },
        destination: { ...ossEndpoint, bucket: 'scan-dst' },
        // Small multipart settings: the big objects land on OSS with multipart ETags.
        options: { deletes: true, multipartThresholdBytes: 128 * 1024, partSizeBytes: 100 * 1024 },
      },
      {
        id: 'oss-to-s3',
        source: { ...ossEndpoint, bucket: 'back-src', prefixes: ['data/', 'tricky/'] },
        destination: { ...s3Endpoint, bucket: 'back-dst' },
        options: { deletes: false },
      },
    ],
  });
  stores = new StoreCache(log, env);
  scans = new ScanService(stack.pool, stack.boss, stack.tasks, log);
  runner = new ScanRunner({ pool: stack.pool, boss: stack.boss, tasks: stack.tasks, stores, log, env, options: { progressIntervalMs: 200 } });
  const a = stores.for(stack.tasks.get('s3-to-oss')!);
  const b = stores.for(stack.tasks.get('oss-to-s3')!);
  [s3Src, ossDst, ossSrc, s3Dst] = [a.source, a.destination, b.source, b.destination];
  s3Lists = createStore({ ...s3Endpoint, bucket: 'scan-lists' }, env);

  planA = plan('obj/', 1400, '', 60);
  for (const k of BIG) {
    planA.source.set(k, Buffer.alloc(300 * 1024, k));
    planA.expected.missing.push(k);
  }
  planB = plan('data/', 700, 'tricky/', 40);
  // Outside the task's prefixes: never scanned.
  for (let i = 0; i < 30; i++) planB.source.set(`other/${i}`, body(`other/${i}`));
  await Promise.all([fill(s3Src, planA.source), fill(ossDst, planA.destination), fill(ossSrc, planB.source), fill(s3Dst, planB.destination)]);
});

t.teardown(async () => {
  await stores?.close();
  await s3Lists?.close();
  await stack?.close();
  await s3?.close();
  await oss?.close();
});

async function scanNow(taskId: string, request?: ScanRequest): Promise<ScanRecord> {
  const { scan, started } = await scans.request(taskId, request, 'api');
  if (!started) throw new Error(`scan skipped for ${scan.skippedFor}`);
  const done = await runner.run(scan.id);
  if (!done || done.state !== 'completed') throw new Error(`scan ended ${done?.state}: ${done?.error}`);
  return done;
}

async function queuedKeys(taskId: string, since: Date): Promise<string[]> {
  const { rows } = await stack.pool.query<{ key: string; kind: string }>(
    `SELECT data->>'key' AS key, data->>'kind' AS kind FROM pgboss.job
      WHERE name = 'bb-replicate' AND data->>'taskId' = $1 AND data->>'trigger' = 'scan' AND created_on >= $2`,
    [taskId, since],
  );
  return rows.map((r) => r.key).sort(compareKeysByBytes);
}

const sorted = (keys: string[]) => [...keys].sort(compareKeysByBytes);

t.test('first scans queue exactly the missing, different and (with deletes) extra keys', async (t) => {
  const since = new Date(Date.now() - 1000);
  const a = await scanNow('s3-to-oss');
  t.equal(a.counters.sourceKeys, planA.source.size, 'every source key listed');
  t.equal(a.counters.destinationKeys, planA.destination.size, 'every destination key listed');
  t.equal(a.counters.missing, planA.expected.missing.length);
  t.equal(a.counters.sizeDiffers, planA.expected.size.length);
  t.equal(a.counters.contentDiffers, planA.expected.content.length);
  t.equal(a.counters.extra, planA.expected.extra.length);
  const wantA = sorted([...planA.expected.missing, ...planA.expected.size, ...planA.expected.content, ...planA.expected.extra]);
  t.equal(a.counters.jobsQueued, wantA.length);
  t.same(await queuedKeys('s3-to-oss', since), wantA, 'exactly the expected keys are queued (extras too: deletes are on)');
  t.ok(a.counters.sameByEtag > 1000, `equal objects recognised by their MD5 ETags without a request (${a.counters.sameByEtag})`);
  t.ok(a.counters.heads >= planA.expected.content.length, 'content differences at equal size confirmed by HEAD');

  const b = await scanNow('oss-to-s3');
  t.equal(b.counters.sourceKeys, planB.source.size - 30, 'keys outside the task’s prefixes are not listed');
  t.equal(b.counters.missing, planB.expected.missing.length);
  t.equal(b.counters.sizeDiffers, planB.expected.size.length);
  t.equal(b.counters.contentDiffers, planB.expected.content.length);
  t.equal(b.counters.extra, planB.expected.extra.length, 'extras are counted');
  const wantB = sorted([...planB.expected.missing, ...planB.expected.size, ...planB.expected.content]);
  t.same(await queuedKeys('oss-to-s3', since), wantB, 'exactly the expected keys; no deletes (the task does not allow them)');
  t.equal(b.counters.jobsQueued, wantB.length);
});

t.test('after the workers finish, a second scan finds nothing; without status rows, ETags and HEADs agree', async (t) => {
  const leases = new LeaseKeeper(stack.pool, stack.boss, log);
  await leases.start();
  const workers = new ReplicationWorkers({
    boss: stack.boss,
    pool: stack.pool,
    tasks: stack.tasks,
    stores,
    statuses: new ObjectStatusRepo(stack.pool),
    uploads: new MultipartRepo(stack.pool),
    leases,
    metrics: createMetrics().replication,
    log,
    concurrency: 16,
    memoryBudgetBytes: 64 * 1024 * 1024,
  });
  await workers.start();
  try {
    await eventually(
      async () => {
        const { rows } = await stack.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'bb-replicate' AND state IN ('created', 'retry', 'active')`,
        );
        return rows[0]!.n === 0 ? true : undefined;
      },
      120_000,
      'replication jobs to finish',
    );
  } finally {
    await workers.stop(5_000);
    await leases.stop();
  }
  const { rows: failed } = await stack.pool.query(`SELECT task_id, key, last_error_code FROM bb_object_status WHERE status NOT IN ('completed', 'in_sync', 'deleted')`);
  t.same(failed, [], 'every queued key reconciled');
  t.same(oss.getObject('scan-dst', 'a.b')?.body, planA.source.get('a.b'), 'a key that differed in content now has the source bytes');
  t.equal(oss.getObject('scan-dst', '\u{1F600}'), undefined, 'an extra key was deleted from the destination');
  t.same(oss.getObject('scan-dst', 'big/2')?.body, planA.source.get('big/2'), 'a missing multipart object was copied');

  const a = await scanNow('s3-to-oss');
  t.equal(a.counters.missing + a.counters.sizeDiffers + a.counters.contentDiffers + a.counters.extra, 0, 'S3 → OSS: nothing differs');
  t.equal(a.counters.jobsQueued, 0);
  t.equal(a.counters.sameByStatus, planA.expected.missing.length + planA.expected.size.length + planA.expected.content.length, 'copied keys are known equal from their status rows');
  const b = await scanNow('oss-to-s3');
  t.equal(b.counters.missing + b.counters.sizeDiffers + b.counters.contentDiffers, 0, 'OSS → S3: nothing differs');
  t.equal(b.counters.extra, planB.expected.extra.length, 'the extras stay (no deletes) and are not queued');
  t.equal(b.counters.jobsQueued, 0);

  await stack.pool.query(`DELETE FROM bb_object_status WHERE task_id = 's3-to-oss'`);
  const c = await scanNow('s3-to-oss');
  t.equal(c.counters.missing + c.counters.sizeDiffers + c.counters.contentDiffers + c.counters.extra, 0, 'still nothing without status rows');
  t.equal(c.counters.sameByHead, BIG.length, 'multipart copies are recognised by the fingerprint on a destination HEAD');
  t.equal(c.counters.heads, BIG.length, 'one HEAD each');
});

t.test('scope: a prefix-list object, globs and size bounds narrow the scan', async (t) => {
  // Change a handful of source objects, inside and outside the scopes below.
  const changed = ['obj/00104', 'obj/00105', 'obj/00230', 'obj/00231', 'a.b', 'é', 'obj/00577'];
  for (const k of changed) await s3Src.put(k, body(k, 9, 9), 32 + 9);
  await s3Lists.put('lists/prefixes.txt', Buffer.from('obj/001\r\nobj/0023\n\né\n'), Buffer.byteLength('obj/001\r\nobj/0023\n\né\n'));

  let since = new Date(Date.now() - 1000);
  const listed = await scanNow('s3-to-oss', { prefixList: { key: 'lists/prefixes.txt', bucket: 'scan-lists' } });
  t.same(listed.scope, { mode: 'prefix-list', prefixList: { key: 'lists/prefixes.txt', bucket: 'scan-lists' } });
  t.same(await queuedKeys('s3-to-oss', since), sorted(['obj/00104', 'obj/00105', 'obj/00230', 'obj/00231', 'é']));
  t.equal(listed.counters.sourceKeys, 100 + 10 + 1, 'only keys under the listed prefixes were listed');
  await stack.pool.query(`DELETE FROM pgboss.job WHERE name = 'bb-replicate'`);

  since = new Date(Date.now() - 1000);
  const globbed = await scanNow('s3-to-oss', { include: ['obj/00[12]*'], exclude: ['**/*5'] });
  t.same(await queuedKeys('s3-to-oss', since), sorted(['obj/00104', 'obj/00230', 'obj/00231']));
  await stack.pool.query(`DELETE FROM pgboss.job WHERE name = 'bb-replicate'`);
  t.ok(globbed.counters.sourceKeys < 300, 'the include globs’ literal prefix narrowed the listing');

  since = new Date(Date.now() - 1000);
  await scanNow('s3-to-oss', { prefixes: ['obj/', 'a'], minSize: 40 });
  t.same(await queuedKeys('s3-to-oss', since), sorted(['obj/00104', 'obj/00105', 'obj/00230', 'obj/00231', 'a.b', 'obj/00577']), 'minSize keeps only the grown objects');
  await stack.pool.query(`DELETE FROM pgboss.job WHERE name = 'bb-replicate'`);
});

t.test('scan jobs: queued through bb-scan, run by the scan workers, one at a time per task', async (t) => {
  const workers = new ScanWorkers(stack.boss, runner, log, { concurrency: 2, pollingIntervalSeconds: 0.5 });
  await workers.start();
  try {
    const first = await scans.request('oss-to-s3', undefined, 'api');
    const second = await scans.request('oss-to-s3', undefined, 'api');
    t.equal(first.started, true);
    t.equal(second.started, false, 'a second request while the first is active is not started');
    t.equal(second.scan.state, 'skipped');
    t.equal(second.scan.skippedFor, first.scan.id);
    const done = await eventually(async () => {
      const s = await scans.get('oss-to-s3', first.scan.id);
      return s && s.state !== 'queued' && s.state !== 'running' ? s : undefined;
    }, 60_000, 'the queued scan to finish');
    t.equal(done.state, 'completed');
    t.equal(done.counters.sourceKeys, planB.source.size - 30);
  } finally {
    await workers.stop();
  }
});
