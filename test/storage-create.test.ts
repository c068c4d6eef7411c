/** createStore: provider selection and secrets read from the env vars the config names. */
import t from 'tap';
import { createStore } from '../src/storage/create-store.js';
import { OssStore } from '../src/storage/oss-store.js';
import { S3Store } from '../src/storage/s3-store.js';
import { startOssServer } from './support/oss-server.js';
import { startS3Server } from './support/s3-server.js';

t.test('an unset named env var is an error that names the variable', async (t) => {
  const config = {
    provider: 's3' as const,
    bucket: 'b',
    credentials: { accessKeyIdEnv: 'BB_TEST_AK', secretAccessKeyEnv: 'BB_TEST_SK', sessionTokenEnv: 'BB_TEST_TOKEN' },
  };
  t.throws(() => createStore(config, {}), /BB_TEST_AK/);
  t.throws(() => createStore(config, { BB_TEST_AK: 'a' }), /BB_TEST_SK/);
  t.throws(() => createStore(config, { BB_TEST_AK: 'a', BB_TEST_SK: 'b' }), /BB_TEST_TOKEN/);
  t.throws(() => createStore(config, { BB_TEST_AK: 'a', BB_TEST_SK: '', BB_TEST_TOKEN: 't' }), /BB_TEST_SK/, 'empty counts as unset');
  const store = createStore(config, { BB_TEST_AK: 'a', BB_TEST_SK: 'b', BB_TEST_TOKEN: 't' });
  t.type(store, S3Store);
  await store.close();
});

t.test('s3 without credentials uses the default provider chain; oss requires credentials', async (t) => {
  const s3 = createStore({ provider: 's3', bucket: 'b', region: 'eu-west-1' }, {});
  t.type(s3, S3Store);
  t.equal(s3.provider, 's3');
  t.equal(s3.bucket, 'b');
  await s3.close();
  t.throws(() => createStore({ provider: 'oss', bucket: 'b' }, {}), /credentials/);
});

t.test('stores built from config talk to the test servers with secrets from env', async (t) => {
  const s3server = await startS3Server({ buckets: ['cfg-s3'] });
  const ossServer = await startOssServer({ buckets: ['cfg-oss'] });
  t.teardown(async () => {
    await s3server.close();
    await ossServer.close();
  });
  const env = {
    SRC_AK: s3server.accessKeyId,
    SRC_SK: s3server.secretAccessKey,
    DST_AK: ossServer.accessKeyId,
    DST_SK: ossServer.accessKeySecret,
  };
  const s3 = createStore(
    {
      provider: 's3',
      bucket: 'cfg-s3',
      endpoint: s3server.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyIdEnv: 'SRC_AK', secretAccessKeyEnv: 'SRC_SK' },
    },
    env,
  );
  const oss = createStore(
    {
      provider: 'oss',
      bucket: 'cfg-oss',
      region: 'oss-cn-hangzhou',
      endpoint: ossServer.endpoint,
      credentials: { accessKeyIdEnv: 'DST_AK', secretAccessKeyEnv: 'DST_SK' },
    },
    env,
  );
  t.teardown(() => Promise.all([s3.close(), oss.close()]));
  t.type(oss, OssStore);
  await s3.put('k', Buffer.from('via s3'), 6);
  await oss.put('k', Buffer.from('via oss'), 7);
  t.equal((await s3.head('k'))?.size, 6);
  t.equal((await oss.head('k'))?.size, 7);
});
