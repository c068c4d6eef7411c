/**
 * Data in transit. The intake over HTTPS (BB_TLS_CERT / BB_TLS_KEY, TLS 1.2+)
 * with a CA and certificate generated in the test, the warning for plain HTTP
 * beyond loopback, bad certificate files refused naming the variable; and
 * storage endpoints over HTTPS verified against the system roots or a task's
 * CA bundle (S3 and OSS behind a TLS-terminating proxy).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { loadEnv } from '../src/config/env.js';
import { ConfigError } from '../src/config/validate.js';
import { freePort } from '../src/db/embedded.js';
import { isLoopback, loadTlsFiles, plaintextWarning } from '../src/http/tls.js';
import { createLogger } from '../src/logger.js';
import { startService as startInProcess } from '../src/service.js';
import { createStore } from '../src/storage/create-store.js';
import { StorageError } from '../src/storage/errors.js';
import { fillsBuffers } from '../src/storage/object-store.js';
import { createTestDatabase } from './support/postgres.js';
import { startOssServer } from './support/oss-server.js';
import { startRecordingProxy } from './support/recording-proxy.js';
import { startS3Server } from './support/s3-server.js';
import { startService as startProcess } from './support/service.js';
import { makeTestPki } from './support/test-certs.js';

const pki = makeTestPki();
t.teardown(() => pki.cleanup());
// One database for the file: the services below run one after another on it.
const db = await createTestDatabase();
t.teardown(() => db.drop());

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function httpsGet(url: string, ca?: string): Promise<{ status: number; body: string; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ...(ca !== undefined ? { ca } : {}), agent: false }, (res) => {
      const protocol = (res.socket as import('node:tls').TLSSocket).getProtocol?.() ?? null;
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('loadTlsFiles: both files or neither, readable PEM, a key that matches the certificate', async (t) => {
  t.equal(loadTlsFiles(undefined, undefined), undefined);
  const files = loadTlsFiles(pki.certFile, pki.keyFile);
  t.match(files?.cert.toString(), /BEGIN CERTIFICATE/);
  const refuses = (cert: string | undefined, key: string | undefined, field: string, reason: RegExp, what: string): void => {
    try {
      loadTlsFiles(cert, key);
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.type(err, ConfigError, what);
      t.equal((err as ConfigError).field, field, `${what}: names ${field}`);
      t.match((err as ConfigError).reason, reason, what);
    }
  };
  refuses(pki.certFile, undefined, 'BB_TLS_KEY', /is required when BB_TLS_CERT is set/, 'cert without key');
  refuses(undefined, pki.keyFile, 'BB_TLS_CERT', /is required when BB_TLS_KEY is set/, 'key without cert');
  refuses(join(pki.dir, 'nope.pem'), pki.keyFile, 'BB_TLS_CERT', /cannot read .*nope\.pem \(ENOENT\)/, 'missing cert file');
  refuses(pki.certFile, pki.caFile, 'BB_TLS_KEY', /is not a PEM private key/, 'a certificate as the key');
  refuses(pki.keyFile, pki.keyFile, 'BB_TLS_CERT', /is not a PEM certificate/, 'a key as the certificate');
  refuses(pki.certFile, join(pki.dir, 'ca.key'), 'BB_TLS_KEY', /does not match the certificate/, 'the CA key with the server certificate');
  const broken = join(pki.dir, 'broken.pem');
  writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  refuses(broken, pki.keyFile, 'BB_TLS_CERT', /cannot be used/, 'a malformed certificate');

  const env = loadEnv({ BB_TLS_CERT: pki.certFile, BB_TLS_KEY: pki.keyFile });
  t.ok(env.tls, 'loadEnv reads the pair');
  t.throws(() => loadEnv({ BB_TLS_CERT: pki.certFile }), { name: 'ConfigError', field: 'BB_TLS_KEY' });
});

t.test('loopback detection and the plain-HTTP warning', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) t.ok(isLoopback(h), `${h} is loopback`);
  for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'bb.example.com']) t.notOk(isLoopback(h), `${h} is not`);
  t.equal(plaintextWarning('127.0.0.1', false), undefined);
  t.equal(plaintextWarning('0.0.0.0', true), undefined);
  t.match(plaintextWarning('0.0.0.0', false), /listening on 0\.0\.0\.0 without TLS/);
});

/** The service assembled in-process over a test database, its log captured. */
async function inProcess(envVars: Record<string, string>) {
  const lines: string[] = [];
  const log = createLogger('info', new Writable({ write: (c: Buffer, _e, d) => (lines.push(c.toString()), d()) }));
  const port = await freePort();
  const env = loadEnv({ DATABASE_URL: db.url, PORT: String(port), BB_WORKERS: 'false', ...envVars });
  const service = await startInProcess({ env, file: { tasks: [], senders: [] } }, log);
  return {
    service,
    port,
    log: () => lines.join(''),
    async close() {
      await service.stop();
    },
  };
}

