/**
 * Client-side envelope encryption (src/crypto/envelope.ts, keys.ts) and
 * `bucketbridge decrypt` (src/cli/decrypt.ts): CTR positioning at any offset,
 * independent multipart parts, interoperability with the OpenSSL recipe in the
 * README, streaming with bounded memory, wrong keys and damaged objects, and
 * the CLI reading objects back from a file, an http URL, s3:// and oss://.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { command as decrypt, decryptCommand, metadataFromJson } from '../src/cli/decrypt.js';
import { UsageError, type CliIo } from '../src/cli/command.js';
import {
  counterAt,
  cryptAt,
  cryptStream,
  CSE_META,
  decryptStream,
  encryptInPlace,
  envelopeMetadata,
  EnvelopeError,
  newDataKey,
  openEnvelope,
  type DataKey,
} from '../src/crypto/envelope.js';
import { KeyMaterialError, keyFingerprint, loadPrivateKey, loadPublicKey, parseCustomerKey, readCaBundle } from '../src/crypto/keys.js';
import { crc64Of } from '../src/storage/crc64.js';
import { OssStore } from '../src/storage/oss-store.js';
import { S3Store } from '../src/storage/s3-store.js';
import { startOssServer } from './support/oss-server.js';
import { startS3Server } from './support/s3-server.js';
import { makeRsaKeyPair, makeTestPki } from './support/test-certs.js';

const KIB = 1024;
const MIB = 1024 * KIB;

const dir = mkdtempSync(join(tmpdir(), 'bb-envelope-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const alice = makeRsaKeyPair(dir, 'alice');
const mallory = makeRsaKeyPair(dir, 'mallory');
const alicePublic = loadPublicKey(alice.publicKeyFile);
const alicePrivate = loadPrivateKey(alice.privateKeyFile);

const md5hex = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Encrypt `plain` as BucketBridge would and return the ciphertext and its metadata. */
async function encryptObject(plain: Buffer, digests = true): Promise<{ cipher: Buffer; meta: Record<string, string>; dataKey: DataKey }> {
  const dataKey = newDataKey();
  const meta = envelopeMetadata(dataKey, alicePublic, {
    size: plain.length,
    ...(digests ? { crc64: await crc64Of(plain), md5Hex: md5hex(plain) } : {}),
  });
  return { cipher: cryptAt(dataKey, 0, plain), meta, dataKey };
}

t.test('the counter block for an offset is IV + offset/16 (mod 2^128), with the remainder skipped', async (t) => {
  const iv = Buffer.from('000102030405060708090a0b0c0d0eff', 'hex');
  t.same(counterAt(iv, 0), { counter: iv, skip: 0 });
  t.equal(counterAt(iv, 16).counter.toString('hex'), '000102030405060708090a0b0c0d0f00', 'carry into the next byte');
  t.same(counterAt(iv, 37), { counter: Buffer.from('000102030405060708090a0b0c0d0f01', 'hex'), skip: 5 });
  const top = Buffer.alloc(16, 0xff);
  t.equal(counterAt(top, 16).counter.toString('hex'), '0'.repeat(32), 'wraps modulo 2^128 like OpenSSL CTR');
  t.throws(() => counterAt(Buffer.alloc(12), 0), EnvelopeError);
});

t.test('any byte range encrypts on its own exactly as within the whole object (parts, odd offsets, counter wrap)', async (t) => {
  const plain = randomBytes(300 * KIB + 7);
  for (const iv of [randomBytes(16), Buffer.from('ffffffffffffffffffffffffffffff00', 'hex')]) {
    const dataKey: DataKey = { key: randomBytes(32), iv };
    const whole = cryptAt(dataKey, 0, plain);
    t.not(whole.equals(plain), true, 'ciphertext differs from plaintext');
    t.equal(whole.length, plain.length, 'CTR keeps the size');
    // Cut points: part-like (multiples of 16), odd ones, and a 1-byte piece.
    const cuts = [0, 1, 17, 64 * KIB, 64 * KIB + 1, 100_003, 200 * KIB, 200 * KIB + 15, plain.length];
    const pieces: Buffer[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) pieces.push(cryptAt(dataKey, cuts[i]!, plain.subarray(cuts[i]!, cuts[i + 1]!)));
    t.ok(Buffer.concat(pieces).equals(whole), `pieces == whole (iv ${iv.toString('hex').slice(0, 8)}…)`);
    t.ok(cryptAt(dataKey, 0, whole).equals(plain), 'CTR is its own inverse');
    const streamed = await readAll(Readable.from([plain.subarray(0, 5), plain.subarray(5, 70_000), plain.subarray(70_000)]).pipe(cryptStream(dataKey)));
    t.ok(streamed.equals(whole), 'the streaming cipher gives the same bytes');
    const fromMiddle = await readAll(Readable.from([plain.subarray(100_003)]).pipe(cryptStream(dataKey, 100_003)));
    t.ok(fromMiddle.equals(whole.subarray(100_003)), 'a stream can start at an offset');
  }
});

