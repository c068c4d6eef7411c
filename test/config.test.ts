import t from 'tap';
import { validateConfigFile, ConfigError, isReplicationLoop } from '../src/config/validate.js';
import { loadEnv } from '../src/config/env.js';

const env = { SRC_AK: 'a', SRC_SK: 'b', DST_AK: 'c', DST_SK: 'd', SENDER1_SK: 'e' };

function task(overrides: Record<string, unknown> = {}) {
  return {
    id: 's3-to-oss',
    source: {
      provider: 's3',
      bucket: 'src-bucket',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      credentials: { accessKeyIdEnv: 'SRC_AK', secretAccessKeyEnv: 'SRC_SK' },
      prefixes: ['photos/'],
    },
    destination: {
      provider: 'oss',
      bucket: 'dst-bucket',
      region: 'oss-cn-hangzhou',
      endpoint: 'http://127.0.0.1:9100',
      credentials: { accessKeyIdEnv: 'DST_AK', secretAccessKeyEnv: 'DST_SK' },
    },
    ...overrides,
  };
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('the DESIGN.md example validates and gets defaults', async (t) => {
  const file = validateConfigFile(
    { tasks: [task({ schedule: { mode: 'cron', expression: '0 * * * *' } })], senders: [{ accessKeyId: 'lambda-1', secretEnv: 'SENDER1_SK', tasks: ['s3-to-oss'] }] },
    env,
  );
  t.equal(file.tasks[0]!.options.compare, 'checksum');
  t.equal(file.tasks[0]!.options.deletes, false);
  t.equal(file.tasks[0]!.options.multipartThresholdBytes, 16 * 1024 * 1024);
  t.equal(file.tasks[0]!.options.partConcurrency, 4);
  t.same(file.tasks[0]!.schedule, { mode: 'cron', expression: '0 * * * *' });
});

t.test('an empty file is a valid config', async (t) => {
  t.same(validateConfigFile({}, env), { tasks: [], senders: [] });
});

t.test('every invalid field is named in one line', async (t) => {
  const cases: [string, unknown, string][] = [
    ['unknown provider', { tasks: [task({ source: { ...task().source, provider: 'gcs' } })] }, 'tasks[0].source.provider'],
    ['missing bucket', { tasks: [task({ destination: { provider: 's3' } })] }, 'tasks[0].destination.bucket'],
    ['invalid bucket name', { tasks: [task({ destination: { ...task().destination, bucket: 'Bad_Bucket' } })] }, 'tasks[0].destination.bucket'],
    ['unknown field', { tasks: [task({ colour: 'red' })] }, 'tasks[0].colour'],
    ['unset credentials env var', { tasks: [task({ source: { ...task().source, credentials: { accessKeyIdEnv: 'NOPE_AK', secretAccessKeyEnv: 'SRC_SK' } } })] }, 'tasks[0].source.credentials.accessKeyIdEnv'],
    ['oss without credentials', { tasks: [task({ destination: { provider: 'oss', bucket: 'dst-bucket' } })] }, 'tasks[0].destination.credentials'],
    ['rate without every', { tasks: [task({ schedule: { mode: 'rate' } })] }, 'tasks[0].schedule.every'],
    ['bad compare', { tasks: [task({ options: { compare: 'md5' } })] }, 'tasks[0].options.compare'],
    ['duplicate task id', { tasks: [task(), task()] }, 'tasks[1].id'],
    ['sender of unknown task', { tasks: [task()], senders: [{ accessKeyId: 'lambda-1', secretEnv: 'SENDER1_SK', tasks: ['nope'] }] }, 'senders[0].tasks[0]'],
    ['sender secret env unset', { tasks: [task()], senders: [{ accessKeyId: 'lambda-1', secretEnv: 'MISSING', tasks: ['s3-to-oss'] }] }, 'senders[0].secretEnv'],
    ['replication loop', { tasks: [task({ destination: { ...task().source } })] }, 'tasks[0].destination'],
  ];
  for (const [name, input, field] of cases) {
    const err = errorOf(() => validateConfigFile(input, env));
    t.equal(err.field, field, name);
    t.notMatch(err.message, /\n/, `${name}: one line`);
    t.match(err.message, field, `${name}: message names the field`);
  }
});

t.test('replication loop needs same store and overlapping prefixes', async (t) => {
  const base = task() as unknown as Parameters<typeof isReplicationLoop>[0];
  t.equal(isReplicationLoop({ source: base.source, destination: { ...base.source, prefixes: ['other/'] } }), false);
  t.equal(isReplicationLoop({ source: base.source, destination: { ...base.source, prefixes: ['photos/2024/'] } }), true);
  t.equal(isReplicationLoop({ source: base.source, destination: { ...base.source, bucket: 'another' } }), false);
});

t.test('env defaults and errors', async (t) => {
  const e = loadEnv({});
  t.equal(e.port, 8080);
  t.equal(e.host, '127.0.0.1');
  t.equal(e.databaseUrl, undefined);
  t.equal(e.logLevel, 'info');
  const err = errorOf(() => loadEnv({ PORT: 'eighty' }));
  t.equal(err.field, 'PORT');
  t.equal(errorOf(() => loadEnv({ LOG_LEVEL: 'loud' })).field, 'LOG_LEVEL');
});