t.test('the intake serves HTTPS with the configured certificate, TLS 1.2 at least', async (t) => {
  const svc = await inProcess({ BB_TLS_CERT: pki.certFile, BB_TLS_KEY: pki.keyFile, HOST: '127.0.0.1' });
  t.teardown(() => svc.close());
  t.match(svc.service.address, /^https:\/\/127\.0\.0\.1:/);
  const res = await httpsGet(`https://127.0.0.1:${svc.port}/healthz`, pki.caPem);
  t.equal(res.status, 200);
  t.same(JSON.parse(res.body), { status: 'ok' });
  t.ok(res.protocol === 'TLSv1.2' || res.protocol === 'TLSv1.3', `negotiated ${res.protocol}`);
  const viaName = await httpsGet(`https://localhost:${svc.port}/healthz`, pki.caPem);
  t.equal(viaName.status, 200, 'the certificate covers localhost too');

  await t.rejects(httpsGet(`https://127.0.0.1:${svc.port}/healthz`), /self-signed certificate in certificate chain|unable to verify/, 'a client without the CA refuses it');
  const old = await new Promise<string>((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: svc.port, ca: pki.caPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    socket.on('secureConnect', () => {
      resolve(`connected with ${socket.getProtocol()}`);
      socket.destroy();
    });
    socket.on('error', (err) => resolve(err.message));
  });
  t.notMatch(old, /^connected/, `a TLS 1.1 client is refused (${old})`);
  const plain = await new Promise<string>((resolve) => {
    const req = httpRequest(`http://127.0.0.1:${svc.port}/healthz`, (res) => {
      res.resume();
      resolve(`HTTP ${res.statusCode}`);
    });
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
  t.not(plain, 'HTTP 200', `plain HTTP gets no answer from the TLS port (${plain})`);
  t.notMatch(svc.log(), /without TLS/, 'no plaintext warning');
});

/** The Dockerfile's HEALTHCHECK command, run as the container would (sh -c), with `env`: its exit code. */
async function dockerHealthcheck(env: Record<string, string>): Promise<number | null> {
  const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
  const cmd = /^HEALTHCHECK[^\n]*\\\n\s*CMD (.+)$/m.exec(dockerfile)?.[1];
  if (cmd === undefined) throw new Error('no HEALTHCHECK CMD in the Dockerfile');
  const { PATH } = process.env;
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', cmd], { env: { ...(PATH !== undefined ? { PATH } : {}), ...env }, timeout: 10_000 }, (err) =>
      resolve(err ? ((err as { code?: number }).code ?? -1) : 0),
    );
  });
}

t.test('the Dockerfile HEALTHCHECK speaks HTTPS when BB_TLS_CERT is set, plain HTTP otherwise', async (t) => {
  // One service at a time on the file's database.
  const tls = await inProcess({ BB_TLS_CERT: pki.certFile, BB_TLS_KEY: pki.keyFile, HOST: '127.0.0.1' });
  try {
    t.equal(await dockerHealthcheck({ PORT: String(tls.port), BB_TLS_CERT: pki.certFile }), 0, 'healthy over https (the test CA is not trusted by the probe)');
    t.equal(await dockerHealthcheck({ PORT: String(tls.port) }), 1, 'plain http to the TLS port is unhealthy');
  } finally {
    await tls.close();
  }
  const plain = await inProcess({ HOST: '127.0.0.1' });
  try {
    t.equal(await dockerHealthcheck({ PORT: String(plain.port) }), 0, 'healthy over plain http');
  } finally {
    await plain.close();
  }
  t.equal(await dockerHealthcheck({ PORT: String(await freePort()) }), 1, 'nothing listening: unhealthy');
});

t.test('plain HTTP bound beyond loopback logs a warning; on loopback it does not', async (t) => {
  const wide = await inProcess({ HOST: '0.0.0.0' });
  await wide.close();
  t.match(wide.log(), /"level":40[^\n]*listening on 0\.0\.0\.0 without TLS/, 'warning at level warn');
  const local = await inProcess({ HOST: '127.0.0.1' });
  await local.close();
  t.notMatch(local.log(), /without TLS/);
  const tlsWide = await inProcess({ HOST: '0.0.0.0', BB_TLS_CERT: pki.certFile, BB_TLS_KEY: pki.keyFile });
  await tlsWide.close();
  t.notMatch(tlsWide.log(), /without TLS/, 'no warning with TLS');
});