t.test('encrypting an upload unit in place gives the same bytes and the digests of the ciphertext', async (t) => {
  const dataKey = newDataKey();
  const plain = randomBytes(300 * KIB + 9);
  const offset = 5 * MIB + 3;
  const expected = cryptAt(dataKey, offset, plain);
  const unit = Buffer.from(plain);
  const digests = await encryptInPlace(dataKey, offset, unit);
  t.ok(unit.equals(expected), 'in place == copied');
  t.equal(digests.md5.toString('hex'), md5hex(expected), 'MD5 of the ciphertext (the Content-MD5 to send)');
  t.equal(digests.crc64, await crc64Of(expected), 'CRC-64 of the ciphertext (what OSS will report)');
  const empty = await encryptInPlace(dataKey, 0, Buffer.alloc(0));
  t.equal(empty.md5.toString('hex'), md5hex(Buffer.alloc(0)));
});

t.test('the README recipe: OpenSSL unwraps the data key (OAEP-SHA256) and decrypts the bytes (aes-256-ctr)', async (t) => {
  const plain = randomBytes(100 * KIB + 3);
  const { cipher, meta, dataKey } = await encryptObject(plain);
  writeFileSync(join(dir, 'wrapped.bin'), Buffer.from(meta[CSE_META.key]!, 'base64'));
  writeFileSync(join(dir, 'object.bin'), cipher);
  const key = execFileSync('openssl', [
    'pkeyutl', '-decrypt', '-inkey', alice.privateKeyFile, '-in', join(dir, 'wrapped.bin'),
    '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256',
  ]);
  t.ok(key.equals(dataKey.key), 'openssl recovers the data key');
  const ivHex = Buffer.from(meta[CSE_META.iv]!, 'base64').toString('hex');
  execFileSync('openssl', ['enc', '-d', '-aes-256-ctr', '-K', key.toString('hex'), '-iv', ivHex, '-in', join(dir, 'object.bin'), '-out', join(dir, 'plain.bin')]);
  t.ok(readFileSync(join(dir, 'plain.bin')).equals(plain), 'openssl recovers the plaintext');
  t.equal(meta[CSE_META.keyId], keyFingerprint(alicePublic), 'key id is the SHA-256 of the SPKI');
  t.equal(meta[CSE_META.alg], 'AES-256-CTR');
  t.equal(meta[CSE_META.wrapAlg], 'RSA-OAEP-SHA256');
});

t.test('opening and decrypting: round trip, verified against the recorded digests', async (t) => {
  const plain = randomBytes(77 * KIB);
  const { cipher, meta } = await encryptObject(plain);
  const opened = openEnvelope(meta, alicePrivate);
  const d = await decryptStream(opened);
  const out = await readAll(Readable.from([cipher]).pipe(d));
  t.ok(out.equals(plain));
  t.same(d.report().verifiedAgainst, [CSE_META.plaintextSize, CSE_META.plaintextCrc64, CSE_META.plaintextMd5]);

  // Prefixed, mixed-case names (what headers look like) are accepted too.
  const headers = Object.fromEntries(Object.entries(meta).map(([k, v]) => [`X-Oss-Meta-${k}`, v]));
  t.same(openEnvelope(headers, alicePrivate).dataKey, opened.dataKey);
});

