/**
 * The scan's "destination absent" hint, through a real scan, the real workers
 * and the OSS test server (which logs every request by method, bucket and
 * key): a key the destination listing did not have is copied with one source
 * GET and one destination PUT, no destination HEAD. Everything else HEADs the
 * destination as before: an event-queued key, a stale hint, a retry, a key
 * with an upload intent. When the world changes between the listing and the
 * copy, the end state is the one a HEAD would have led to: a destination
 * written meanwhile is overwritten with the source's bytes (`completed`); a
 * source deleted meanwhile makes the worker HEAD the destination after all
 * (deleted with deletes on, left untouched as `source_missing` with deletes
 * off); an archived source is still recorded `archived`.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { createLogger } from '../src/logger.js';
import { enqueueReplications } from '../src/queue/enqueue.js';
import { DESTINATION_HINT_MAX_AGE_MS, trustsDestinationAbsent } from '../src/replication/reconcile.js';
import { StoreCache } from '../src/replication/stores.js';
import { ScanRunner } from '../src/scan/runner.js';
import { ScanService } from '../src/scan/scans.js';
import type { ScanRecord } from '../src/scan/scan-repo.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication, type ReplicationHarness } from './support/replication.js';

const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');

let oss: OssServer;
let proxy: FaultProxy;
let h: ReplicationHarness;
let stores: StoreCache;
let scans: ScanService;
let runner: ScanRunner;

t.before(async () => {
  oss = await startOssServer({ buckets: ['hsrc', 'hdst', 'hkeep'] });
  // Every task request goes through the proxy, so a test can act at the moment the worker reads the source.
  proxy = await startFaultProxy({ target: oss.endpoint });
  const env = { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret };
  const O = (b: string) => ossEndpoint(proxy.endpoint, b);
  h = await startReplication({
    env,
    tasks: [
      { id: 'del', source: O('hsrc'), destination: O('hdst'), options: { deletes: true } },
      { id: 'keep', source: O('hsrc'), destination: O('hkeep'), options: { deletes: false } },
    ],
  });
  stores = new StoreCache(log, { ...process.env, ...env });
  scans = new ScanService(h.pool, h.boss, h.tasks, log);
  runner = new ScanRunner({ pool: h.pool, boss: h.boss, tasks: h.tasks, stores, log, options: { progressIntervalMs: 200 } });
});

t.teardown(async () => {
  await stores?.close();
  await h?.close();
  await proxy?.close();
  await oss?.close();
});

/** Methods the OSS server saw for one object of one bucket, in order. */
const requests = (bucket: string, key: string): string[] => oss.requests.filter((r) => r.bucket === bucket && r.key === key).map((r) => r.method);
const count = (bucket: string, key: string, method: string): number => requests(bucket, key).filter((m) => m === method).length;

async function scan(taskId: string, prefix: string): Promise<ScanRecord> {
  const { scan, started } = await scans.request(taskId, { prefixes: [prefix] }, 'api');
  if (!started) throw new Error(`scan skipped for ${scan.skippedFor}`);
  const done = await runner.run(scan.id);
  if (!done || done.state !== 'completed') throw new Error(`scan ended ${done?.state}: ${done?.error}`);
  return done;
}

async function jobData(taskId: string, key: string): Promise<{ trigger: string; destinationAbsentAt?: string }[]> {
  const { rows } = await h.pool.query<{ data: { trigger: string; destinationAbsentAt?: string } }>(
    `SELECT data FROM pgboss.job WHERE name = 'bb-replicate' AND singleton_key = $1 ORDER BY created_on`,
    [`${taskId}:${key}`],
  );
  return rows.map((r) => r.data);
}

/** Queue a key as a scan would, with the hint stamped `ageMs` ago. */
async function enqueueHinted(taskId: string, key: string, ageMs: number): Promise<void> {
  const destinationAbsentAt = new Date(Date.now() - ageMs).toISOString();
  const r = await enqueueReplications(h.boss, h.pool, [{ taskId, key, trigger: 'scan', kind: 'created', destinationAbsentAt }]);
  if (r.accepted !== 1) throw new Error('not queued');
}

