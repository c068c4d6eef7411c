/**
 * A part's resume record is written after its upload slot is freed
 * (replication/copy.ts): with one part in flight and the parts table locked
 * by another session (a slow database), every part still uploads, and the
 * upload is completed only once the records are written. Before, each slot
 * waited for its record, so the copy stopped after the first part.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication, type ReplicationHarness } from './support/replication.js';
import { eventually } from './support/service.js';

const KIB = 1024;
const PART = 100 * KIB;
const PARTS = 5;

let oss: OssServer;
let proxy: FaultProxy;
let h: ReplicationHarness;

t.before(async () => {
  oss = await startOssServer({ buckets: ['mrsrc', 'mrdst'], minPartSize: PART });
  proxy = await startFaultProxy({ target: oss.endpoint });
  h = await startReplication({
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    tasks: [
      {
        id: 'mr',
        source: ossEndpoint(oss.endpoint, 'mrsrc'),
        destination: ossEndpoint(proxy.endpoint, 'mrdst'),
        options: { multipartThresholdBytes: 256 * KIB, partSizeBytes: PART, partConcurrency: 1 },
      },
    ],
  });
});

t.teardown(async () => {
  await h?.close();
  await proxy?.close();
  await oss?.close();
});

t.test('parts keep uploading while their records wait for the database', async (t) => {
  const key = 'records/slow-db.bin';
  const body = randomBytes(PARTS * PART);
  await oss.client('mrsrc').put(key, body);
  const forKey = (e: { path: string }) => e.path === `/${key}`;
  const partUploads = () => proxy.log.filter((e) => forKey(e) && e.method === 'PUT' && e.query['partNumber'] !== undefined && e.status === 200).length;
  const completes = () => proxy.log.filter((e) => forKey(e) && e.method === 'POST' && e.query['uploadId'] !== undefined).length;

  // Another session holds a lock that makes every part record (an INSERT) wait.
  const blocker = new pg.Client({ connectionString: h.db.url });
  await blocker.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE bb_multipart_parts IN SHARE MODE');
    await h.enqueue('mr', key);
    await eventually(async () => (partUploads() === PARTS ? true : undefined), 30_000, `all ${PARTS} parts uploaded while the records wait`);
    t.equal(partUploads(), PARTS, 'every part uploaded with one slot, none of their records written');
    const { rows } = await h.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bb_multipart_parts');
    t.equal(rows[0]!.n, 0, 'no part record committed yet');
    t.equal(completes(), 0, 'the upload is not completed before its records are written');
    await blocker.query('COMMIT');
  } finally {
    await blocker.end();
  }
  const row = await h.settled('mr', key);
  t.equal(row.status, 'completed');
  t.equal(completes(), 1);
  t.ok(oss.getObject('mrdst', key)?.body.equals(body), 'the object is byte-for-byte the source');
});