t.test('without recorded plaintext digests only the size is checked: the source fingerprint is never taken for one', async (t) => {
  const plain = randomBytes(10 * KIB);
  const { cipher, meta } = await encryptObject(plain, false);
  // After a verbatim copy of an encrypted replica, bb-source-* describe the ciphertext it was copied from.
  const verbatim = { ...meta, 'bb-source-crc64': await crc64Of(cipher), 'bb-source-etag': md5hex(cipher) };
  const d = await decryptStream(openEnvelope(verbatim, alicePrivate));
  t.ok((await readAll(Readable.from([cipher]).pipe(d))).equals(plain));
  t.same(d.report().verifiedAgainst, [CSE_META.plaintextSize]);
});

t.test('a wrong private key is refused clearly, by key id or by OAEP', async (t) => {
  const { meta } = await encryptObject(randomBytes(100));
  const wrong = loadPrivateKey(mallory.privateKeyFile);
  t.throws(() => openEnvelope(meta, wrong), { name: 'EnvelopeError', code: 'WRONG_KEY', message: /encrypted for key [0-9a-f]{16}…, but the private key given is/ });
  const noId = { ...meta };
  delete noId[CSE_META.keyId];
  t.throws(() => openEnvelope(noId, wrong), { code: 'WRONG_KEY', message: /RSA-OAEP unwrapping of the data key failed/ });
});

t.test('damaged objects and unusable metadata', async (t) => {
  const plain = randomBytes(40 * KIB);
  const { cipher, meta } = await encryptObject(plain);
  const flipped = Buffer.from(cipher);
  flipped[1234]! ^= 0x01;
  const d = await decryptStream(openEnvelope(meta, alicePrivate));
  await t.rejects(pipeline(Readable.from([flipped]), d, new PassThrough().resume()), { code: 'INTEGRITY', message: /CRC-64/ });
  const d2 = await decryptStream(openEnvelope(meta, alicePrivate));
  await t.rejects(pipeline(Readable.from([cipher.subarray(0, 1000)]), d2, new PassThrough().resume()), { code: 'INTEGRITY', message: /decrypted 1000 bytes/ });

  t.throws(() => openEnvelope({ 'content-type': 'x' }, alicePrivate), { code: 'NOT_ENCRYPTED' });
  t.throws(() => openEnvelope({ ...meta, [CSE_META.alg]: 'AES-256-GCM' }, alicePrivate), { code: 'UNSUPPORTED', message: /AES-256-GCM/ });
  t.throws(() => openEnvelope({ ...meta, [CSE_META.wrapAlg]: 'RSA-PKCS1' }, alicePrivate), { code: 'UNSUPPORTED' });
  t.throws(() => openEnvelope({ ...meta, [CSE_META.iv]: 'AAAA' }, alicePrivate), { code: 'MALFORMED', message: /bb-cse-iv/ });
  t.throws(() => openEnvelope({ ...meta, [CSE_META.key]: 'not base64!' }, alicePrivate), { code: 'MALFORMED' });
  t.throws(() => openEnvelope({ ...meta, [CSE_META.plaintextSize]: 'x' }, alicePrivate), { code: 'MALFORMED' });
});

t.test('streams: 96 MiB encrypts and decrypts with memory bounded far below the object size', async (t) => {
  const size = 96 * MIB;
  const dataKey = newDataKey();
  const chunk = randomBytes(256 * KIB);
  function source(): Readable {
    let sent = 0;
    return new Readable({
      read() {
        if (sent >= size) return this.push(null);
        sent += chunk.length;
        this.push(chunk);
      },
    });
  }
  const hashPlain = createHash('md5');
  for (let i = 0; i < size / chunk.length; i++) hashPlain.update(chunk);
  const expectedMd5 = hashPlain.digest('hex');
  const meta = envelopeMetadata(dataKey, alicePublic, { size, md5Hex: expectedMd5 });
  const opened = openEnvelope(meta, alicePrivate);
  const d = await decryptStream(opened);
  global.gc?.();
  const before = process.memoryUsage();
  let peak = 0;
  let bytes = 0;
  const sink = new Writable({
    write(c: Buffer, _e, done) {
      bytes += c.length;
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers + m.heapUsed - (before.arrayBuffers + before.heapUsed));
      done();
    },
  });
  await pipeline(source(), cryptStream(dataKey), d, sink);
  t.equal(bytes, size);
  t.same(d.report().verifiedAgainst, [CSE_META.plaintextSize, CSE_META.plaintextMd5]);
  t.ok(peak < 48 * MIB, `memory grew by at most ${(peak / MIB).toFixed(1)} MiB for a ${size / MIB} MiB object`);
});