t.test('when the hint is trusted', async (t) => {
  const job = (over: { at?: string | undefined; retryCount?: number; intentPending?: boolean } = {}) => ({
    data: 'at' in over ? (over.at === undefined ? {} : { destinationAbsentAt: over.at }) : { destinationAbsentAt: new Date(now - 1000).toISOString() },
    retryCount: over.retryCount ?? 0,
    intentPending: over.intentPending ?? false,
  });
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  t.equal(trustsDestinationAbsent(job(), now), true, 'fresh, first attempt, no intent');
  t.equal(trustsDestinationAbsent(undefined, now), false, 'no job');
  t.equal(trustsDestinationAbsent(job({ at: undefined }), now), false, 'no hint (an event or retry job)');
  t.equal(trustsDestinationAbsent(job({ retryCount: 1 }), now), false, 'a retry');
  t.equal(trustsDestinationAbsent(job({ intentPending: true }), now), false, 'an upload intent pending');
  t.equal(trustsDestinationAbsent(job({ at: iso(now - DESTINATION_HINT_MAX_AGE_MS + 1000) }), now), true, 'just under the bound');
  t.equal(trustsDestinationAbsent(job({ at: iso(now - DESTINATION_HINT_MAX_AGE_MS) }), now), false, 'at the bound');
  t.equal(trustsDestinationAbsent(job({ at: iso(now + 30_000) }), now), true, 'a little in the future (another host’s clock)');
  t.equal(trustsDestinationAbsent(job({ at: iso(now + 5 * 60_000) }), now), false, 'far in the future: a wrong clock');
  t.equal(trustsDestinationAbsent(job({ at: 'not a time' }), now), false, 'unreadable');
});

t.test('a key the scan found missing is copied with one source GET and one destination PUT, no destination HEAD', async (t) => {
  const keys = ['miss/a.bin', 'miss/b.bin', 'miss/c.txt'];
  const bodies = new Map(keys.map((k) => [k, randomBytes(4096 + k.length)]));
  for (const [k, b] of bodies) await oss.client('hsrc').put(k, b);
  const done = await scan('del', 'miss/');
  t.equal(done.counters.missing, keys.length);
  t.equal(done.counters.jobsQueued, keys.length);
  for (const k of keys) {
    const row = await h.settled('del', k);
    t.equal(row.status, 'completed', k);
    t.equal(row.attempts, 1);
    t.ok(oss.getObject('hdst', k)?.body.equals(bodies.get(k)!), `${k}: bytes copied`);
    t.same(requests('hsrc', k), ['PUT', 'GET'], `${k}: the source was read with one GET (after the test's PUT)`);
    t.same(requests('hdst', k), ['PUT'], `${k}: one PUT on the destination, no HEAD`);
    const data = await jobData('del', k);
    t.equal(data.length, 1);
    t.equal(data[0]!.trigger, 'scan');
    t.type(data[0]!.destinationAbsentAt, 'string', 'the job carried the hint');
  }
});

t.test('a key queued by an event HEADs the destination', async (t) => {
  const key = 'event/a.bin';
  await oss.client('hsrc').put(key, randomBytes(2048));
  await h.enqueue('del', key);
  t.equal((await h.settled('del', key)).status, 'completed');
  t.same(requests('hdst', key), ['HEAD', 'PUT']);
  t.same(requests('hsrc', key), ['PUT', 'GET']);
  t.equal((await jobData('del', key))[0]!.destinationAbsentAt, undefined, 'no hint on an event job');
});

t.test('a stale hint HEADs the destination', async (t) => {
  const key = 'stale/a.bin';
  await oss.client('hsrc').put(key, randomBytes(2048));
  await enqueueHinted('del', key, DESTINATION_HINT_MAX_AGE_MS + 60_000);
  t.equal((await h.settled('del', key)).status, 'completed');
  t.same(requests('hdst', key), ['HEAD', 'PUT']);
});

t.test('a retry HEADs the destination', async (t) => {
  const key = 'retry/a.bin';
  const body = randomBytes(2048);
  await oss.client('hsrc').put(key, body);
  // The first PUT of the key is answered 500 by the proxy (the server never sees it): a transient failure.
  const failPut = proxy.add({ match: { method: 'PUT', path: `/${key}`, headers: { host: /^hdst\./ } }, nth: 1, action: { type: 'status', status: 500, code: 'InternalError' } });
  await scan('del', 'retry/');
  const row = await h.settled('del', key, (r) => r.status === 'completed');
  t.equal(row.status, 'completed');
  t.equal(row.attempts, 2, 'copied on the second attempt');
  t.equal(failPut.fired, 1);
  t.same(requests('hdst', key), ['HEAD', 'PUT'], 'first attempt: no HEAD (its PUT failed at the proxy); the retry HEADed');
  t.same(requests('hsrc', key), ['PUT', 'GET', 'GET'], 'one GET per attempt');
  t.ok(oss.getObject('hdst', key)?.body.equals(body));
  failPut.remove();
});

