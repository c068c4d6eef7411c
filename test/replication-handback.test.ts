/**
 * Shutdown hands an interrupted copy back without spending a retry: the copy
 * is aborted at its next request boundary, and once it has unwound its job goes
 * back to the queue as it was before its fetch ('created', ready, retry_count
 * unchanged), with its multipart upload recorded for the next attempt to
 * resume. (A copy still stuck in a request after 5 s goes back as a failed
 * attempt instead: test/replication-settle-batch.test.ts, "shutdown waits…".)
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { startFaultProxy } from './support/fault-proxy.js';
import { startOssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication } from './support/replication.js';
import { eventually } from './support/service.js';

const KIB = 1024;
const PART = 100 * KIB;

t.test('a multipart copy interrupted by stop() goes back ready, no retry spent, its upload kept for resume', async (t) => {
  const oss = await startOssServer({ buckets: ['hb-src', 'hb-dst'], minPartSize: PART });
  t.teardown(() => oss.close());
  const dst = await startFaultProxy({ target: oss.endpoint });
  t.teardown(() => dst.close());
  const h = await startReplication({
    tasks: [
      {
        id: 'hb',
        source: ossEndpoint(oss.endpoint, 'hb-src'),
        destination: ossEndpoint(dst.endpoint, 'hb-dst'),
        options: { multipartThresholdBytes: 256 * KIB, partSizeBytes: PART, partConcurrency: 1 },
      },
    ],
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
  });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await h.close();
  });
  const key = 'big/interrupted.bin';
  await oss.client('hb-src').put(key, randomBytes(8 * PART));
  // Each part takes 300 ms to reach the destination: the copy is mid-upload when stop() comes.
  dst.add({ match: { method: 'PUT', query: { partNumber: true } }, action: { type: 'delay', ms: 300 } });
  await h.enqueue('hb', key);
  await eventually(async () => (dst.log.filter((r) => r.query.partNumber !== undefined).length >= 2 ? true : undefined), 20_000, 'two parts sent');

  await h.workers.stop(0);
  const [job] = await h.jobs('hb', key);
  const { rows } = await h.pool.query<{ state: string; retry_count: number; started: boolean }>(
    'SELECT state, retry_count, started_on IS NOT NULL AS started FROM pgboss.job WHERE id = $1',
    [job!.id],
  );
  t.same(rows, [{ state: 'created', retry_count: 0, started: false }], 'back in the queue as before its fetch: ready, no retry spent');
  t.equal((await h.pool.query('SELECT 1 FROM bb_job_leases')).rowCount, 0, 'no lease left');
  t.ok(await h.uploads.find('hb', key), 'the multipart upload is recorded for the next attempt to resume');
  t.equal(oss.pendingUploads('hb-dst'), 1, 'and still open on the destination');
  t.equal(await h.status('hb', key), undefined, 'no failed attempt recorded');
  await h.close();
  closed = true;
});