t.test('key files: what is accepted and what is refused, with the reason', async (t) => {
  const pkcs1 = join(dir, 'pkcs1.pem');
  writeFileSync(pkcs1, loadPublicKey(alice.publicKeyFile).export({ type: 'pkcs1', format: 'pem' }));
  t.equal(keyFingerprint(loadPublicKey(pkcs1)), keyFingerprint(alicePublic), 'PKCS#1 PEM');
  const der = join(dir, 'spki.der');
  writeFileSync(der, alicePublic.export({ type: 'spki', format: 'der' }));
  t.equal(keyFingerprint(loadPublicKey(der)), keyFingerprint(alicePublic), 'SPKI DER');
  const pki = makeTestPki();
  t.teardown(() => pki.cleanup());
  t.equal(loadPublicKey(pki.certFile).asymmetricKeyType, 'rsa', 'a certificate gives its public key');

  const refuse = (file: string, message: RegExp, what: string): void => {
    t.throws(() => loadPublicKey(file), { name: 'KeyMaterialError', message }, what);
  };
  refuse(join(dir, 'missing.pem'), /cannot read public key file .*missing\.pem \(ENOENT\)/, 'missing file');
  refuse(alice.privateKeyFile, /contains a private key; give the service only the public key/, 'a private key');
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n');
  refuse(garbage, /is not an RSA public key/, 'malformed PEM');
  const ec = join(dir, 'ec.pem');
  writeFileSync(ec, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
  refuse(ec, /holds a ec key; .* needs an RSA key/, 'an EC key');
  const small = join(dir, 'small.pem');
  writeFileSync(small, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }));
  refuse(small, /1024-bit RSA key; at least 2048 bits/, 'a 1024-bit key');

  t.throws(() => loadPrivateKey(alice.publicKeyFile), KeyMaterialError, 'a public key is no private key');
  const locked = join(dir, 'locked.pem');
  writeFileSync(locked, alicePrivate.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }));
  t.throws(() => loadPrivateKey(locked), { message: /passphrase is missing or wrong/ });
  t.equal(keyFingerprint(loadPrivateKey(locked, 'pw')), keyFingerprint(alicePublic), 'with its passphrase');

  t.equal(parseCustomerKey(Buffer.alloc(32, 7).toString('base64')).length, 32, 'SSE-C key as base64');
  t.equal(parseCustomerKey('ab'.repeat(32)).length, 32, 'SSE-C key as hex');
  t.throws(() => parseCustomerKey(Buffer.alloc(16).toString('base64')), /256-bit key/);
  t.throws(() => parseCustomerKey('secret'), /256-bit key/);

  t.match(readCaBundle(pki.caFile), /BEGIN CERTIFICATE/);
  t.throws(() => readCaBundle(alice.publicKeyFile), /contains no PEM certificate/);
});

// --- bucketbridge decrypt ---------------------------------------------------------------------

function cliIo(argv: string[], env: NodeJS.ProcessEnv = {}): { io: CliIo; stdout: () => Buffer; stderr: () => string } {
  const out: Buffer[] = [];
  let err = '';
  const stdout = new Writable({ write: (c: Buffer, _e, d) => (out.push(Buffer.from(c)), d()) });
  const stderr = new Writable({ write: (c: Buffer, _e, d) => ((err += c.toString()), d()) });
  return { io: { argv, env, stdin: Readable.from([]), stdout, stderr }, stdout: () => Buffer.concat(out), stderr: () => err };
}

function leftovers(inDir: string): string[] {
  return readdirSync(inDir).filter((f) => f.includes('.partial'));
}

