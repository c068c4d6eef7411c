/**
 * A paused task keeps its queued keys but copies nothing until resumed; after
 * resume the deferred keys are replicated without a new event.
 */
import t from 'tap';
import OSS from 'ali-oss';
import { startOssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication } from './support/replication.js';

t.test('paused: nothing copied; resumed: the queued key is replicated', async (t) => {
  const oss = await startOssServer({ buckets: ['pause-src', 'pause-dst'] });
  t.teardown(() => oss.close());
  const h = await startReplication({
    tasks: [{ id: 'p', source: ossEndpoint(oss.endpoint, 'pause-src'), destination: ossEndpoint(oss.endpoint, 'pause-dst') }],
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    pausedRecheckSeconds: 1,
  });
  t.teardown(() => h.close());
  const client = new OSS({ region: 'oss-cn-hangzhou', endpoint: oss.endpoint, accessKeyId: oss.accessKeyId, accessKeySecret: oss.accessKeySecret, bucket: 'pause-src', secure: false });
  await client.put('held.txt', Buffer.from('held while paused'));

  await h.pool.query('UPDATE bb_tasks SET paused = true WHERE id = $1', ['p']);
  await h.tasks.load();
  t.equal((await h.enqueue('p', 'held.txt')).length, 1, 'the key is queued while paused');
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(oss.getObject('pause-dst', 'held.txt'), undefined, 'nothing copied while paused');
  t.equal(await h.status('p', 'held.txt'), undefined, 'no status recorded while paused');
  const open = (await h.jobs('p', 'held.txt')).filter((j) => ['created', 'retry', 'active'].includes(j.state));
  t.equal(open.length, 1, 'the key is still queued (deferred), not dropped');

  await h.pool.query('UPDATE bb_tasks SET paused = false WHERE id = $1', ['p']);
  await h.tasks.load();
  const row = await h.settled('p', 'held.txt', undefined, 30_000);
  t.equal(row.status, 'completed');
  t.same(oss.getObject('pause-dst', 'held.txt')?.body.toString(), 'held while paused');
});

