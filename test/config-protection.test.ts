/**
 * Data-protection settings of a task, validated once for the config file and
 * the admin API: destination.encryption per provider, source.sseCustomerKeyEnv,
 * caBundleFile, options.clientSideEncryption and options.limits. Every bad
 * input is refused with a message naming the field; good ones pass with
 * their defaults filled in.
 */
import t from 'tap';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskConfig } from '../src/config/types.js';
import { ConfigError, validateConfigFile, validateTask } from '../src/config/validate.js';
import { startStack, type Stack } from './support/stack.js';
import { makeRsaKeyPair, makeTestPki } from './support/test-certs.js';

const dir = mkdtempSync(join(tmpdir(), 'bb-cfgprot-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const keys = makeRsaKeyPair(dir, 'task');
const pki = makeTestPki();
t.teardown(() => pki.cleanup());

const ecFile = join(dir, 'ec.pub.pem');
writeFileSync(ecFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
const smallFile = join(dir, 'small.pub.pem');
writeFileSync(smallFile, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }));
const garbageFile = join(dir, 'garbage.pem');
writeFileSync(garbageFile, 'this is not a key\n');
const unreadable = join(dir, 'unreadable.pub.pem');
writeFileSync(unreadable, keys.publicPem);
chmodSync(unreadable, 0o000);
// root reads any file: then "unreadable" is played by a directory.
const unreadableFile = process.getuid?.() === 0 ? dir : unreadable;

const env: NodeJS.ProcessEnv = {
  AK: 'ak',
  SK: 'sk',
  SSEC_OK: randomBytes(32).toString('base64'),
  SSEC_HEX: randomBytes(32).toString('hex'),
  SSEC_SHORT: randomBytes(16).toString('base64'),
};

const creds = { accessKeyIdEnv: 'AK', secretAccessKeyEnv: 'SK' };
const s3 = (bucket: string, extra: Record<string, unknown> = {}) => ({ provider: 's3', bucket, region: 'us-east-1', endpoint: 'https://s3.example.com', credentials: creds, ...extra });
const oss = (bucket: string, extra: Record<string, unknown> = {}) => ({ provider: 'oss', bucket, region: 'oss-cn-hangzhou', endpoint: 'https://oss-cn-hangzhou.aliyuncs.com', credentials: creds, ...extra });

function task(overrides: { source?: Record<string, unknown>; destination?: Record<string, unknown>; options?: Record<string, unknown> } = {}) {
  return { id: 'prot', source: overrides.source ?? s3('src-bucket'), destination: overrides.destination ?? oss('dst-bucket'), ...(overrides.options ? { options: overrides.options } : {}) };
}

function refusal(input: unknown): ConfigError | undefined {
  try {
    validateTask(structuredClone(input), 'task', env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  return undefined;
}

const BAD: [string, ReturnType<typeof task>, string, RegExp][] = [
  ['unknown SSE mode', task({ destination: oss('dst-bucket', { encryption: { mode: 'SM9' } }) }), 'task.destination.encryption.mode', /must be one of AES256, aws:kms, KMS/],
  ['OSS mode on S3', task({ destination: s3('dst-bucket', { encryption: { mode: 'KMS' } }) }), 'task.destination.encryption.mode', /KMS is not a mode of provider s3; use one of AES256, aws:kms/],
  ['S3 mode on OSS', task({ destination: oss('dst-bucket', { encryption: { mode: 'aws:kms' } }) }), 'task.destination.encryption.mode', /aws:kms is not a mode of provider oss; use one of AES256, KMS/],
  ['KMS key id with AES256 (S3)', task({ destination: s3('dst-bucket', { encryption: { mode: 'AES256', keyId: 'k1' } }) }), 'task.destination.encryption.keyId', /only valid with mode aws:kms \(mode is AES256\)/],
  ['KMS key id with AES256 (OSS)', task({ destination: oss('dst-bucket', { encryption: { mode: 'AES256', keyId: 'k1' } }) }), 'task.destination.encryption.keyId', /only valid with mode KMS/],
  ['encryption without a mode', task({ destination: oss('dst-bucket', { encryption: { keyId: 'k1' } }) }), 'task.destination.encryption.mode', /is required/],
  ['an empty key id', task({ destination: oss('dst-bucket', { encryption: { mode: 'KMS', keyId: '' } }) }), 'task.destination.encryption.keyId', /must NOT have fewer than 1 characters/],
  ['encryption on the source', task({ source: s3('src-bucket', { encryption: { mode: 'AES256' } }) }), 'task.source.encryption', /is not a known field/],
  ['SSE-C key on the destination', task({ destination: oss('dst-bucket', { sseCustomerKeyEnv: 'SSEC_OK' }) }), 'task.destination.sseCustomerKeyEnv', /is not a known field/],
  ['SSE-C key on an OSS source', task({ source: oss('src-bucket', { sseCustomerKeyEnv: 'SSEC_OK' }), destination: s3('dst-bucket') }), 'task.source.sseCustomerKeyEnv', /only supported for provider s3/],
  ['SSE-C env var not set', task({ source: s3('src-bucket', { sseCustomerKeyEnv: 'SSEC_MISSING' }) }), 'task.source.sseCustomerKeyEnv', /env var SSEC_MISSING is not set/],
  ['SSE-C key of 128 bits', task({ source: s3('src-bucket', { sseCustomerKeyEnv: 'SSEC_SHORT' }) }), 'task.source.sseCustomerKeyEnv', /env var SSEC_SHORT must be a 256-bit key/],
  ['CA bundle missing', task({ destination: oss('dst-bucket', { caBundleFile: join(dir, 'nope.pem') }) }), 'task.destination.caBundleFile', /cannot read CA bundle .*nope\.pem \(ENOENT\)/],
  ['CA bundle without certificates', task({ source: s3('src-bucket', { caBundleFile: keys.publicKeyFile }) }), 'task.source.caBundleFile', /contains no PEM certificate/],
  ['CA bundle with a plain-http endpoint', task({ source: s3('src-bucket', { endpoint: 'http://127.0.0.1:9000', caBundleFile: pki.caFile }) }), 'task.source.caBundleFile', /only used with an https:\/\/ endpoint/],
  ['public key file missing', task({ options: { clientSideEncryption: { publicKeyFile: join(dir, 'none.pem') } } }), 'task.options.clientSideEncryption.publicKeyFile', /cannot read public key file .*none\.pem \(ENOENT\)/],
  ['public key file unreadable', task({ options: { clientSideEncryption: { publicKeyFile: unreadableFile } } }), 'task.options.clientSideEncryption.publicKeyFile', /cannot read public key file .*\((EACCES|EISDIR)\)/],
  ['public key file is a private key', task({ options: { clientSideEncryption: { publicKeyFile: keys.privateKeyFile } } }), 'task.options.clientSideEncryption.publicKeyFile', /contains a private key; give the service only the public key/],
  ['public key file malformed', task({ options: { clientSideEncryption: { publicKeyFile: garbageFile } } }), 'task.options.clientSideEncryption.publicKeyFile', /is not an RSA public key/],
  ['public key not RSA', task({ options: { clientSideEncryption: { publicKeyFile: ecFile } } }), 'task.options.clientSideEncryption.publicKeyFile', /needs an RSA key/],
  ['public key too small', task({ options: { clientSideEncryption: { publicKeyFile: smallFile } } }), 'task.options.clientSideEncryption.publicKeyFile', /1024-bit RSA key; at least 2048/],
  ['public key file not given', task({ options: { clientSideEncryption: {} } }), 'task.options.clientSideEncryption.publicKeyFile', /is required/],
  ['unknown client-side algorithm', task({ options: { clientSideEncryption: { publicKeyFile: keys.publicKeyFile, algorithm: 'AES-256-ECB' } } }), 'task.options.clientSideEncryption.algorithm', /must be one of AES-256-CTR/],
  ['unknown client-side field', task({ options: { clientSideEncryption: { publicKeyFile: keys.publicKeyFile, privateKeyFile: 'x' } } }), 'task.options.clientSideEncryption.privateKeyFile', /is not a known field/],
  ['byte limit too small', task({ options: { limits: { bytesPerSecond: 100 } } }), 'task.options.limits.bytesPerSecond', /must be >= 1024/],
  ['byte limit not an integer', task({ options: { limits: { bytesPerSecond: 1.5e6 + 0.5 } } }), 'task.options.limits.bytesPerSecond', /must be integer/],
  ['request limit zero', task({ options: { limits: { requestsPerSecond: 0 } } }), 'task.options.limits.requestsPerSecond', /must be > 0/],
  ['limits empty', task({ options: { limits: {} } }), 'task.options.limits', /must NOT have fewer than 1 properties/],
  ['unknown limit', task({ options: { limits: { bytesPerSecond: 2048, burst: 3 } } }), 'task.options.limits.burst', /is not a known field/],
];

t.test('refused, naming the field', async (t) => {
  for (const [name, input, field, reason] of BAD) {
    const err = refusal(input);
    t.ok(err, `${name}: refused`);
    t.equal(err?.field, field, `${name}: names ${field}`);
    t.match(err?.reason, reason, `${name}: ${err?.reason}`);
  }
});

t.test('the config file reports the same fields under tasks[i]', async (t) => {
  for (const [name, input, field] of BAD.slice(0, 4)) {
    try {
      validateConfigFile({ tasks: [structuredClone(input)] }, env);
      t.fail(`${name}: accepted`);
    } catch (err) {
      t.equal((err as ConfigError).field, field.replace(/^task/, 'tasks[0]'), name);
    }
  }
});

t.test('accepted: every mode of each provider, SSE-C keys in both spellings, CA bundles, envelope keys, limits', async (t) => {
  const good: [string, ReturnType<typeof task>][] = [
    ['S3 AES256', task({ destination: s3('dst-bucket', { encryption: { mode: 'AES256' } }) })],
    ['S3 aws:kms without key id (the account default key)', task({ destination: s3('dst-bucket', { encryption: { mode: 'aws:kms' } }) })],
    ['S3 aws:kms with key id', task({ destination: s3('dst-bucket', { encryption: { mode: 'aws:kms', keyId: 'arn:aws:kms:us-east-1:1:key/x' } }) })],
    ['OSS AES256', task({ destination: oss('dst-bucket', { encryption: { mode: 'AES256' } }) })],
    ['OSS KMS with key id', task({ destination: oss('dst-bucket', { encryption: { mode: 'KMS', keyId: 'kms-id' } }) })],
    ['SSE-C base64', task({ source: s3('src-bucket', { sseCustomerKeyEnv: 'SSEC_OK' }) })],
    ['SSE-C hex', task({ source: s3('src-bucket', { sseCustomerKeyEnv: 'SSEC_HEX' }) })],
    ['CA bundle on both sides', task({ source: s3('src-bucket', { caBundleFile: pki.caFile }), destination: oss('dst-bucket', { caBundleFile: pki.caFile }) })],
    ['CA bundle, default (https) endpoint', task({ source: { provider: 's3', bucket: 'src-bucket', caBundleFile: pki.caFile } })],
    ['public key (SPKI PEM)', task({ options: { clientSideEncryption: { publicKeyFile: keys.publicKeyFile } } })],
    ['public key as a certificate', task({ options: { clientSideEncryption: { publicKeyFile: pki.certFile } } })],
    ['limits', task({ options: { limits: { bytesPerSecond: 512 * 1024, requestsPerSecond: 2.5 } } })],
  ];
  for (const [name, input] of good) t.equal(refusal(input), undefined, name);
  const filled = validateTask(structuredClone(task({ options: { clientSideEncryption: { publicKeyFile: keys.publicKeyFile } } })), 'task', env) as TaskConfig;
  t.equal(filled.options.clientSideEncryption?.algorithm, 'AES-256-CTR', 'the algorithm defaults to AES-256-CTR');
  t.equal(filled.options.limits, undefined, 'no limits unless asked');
});

t.test('the admin API refuses the same inputs with VALIDATION_FAILED naming the field', async (t) => {
  const stack: Stack = await startStack({ env });
  t.teardown(() => stack.close());
  const cases = BAD.filter(([name]) =>
    [
      'OSS mode on S3',
      'S3 mode on OSS',
      'KMS key id with AES256 (S3)',
      'KMS key id with AES256 (OSS)',
      'public key file is a private key',
      'public key file missing',
      'public key file malformed',
      'unknown client-side algorithm',
      'SSE-C env var not set',
      'request limit zero',
      'unknown SSE mode',
    ].includes(name),
  );
  for (const [name, input, field, reason] of cases) {
    const res = await stack.admin('POST', '/admin/tasks', input);
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.body?.error?.code, 'VALIDATION_FAILED', `${name}: code`);
    t.equal(res.body?.error?.field, field.replace(/^task/, 'body'), `${name}: field`);
    t.match(res.body?.error?.message, reason, `${name}: message`);
  }
  const ok = await stack.admin('POST', '/admin/tasks', task({
    destination: oss('dst-bucket', { encryption: { mode: 'KMS', keyId: 'kms-id' } }),
    options: { clientSideEncryption: { publicKeyFile: keys.publicKeyFile }, limits: { bytesPerSecond: 1024 * 1024 } },
  }));
  t.equal(ok.status, 201, JSON.stringify(ok.body));
  t.match(ok.body, { destination: { encryption: { mode: 'KMS', keyId: 'kms-id' } }, options: { clientSideEncryption: { algorithm: 'AES-256-CTR' }, limits: { bytesPerSecond: 1048576 } } });
});