t.test('decrypt --file + --metadata: the metadata forms people have at hand', async (t) => {
  const plain = randomBytes(123 * KIB);
  const { cipher, meta } = await encryptObject(plain);
  const objectFile = join(dir, 'obj.enc');
  writeFileSync(objectFile, cipher);
  const forms: Record<string, unknown> = {
    flat: meta,
    headers: Object.fromEntries(Object.entries(meta).map(([k, v]) => [`x-amz-meta-${k}`, v])),
    'aws s3api head-object': { ContentLength: plain.length, ETag: '"x"', Metadata: meta },
  };
  for (const [name, form] of Object.entries(forms)) {
    const metaFile = join(dir, `meta-${name.replace(/\W/g, '')}.json`);
    writeFileSync(metaFile, JSON.stringify(form));
    const outFile = join(dir, `out-${name.replace(/\W/g, '')}.bin`);
    const { io, stderr } = cliIo(['--private-key', alice.privateKeyFile, '--file', objectFile, '--metadata', metaFile, '--out', outFile]);
    t.equal(await decrypt.run(io), 0, `${name}: exit 0`);
    t.ok(readFileSync(outFile).equals(plain), `${name}: plaintext recovered`);
    t.match(stderr(), /decrypted 125952 bytes .* verified against bb-cse-plaintext-crc64, bb-cse-plaintext-md5/);
  }
  const { io, stdout } = cliIo(['--private-key', alice.privateKeyFile, '--file', objectFile, '--metadata', join(dir, 'meta-flat.json'), '--out', '-']);
  t.equal(await decrypt.run(io), 0);
  t.ok(stdout().equals(plain), '--out - writes to stdout');
  t.same(metadataFromJson({ metadata: { a: 'b' } }, 'f'), { a: 'b' });
});

t.test('decrypt with the wrong key or a damaged file: exit 1, a clear message, no output left behind', async (t) => {
  const plain = randomBytes(50 * KIB);
  const { cipher, meta } = await encryptObject(plain);
  const work = mkdtempSync(join(dir, 'wrong-'));
  writeFileSync(join(work, 'obj.enc'), cipher);
  writeFileSync(join(work, 'meta.json'), JSON.stringify(meta));
  const out = join(work, 'plain.bin');
  const wrong = cliIo(['--private-key', mallory.privateKeyFile, '--file', join(work, 'obj.enc'), '--metadata', join(work, 'meta.json'), '--out', out]);
  t.equal(await decrypt.run(wrong.io), 1);
  t.match(wrong.stderr(), /^bucketbridge decrypt: wrong key: the object was encrypted for key/);
  t.notOk(existsSync(out), 'no output file');

  const damaged = Buffer.from(cipher);
  damaged[10]! ^= 0x80;
  writeFileSync(join(work, 'obj.enc'), damaged);
  const bad = cliIo(['--private-key', alice.privateKeyFile, '--file', join(work, 'obj.enc'), '--metadata', join(work, 'meta.json'), '--out', out]);
  t.equal(await decrypt.run(bad.io), 1);
  t.match(bad.stderr(), /plaintext CRC-64 is \d+, bb-cse-plaintext-crc64 says \d+/);
  t.notOk(existsSync(out), 'no output file');
  t.same(leftovers(work), [], 'no partial file');
});

