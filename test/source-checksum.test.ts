/**
 * The S3 full-object checksums a source is checked with (src/replication/source-checksum.ts),
 * against the published check values of each algorithm (digest of "123456789"), and which
 * source gets checked this way (or, uploaded in parts, by which part digest).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { ObjectHead, S3ChecksumAlgorithm } from '../src/storage/object-store.js';
import { checksumToVerify, createChecksumHasher, createSourceChecksum, verifySourceChecksum } from '../src/replication/source-checksum.js';
import { partDigestTarget } from '../src/replication/source-parts.js';
import { IntegrityError } from '../src/replication/integrity-error.js';

// Check values: CRC RevEng catalogue (CRC-64/NVME, CRC-32/ISO-HDLC, CRC-32/ISCSI) and FIPS 180 digests of "123456789".
const CHECK: Record<S3ChecksumAlgorithm, string> = {
  CRC64NVME: 'ae8b14860a799888',
  CRC32: 'cbf43926',
  CRC32C: 'e3069283',
  SHA1: 'f7c3bc1d808e04732adf679965ccc34ca7ae3441',
  SHA256: '15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225',
};
const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

t.test('each algorithm gives its check value, in S3 form (base64 of the big-endian digest)', async (t) => {
  for (const [algorithm, hex] of Object.entries(CHECK) as [S3ChecksumAlgorithm, string][]) {
    const c = await createSourceChecksum(algorithm);
    c.update(Buffer.from('123456789'));
    t.equal(c.digest(), b64(hex), algorithm);
  }
});

t.test('pieces of any size give the digest of the whole', async (t) => {
  const data = randomBytes(200_003);
  for (const algorithm of Object.keys(CHECK) as S3ChecksumAlgorithm[]) {
    const whole = await createSourceChecksum(algorithm);
    whole.update(data);
    const pieces = await createSourceChecksum(algorithm);
    for (let off = 0, n = 1; off < data.length; off += n, n = (n * 7 + 3) % 65_537) pieces.update(data.subarray(off, off + n));
    t.equal(pieces.digest(), whole.digest(), algorithm);
  }
});

t.test('a reusable hasher (composite checksums: one digest per part) starts over after each digest', async (t) => {
  for (const [algorithm, hex] of Object.entries(CHECK) as [S3ChecksumAlgorithm, string][]) {
    const h = await createChecksumHasher(algorithm);
    h.update(randomBytes(1000));
    h.digestRaw();
    h.update(Buffer.from('1234'));
    h.update(Buffer.from('56789'));
    t.equal(h.digestRaw().toString('hex'), hex, `${algorithm}: raw big-endian digest of only the bytes since the last one`);
  }
});

const head = (over: Partial<ObjectHead>): ObjectHead => ({
  key: 'k',
  size: 9,
  etag: '0123456789abcdef0123456789abcdef-2',
  lastModified: new Date(0),
  userMetadata: {},
  storageClass: 'STANDARD',
  multipartEtag: true,
  needsRestore: false,
  restoreInProgress: false,
  ...over,
});

t.test('a source uploaded in parts is checked against its multipart ETag, else its composite checksum', async (t) => {
  const composite = { algorithm: 'CRC32' as const, value: b64(CHECK.CRC32), count: 2 };
  const etag = '0123456789abcdef0123456789abcdef-2';
  t.same(partDigestTarget(head({ compositeChecksum: composite })), { kind: 'etag', md5OfMd5s: etag.slice(0, 32), count: 2 }, 'an MD5 multipart ETag first');
  t.same(partDigestTarget(head({ compositeChecksum: composite, serverSideEncryption: 'aws:kms' })), { kind: 'checksum', ...composite }, 'SSE-KMS: the composite checksum');
  t.same(partDigestTarget(head({ compositeChecksum: composite, sseCustomerAlgorithm: 'AES256' })), { kind: 'checksum', ...composite }, 'SSE-C: the composite checksum');
  t.equal(partDigestTarget(head({ serverSideEncryption: 'aws:kms' })), undefined, 'SSE-KMS without a checksum: nothing');
});

t.test('a checksum is used only when nothing cheaper describes the bytes', async (t) => {
  const checksum = { algorithm: 'CRC64NVME' as const, value: b64(CHECK.CRC64NVME) };
  t.same(checksumToVerify(head({ checksum })), checksum, 'multipart ETag: the checksum');
  t.equal(checksumToVerify(head({ checksum, etag: '0123456789abcdef0123456789abcdef', multipartEtag: false })), undefined, 'MD5 ETag: that');
  t.equal(checksumToVerify(head({ checksum, crc64: '1' })), undefined, 'OSS CRC-64: that');
  t.equal(checksumToVerify(head({})), undefined, 'no checksum reported');
});

t.test('verifySourceChecksum: equal passes, different is a source IntegrityError', async (t) => {
  const h = head({ checksum: { algorithm: 'CRC32C', value: b64(CHECK.CRC32C) } });
  const good = await createSourceChecksum('CRC32C');
  good.update(Buffer.from('123456789'));
  t.doesNotThrow(() => verifySourceChecksum(h, good));
  const bad = await createSourceChecksum('CRC32C');
  bad.update(Buffer.from('123456780'));
  const err = (() => {
    try {
      verifySourceChecksum(h, bad);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.type(err, IntegrityError);
  t.equal((err as IntegrityError).side, 'source');
});
