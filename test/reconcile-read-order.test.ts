/**
 * In what order a reconcile reads the two sides (replication/reconcile.ts,
 * module comment), through the real workers, the OSS test server (which logs
 * every request in arrival order) and a fault proxy that holds the
 * destination's HEAD back: a job that says the source changed (an event of a
 * created object) sends the source GET without waiting for the destination
 * HEAD, so the GET reaches the server first; an operator's retry or a
 * removal HEADs the destination first. Whatever the order, the outcome is the
 * one HEAD-first would reach: an in-sync copy is left alone (the GET opened
 * for it is dropped, small or large), and a destination that refuses its HEAD
 * fails the key at once with the destination's error even when the source
 * failed too.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { enqueueReplications } from '../src/queue/enqueue.js';
import { expectsCopy, type ReconcileJob } from '../src/replication/reconcile.js';
import { startFaultProxy, type FaultProxy, type ProxyRequestInfo, type RuleHandle } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication, type ReplicationHarness } from './support/replication.js';

let oss: OssServer;
let proxy: FaultProxy;
let h: ReplicationHarness;

t.before(async () => {
  oss = await startOssServer({ buckets: ['rosrc', 'rodst'] });
  proxy = await startFaultProxy({ target: oss.endpoint });
  const O = (b: string) => ossEndpoint(proxy.endpoint, b);
  h = await startReplication({
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    tasks: [{ id: 'ro', source: O('rosrc'), destination: O('rodst'), options: { deletes: true } }],
  });
});

t.teardown(async () => {
  await h?.close();
  await proxy?.close();
  await oss?.close();
});

/** Requests of one key as the server received them: "METHOD bucket", in arrival order. */
const arrivals = (key: string): string[] => oss.requests.filter((r) => r.key === key).map((r) => `${r.method} ${r.bucket}`);

const forKey =
  (key: string, bucket: string) =>
  (info: ProxyRequestInfo): boolean =>
    info.path === `/${key}` && (info.headers.host ?? '').startsWith(`${bucket}.`);

/** Hold the destination's next HEAD of `key` for `ms` at the proxy. */
const delayDestinationHead = (key: string, ms = 400): RuleHandle =>
  proxy.add({ match: { method: 'HEAD', test: forKey(key, 'rodst') }, nth: 1, action: { type: 'delay', ms } });

t.test('which jobs read both sides at once', async (t) => {
  const job = (data: ReconcileJob['data']): ReconcileJob => ({ data, retryCount: 0, intentPending: false });
  t.equal(expectsCopy(job({ trigger: 'event', kind: 'created' })), true, 'an event of a created object');
  t.equal(expectsCopy(job({ trigger: 'scan', kind: 'created' })), true, 'a key a scan found missing or different');
  t.equal(expectsCopy(job({ trigger: 'scan', kind: 'removed' })), false, "a scan's extra key (a removal)");
  t.equal(expectsCopy(job({ trigger: 'event', kind: 'removed' })), false, 'a removal');
  t.equal(expectsCopy(job({ trigger: 'event', kind: 'unknown' })), false, 'an event of unknown kind');
  t.equal(expectsCopy(job({ trigger: 'retry' })), false, "an operator's retry");
  t.equal(expectsCopy(job({})), false, 'a job that says nothing');
  t.equal(expectsCopy(undefined), false, 'no job');
});

t.test('an event of a created object: the source GET does not wait for the destination HEAD', async (t) => {
  const key = 'event/new.bin';
  const body = randomBytes(4096);
  await oss.client('rosrc').put(key, body);
  const held = delayDestinationHead(key);
  await h.enqueue('ro', key);
  const row = await h.settled('ro', key);
  t.equal(row.status, 'completed');
  t.equal(held.fired, 1, 'the destination HEAD was held back');
  t.same(arrivals(key), ['PUT rosrc', 'GET rosrc', 'HEAD rodst', 'PUT rodst'], 'the GET reached the server while the HEAD was held');
  t.ok(oss.getObject('rodst', key)?.body.equals(body));
});