t.test('a key with an upload intent pending HEADs the destination', async (t) => {
  const key = 'intent/a.bin';
  await oss.client('hsrc').put(key, randomBytes(2048));
  // As left by a multipart create interrupted before its upload was recorded (queue/upload-intents.ts).
  await h.pool.query('INSERT INTO bb_upload_intents (task_id, key) VALUES ($1, $2)', ['del', key]);
  await enqueueHinted('del', key, 1000);
  t.equal((await h.settled('del', key)).status, 'completed');
  t.same(requests('hdst', key), ['HEAD', 'PUT']);
  const { rowCount } = await h.pool.query('SELECT 1 FROM bb_upload_intents WHERE task_id = $1 AND key = $2', ['del', key]);
  t.equal(rowCount, 0, 'the intent was cleared by the sweep');
});

t.test('the destination written between the listing and the copy is overwritten with the source bytes', async (t) => {
  const key = 'race/written.bin';
  const source = randomBytes(3000);
  const other = randomBytes(1000);
  await oss.client('hsrc').put(key, source);
  // When the worker reads the source (having skipped the destination HEAD), something else writes the destination.
  const hook = proxy.add({
    match: { method: 'GET', path: `/${key}`, headers: { host: /^hsrc\./ } },
    nth: 1,
    action: { type: 'hook', hook: async () => void (await oss.client('hdst').put(key, other)) },
  });
  const done = await scan('del', 'race/');
  t.equal(done.counters.missing, 1);
  const row = await h.settled('del', key);
  t.equal(hook.fired, 1);
  t.equal(row.status, 'completed', 'completed (a HEAD would have found a different object and copied too)');
  t.equal(row.attempts, 1);
  t.ok(oss.getObject('hdst', key)?.body.equals(source), 'the destination holds the source bytes');
  t.same(requests('hdst', key), ['PUT', 'PUT'], 'the other writer’s PUT, then the copy’s; no HEAD');
  t.same(requests('hsrc', key), ['PUT', 'GET']);
  hook.remove();
});

/** A scan finds `key` missing; when the worker opens the source, it has been deleted and the destination written. */
async function sourceDeletedMeanwhile(taskId: string, dstBucket: string, key: string, written: Buffer): Promise<void> {
  await oss.client('hsrc').put(key, randomBytes(2000));
  const hook = proxy.add({
    match: { method: 'GET', path: `/${key}`, headers: { host: /^hsrc\./ } },
    nth: 1,
    action: {
      type: 'hook',
      hook: async () => {
        await oss.client('hsrc').delete(key);
        await oss.client(dstBucket).put(key, written);
      },
    },
  });
  const done = await scan(taskId, key);
  if (done.counters.missing !== 1) throw new Error(`scan found ${done.counters.missing} missing`);
  await h.settled(taskId, key);
  if (hook.fired !== 1) throw new Error('the source GET was not intercepted');
  hook.remove();
}

t.test('the source deleted between the listing and the copy, deletes on: the destination written meanwhile is deleted', async (t) => {
  const key = 'gone/del.bin';
  await sourceDeletedMeanwhile('del', 'hdst', key, randomBytes(500));
  const row = await h.status('del', key);
  t.equal(row?.status, 'deleted');
  t.equal(row?.attempts, 1);
  t.equal(oss.getObject('hdst', key), undefined, 'deleted on the destination');
  t.same(requests('hsrc', key), ['PUT', 'DELETE', 'GET'], 'the test’s PUT and DELETE, then the worker’s GET (404)');
  t.same(requests('hdst', key), ['PUT', 'HEAD', 'DELETE'], 'the hint was dropped: HEAD, then the delete');
});

t.test('the source deleted between the listing and the copy, deletes off: source_missing, the destination untouched', async (t) => {
  const key = 'gone/keep.bin';
  const written = randomBytes(700);
  await sourceDeletedMeanwhile('keep', 'hkeep', key, written);
  const row = await h.status('keep', key);
  t.equal(row?.status, 'source_missing');
  t.equal(row?.attempts, 1);
  t.ok(oss.getObject('hkeep', key)?.body.equals(written), 'the destination object is untouched');
  t.same(requests('hkeep', key), ['PUT', 'HEAD'], 'HEADed (normal rules), nothing written or deleted');
});

t.test('an archived source found missing by a scan is still recorded archived', async (t) => {
  const key = 'cold/a.bin';
  await oss.client('hsrc').put(key, randomBytes(2048), { headers: { 'x-oss-storage-class': 'Archive' } });
  const done = await scan('keep', 'cold/');
  t.equal(done.counters.missing, 1);
  const row = await h.settled('keep', key);
  t.equal(row.status, 'archived');
  t.same(requests('hsrc', key), ['PUT', 'GET', 'HEAD'], 'the GET is refused (InvalidObjectState), the source HEADed');
  t.same(requests('hkeep', key), ['HEAD'], 'then the destination HEADed, as without a hint');
  t.equal(oss.getObject('hkeep', key), undefined);
});
