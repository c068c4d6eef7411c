/**
 * A task whose stores cannot be created when its job runs (its credentials'
 * environment variable is gone since the config was validated) is recorded
 * like any failing attempt — pending with STORE_CONFIG_INVALID, then failed
 * and dead-lettered past the retry limit — instead of failing the job with no
 * status row; the task's other keys, once the variable is back, replicate.
 */
import t from 'tap';
import { startOssServer } from './support/oss-server.js';
import { ossEndpoint, startReplication } from './support/replication.js';

t.test('stores that cannot be created: status row, failed after the retries, dead-lettered', async (t) => {
  const oss = await startOssServer({ buckets: ['cfg-src', 'cfg-dst'] });
  t.teardown(() => oss.close());
  const h = await startReplication({
    tasks: [{ id: 'cfg', source: ossEndpoint(oss.endpoint, 'cfg-src'), destination: ossEndpoint(oss.endpoint, 'cfg-dst') }],
    env: { T_OSS_AK: oss.accessKeyId, T_OSS_SK: oss.accessKeySecret },
    retryLimit: 2,
  });
  t.teardown(() => h.close());
  await oss.client('cfg-src').put('a.txt', Buffer.from('first'));
  await oss.client('cfg-src').put('b.txt', Buffer.from('second'));

  const secret = h.env.T_OSS_SK;
  delete h.env.T_OSS_SK;
  await h.enqueue('cfg', 'a.txt');
  const row = await h.settled('cfg', 'a.txt', undefined, 30_000);
  t.equal(row.status, 'failed');
  t.equal(row.lastErrorCode, 'STORE_CONFIG_INVALID');
  t.match(row.lastErrorMessage, /T_OSS_SK/, 'the message names the missing variable');
  t.equal(row.attempts, 3, 'retried (another process may have the variable), then failed');
  const dead = (await h.deadLetters()).filter((d) => d.data.taskId === 'cfg' && d.data.key === 'a.txt');
  t.equal(dead.length, 1, 'dead-lettered');
  t.equal(oss.getObject('cfg-dst', 'a.txt'), undefined);

  h.env.T_OSS_SK = secret;
  await h.enqueue('cfg', 'b.txt');
  const ok = await h.settled('cfg', 'b.txt', undefined, 30_000);
  t.equal(ok.status, 'completed', 'with the variable back, the task replicates');
  t.equal(oss.getObject('cfg-dst', 'b.txt')?.body.toString(), 'second');
});