t.test('the real process: HTTPS when configured, and a bad key file stops it naming the variable', async (t) => {
  const svc = await startProcess({ noWait: true, env: { DATABASE_URL: db.url, BB_WORKERS: 'false', BB_TLS_CERT: pki.certFile, BB_TLS_KEY: pki.keyFile } });
  t.teardown(() => svc.stop());
  const deadline = Date.now() + 60_000;
  let res: Awaited<ReturnType<typeof httpsGet>> | undefined;
  while (Date.now() < deadline && svc.child.exitCode === null) {
    res = await httpsGet(`https://127.0.0.1:${svc.port}/readyz`, pki.caPem).catch(() => undefined);
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 150));
  }
  t.equal(res?.status, 200, `ready over https\n${res ? '' : svc.output()}`);

  const bad = await startProcess({ noWait: true, env: { DATABASE_URL: db.url, BB_TLS_CERT: pki.certFile, BB_TLS_KEY: pki.caFile } });
  const exit = await bad.exited;
  t.equal(exit.code, 2, 'configuration error exit code');
  t.match(bad.output(), /bucketbridge: invalid configuration: BB_TLS_KEY: .* is not a PEM private key/);
  await bad.stop();
});

// --- storage endpoints over HTTPS -----------------------------------------------------------

t.test('S3 and OSS endpoints over HTTPS: verified against the CA bundle, refused without it', async (t) => {
  const s3 = await startS3Server({ buckets: ['tls-bucket'] });
  t.teardown(() => s3.close());
  const oss = await startOssServer({ buckets: ['tls-bucket'] });
  t.teardown(() => oss.close());
  const tls = { cert: pki.certPem, key: pki.keyPem };
  const s3Tls = await startRecordingProxy({ target: s3.endpoint, tls });
  t.teardown(() => s3Tls.close());
  const ossTls = await startRecordingProxy({ target: oss.endpoint, tls });
  t.teardown(() => ossTls.close());
  const env = { S3_AK: s3.accessKeyId, S3_SK: s3.secretAccessKey, OSS_AK: oss.accessKeyId, OSS_SK: oss.accessKeySecret };

  const s3Config = (caBundleFile?: string) => ({
    provider: 's3' as const,
    bucket: 'tls-bucket',
    endpoint: s3Tls.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyIdEnv: 'S3_AK', secretAccessKeyEnv: 'S3_SK' },
    ...(caBundleFile !== undefined ? { caBundleFile } : {}),
  });
  const ossConfig = (caBundleFile?: string) => ({
    provider: 'oss' as const,
    bucket: 'tls-bucket',
    region: 'oss-cn-hangzhou',
    endpoint: ossTls.endpoint,
    credentials: { accessKeyIdEnv: 'OSS_AK', secretAccessKeyEnv: 'OSS_SK' },
    ...(caBundleFile !== undefined ? { caBundleFile } : {}),
  });

  for (const [name, config] of [
    ['S3', s3Config],
    ['OSS', ossConfig],
  ] as const) {
    const body = randomBytes(64 * 1024);
    const trusted = createStore(config(pki.caFile), env);
    t.teardown(() => trusted.close());
    await trusted.put('over-tls.bin', body, body.length);
    const got = await trusted.get('over-tls.bin');
    // S3 GETs read their bodies through direct-http.ts's own TLS connections: the same trust settings.
    if (name === 'S3') t.ok(fillsBuffers(got), 'S3: the GET went through direct-http.ts');
    t.ok((await readAll(got)).equals(body), `${name}: put and get over https with the CA bundle`);
    t.equal((await trusted.head('over-tls.bin'))?.size, body.length);

    for (const [what, store] of [
      ['no bundle (system roots)', createStore(config(), env)],
      ['an unrelated CA', createStore(config(pki.otherCaFile), env)],
    ] as const) {
      t.teardown(() => store.close());
      for (const [op, call] of [
        ['HEAD', () => store.head('over-tls.bin')],
        ['GET', () => store.get('over-tls.bin')],
      ] as const) {
        try {
          await call();
          t.fail(`${name}, ${what}, ${op}: accepted an untrusted certificate`);
        } catch (err) {
          t.type(err, StorageError, `${name}, ${what}, ${op}: a StorageError`);
          t.match((err as Error).message, /certificate|self.signed|unable to (get|verify)/i, `${name}, ${what}, ${op}: refused (${(err as Error).message})`);
        }
      }
    }
  }
  t.ok(s3Tls.requests.length > 0 && ossTls.requests.length > 0, 'requests went through the TLS proxies');
});