t.test("an operator's retry HEADs the destination before reading the source", async (t) => {
  const key = 'retry/new.bin';
  await oss.client('rosrc').put(key, randomBytes(4096));
  const held = delayDestinationHead(key);
  const r = await enqueueReplications(h.boss, h.pool, [{ taskId: 'ro', key, trigger: 'retry' }]);
  t.equal(r.accepted, 1);
  t.equal((await h.settled('ro', key)).status, 'completed');
  t.equal(held.fired, 1);
  t.same(arrivals(key), ['PUT rosrc', 'HEAD rodst', 'GET rosrc', 'PUT rodst'], 'GET only after the HEAD answered');
});

t.test('a removal HEADs the destination before looking at the source', async (t) => {
  const key = 'removed/gone.bin';
  await oss.client('rodst').put(key, randomBytes(1024));
  const held = delayDestinationHead(key);
  await h.enqueue('ro', key, 'removed');
  t.equal((await h.settled('ro', key)).status, 'deleted');
  t.equal(held.fired, 1);
  t.same(arrivals(key).slice(0, 3), ['PUT rodst', 'HEAD rodst', 'HEAD rosrc'], 'destination first, then a HEAD of the source');
  t.equal(oss.getObject('rodst', key), undefined, 'the destination copy was deleted');
});

for (const [shape, size] of [
  ['small', 4096],
  ['larger than the drain limit', 1024 * 1024],
] as const) {
  t.test(`a duplicate event of an object already in sync, ${shape}: in_sync, nothing written`, async (t) => {
    const key = `dup/${size}.bin`;
    const body = randomBytes(size);
    await oss.client('rosrc').put(key, body);
    await h.enqueue('ro', key);
    t.equal((await h.settled('ro', key)).status, 'completed');
    await h.enqueue('ro', key);
    const row = await h.settled('ro', key, (r) => r.status === 'in_sync');
    t.equal(row.status, 'in_sync');
    // Each job sends its GET and HEAD together (either may arrive first); one PUT of the destination in all.
    t.same(arrivals(key).filter((a) => a !== 'PUT rosrc').sort(), ['GET rosrc', 'GET rosrc', 'HEAD rodst', 'HEAD rodst', 'PUT rodst']);
    t.ok(oss.getObject('rodst', key)?.body.equals(body));
    // The store's connections still serve the next copy (the dropped GET left nothing stuck).
    const next = `dup/after-${size}.bin`;
    await oss.client('rosrc').put(next, randomBytes(2048));
    await h.enqueue('ro', next);
    t.equal((await h.settled('ro', next)).status, 'completed');
  });
}

t.test('the destination refuses its HEAD while the source GET fails too: failed at once, with the destination error', async (t) => {
  const key = 'refused/a.bin';
  await oss.client('rosrc').put(key, randomBytes(4096));
  const deny = proxy.add({ match: { method: 'HEAD', test: forKey(key, 'rodst') }, action: { type: 'status', status: 403, code: 'AccessDenied' } });
  // Transient on its own (it would be retried): the destination's refusal must decide.
  const flaky = proxy.add({ match: { method: 'GET', test: forKey(key, 'rosrc') }, action: { type: 'status', status: 500, code: 'InternalError', message: 'source hiccup' } });
  await h.enqueue('ro', key);
  const row = await h.settled('ro', key);
  t.equal(row.status, 'failed');
  t.equal(row.attempts, 1, 'not retried: a 403 is permanent');
  t.equal(row.lastErrorCode, 'AccessDenied');
  t.ok(deny.fired >= 1 && flaky.fired >= 1, 'both sides were asked at once');
  t.equal(oss.getObject('rodst', key), undefined, 'nothing written');
  deny.remove();
  flaky.remove();
});