t.test('decrypt: wrong invocations are usage errors (exit 2 through the entry point)', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--file', 'x', '--metadata', 'y', '--out', 'z'], /--private-key is required/],
    [['--private-key', alice.privateKeyFile, '--file', 'x', '--metadata', 'y'], /--out is required/],
    [['--private-key', alice.privateKeyFile, '--out', 'z'], /exactly one of --url or --file/],
    [['--private-key', alice.privateKeyFile, '--file', 'x', '--out', 'z'], /--file needs --metadata/],
    [['--private-key', alice.publicKeyFile, '--file', 'x', '--metadata', 'y', '--out', 'z'], /--private-key: .* not an RSA private key/],
    [['--private-key', alice.privateKeyFile, '--url', 'ftp://x/y', '--out', 'z'], /--url must be s3:\/\/, oss:\/\//],
    [['--private-key', alice.privateKeyFile, '--url', 'oss://b/k', '--out', 'z'], /oss:\/\/ needs credentials in OSS_ACCESS_KEY_ID/],
    [['--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [argv, message] of cases) await t.rejects(decrypt.run(cliIo(argv).io), { name: 'UsageError', message }, argv.join(' '));
  const stderr = process.stderr.write;
  let captured = '';
  process.stderr.write = ((c: string) => ((captured += c), true)) as typeof process.stderr.write;
  try {
    t.equal(await decryptCommand(['--out', 'z']), 2, 'decryptCommand maps a usage error to 2');
  } finally {
    process.stderr.write = stderr;
  }
  t.match(captured, /--private-key is required/);
  t.ok(UsageError);
});

t.test('decrypt --url: http(s) (presigned/public URLs), s3:// and oss://, multipart-sized objects', async (t) => {
  // Parts encrypted independently at their offsets, as the copy path uploads them.
  const partSize = 5 * MIB;
  const plain = randomBytes(2 * partSize + 333 * KIB + 5);
  const dataKey = newDataKey();
  const meta = envelopeMetadata(dataKey, alicePublic, { size: plain.length, crc64: await crc64Of(plain) });
  const parts: Buffer[] = [];
  for (let off = 0; off < plain.length; off += partSize) parts.push(cryptAt(dataKey, off, plain.subarray(off, off + partSize)));

  const oss = await startOssServer({ buckets: ['cse'] });
  t.teardown(() => oss.close());
  const ossStore = new OssStore({
    bucket: 'cse',
    region: 'oss-cn-hangzhou',
    endpoint: oss.endpoint,
    credentials: { accessKeyId: oss.accessKeyId, accessKeySecret: oss.accessKeySecret },
  });
  t.teardown(() => ossStore.close());
  const uploadId = await ossStore.createMultipartUpload('dir/big object.bin', { userMetadata: meta });
  const etags = [];
  for (const [i, p] of parts.entries()) etags.push({ partNumber: i + 1, etag: (await ossStore.uploadPart('dir/big object.bin', uploadId, i + 1, p)).etag });
  await ossStore.completeMultipartUpload('dir/big object.bin', uploadId, etags);

  const env = { OSS_ACCESS_KEY_ID: oss.accessKeyId, OSS_ACCESS_KEY_SECRET: oss.accessKeySecret };
  const ossOut = join(dir, 'oss-out.bin');
  const r1 = cliIo(['--private-key', alice.privateKeyFile, '--url', 'oss://cse/dir/big%20object.bin', '--endpoint', oss.endpoint, '--out', ossOut], env);
  t.equal(await decrypt.run(r1.io), 0, r1.stderr());
  t.ok(readFileSync(ossOut).equals(plain), 'oss:// multipart object recovered');
  t.match(r1.stderr(), /verified against bb-cse-plaintext-crc64/);

  const s3 = await startS3Server({ buckets: ['cse'] });
  t.teardown(() => s3.close());
  const s3Store = new S3Store({
    bucket: 'cse',
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  t.teardown(() => s3Store.close());
  const whole = Buffer.concat(parts);
  await s3Store.put('k.bin', whole, whole.length, { userMetadata: meta });
  const s3Out = join(dir, 's3-out.bin');
  const r2 = cliIo(
    ['--private-key', alice.privateKeyFile, '--url', 's3://cse/k.bin', '--endpoint', s3.endpoint, '--force-path-style', '--out', s3Out],
    { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
  );
  t.equal(await decrypt.run(r2.io), 0, r2.stderr());
  t.ok(readFileSync(s3Out).equals(plain), 's3:// object recovered');

  // A presigned/public URL: metadata comes from the response headers.
  const http = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(whole.length), ...Object.fromEntries(Object.entries(meta).map(([k, v]) => [`x-amz-meta-${k}`, v])) });
    res.end(whole);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => http.close(() => r())));
  const httpOut = join(dir, 'http-out.bin');
  const r3 = cliIo(['--private-key', alice.privateKeyFile, '--url', `http://127.0.0.1:${(http.address() as AddressInfo).port}/k.bin?X-Amz-Signature=x`, '--out', httpOut]);
  t.equal(await decrypt.run(r3.io), 0, r3.stderr());
  t.ok(readFileSync(httpOut).equals(plain), 'http URL recovered');

  const r4 = cliIo(['--private-key', mallory.privateKeyFile, '--url', 'oss://cse/dir/big%20object.bin', '--endpoint', oss.endpoint, '--out', join(dir, 'never.bin')], env);
  t.equal(await decrypt.run(r4.io), 1, 'wrong key over oss:// too');
  t.match(r4.stderr(), /wrong key/);
  t.notOk(existsSync(join(dir, 'never.bin')));
});
