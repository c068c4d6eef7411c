/**
 * The pure decisions of the copy engine: the multipart plan (parts ≤ 10,000,
 * at least the configured size, objects beyond 5 GiB), the equality rule of
 * compare=checksum, the metadata a copy carries, and the memory bounds
 * (byte budget, semaphore).
 */
import t from 'tap';
import { ByteBudget, Semaphore } from '../src/replication/byte-budget.js';
import { compareObjects } from '../src/replication/compare.js';
import { MAX_PART_SIZE, MAX_PARTS, partPlan, usesMultipart } from '../src/replication/copy.js';
import { FINGERPRINT_CRC64, FINGERPRINT_ETAG, FINGERPRINT_SIZE, putOptionsFor } from '../src/replication/metadata.js';
import type { ObjectHead } from '../src/storage/object-store.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

t.test('part plan: at least the configured part size, never more than 10,000 parts, objects beyond 5 GiB', async (t) => {
  const cases: [number, number][] = [
    [16 * MIB + 1, 8 * MIB],
    [1 * GIB, 8 * MIB],
    [5 * GIB + 1, 8 * MIB],
    [78 * GIB + 123, 8 * MIB],
    [100 * GIB, 8 * MIB],
    [5 * 1024 * GIB, 8 * MIB], // S3's 5 TiB maximum object
    [350 * 1024, 100 * 1024],
  ];
  for (const [size, configured] of cases) {
    const { partSize, count } = partPlan(size, configured);
    t.ok(partSize >= configured, `${size}: part ${partSize} ≥ configured ${configured}`);
    t.ok(count <= MAX_PARTS, `${size}: ${count} parts ≤ 10,000`);
    t.ok(partSize <= MAX_PART_SIZE, `${size}: part ≤ 5 GiB`);
    t.equal(count, Math.ceil(size / partSize), `${size}: parts cover the object`);
    t.ok((count - 1) * partSize < size, `${size}: no empty last part`);
  }
  t.equal(partPlan(100 * GIB, 8 * MIB).partSize % MIB, 0, 'a grown part size is whole MiB');
  t.equal(partPlan(1 * GIB, 8 * MIB).partSize, 8 * MIB, 'the default part size when it fits');
});

t.test('single PUT up to the threshold, multipart above it, and always multipart beyond 5 GiB', async (t) => {
  t.notOk(usesMultipart(16 * MIB, 16 * MIB), 'exactly the threshold: single PUT');
  t.ok(usesMultipart(16 * MIB + 1, 16 * MIB));
  t.notOk(usesMultipart(0, 16 * MIB));
  t.ok(usesMultipart(5 * GIB + 1, 100 * GIB), 'a threshold above 5 GiB cannot make a single PUT of 5 GiB + 1');
  t.notOk(usesMultipart(5 * GIB, 100 * GIB));
});

function head(overrides: Partial<ObjectHead> = {}): ObjectHead {
  return {
    key: 'k',
    size: 10,
    etag: 'd41d8cd98f00b204e9800998ecf8427e',
    lastModified: new Date(0),
    userMetadata: {},
    storageClass: 'STANDARD',
    multipartEtag: false,
    needsRestore: false,
    restoreInProgress: false,
    ...overrides,
  };
}

t.test('compare=checksum', async (t) => {
  const md5a = '0cc175b9c0f1b6a831c399e269772661';
  const md5b = '92eb5ffee6ae2fec3ad71c777531578f';
  const eq = (s: Partial<ObjectHead>, d: Partial<ObjectHead>, mode: 'checksum' | 'size' | 'none' = 'checksum') =>
    compareObjects(head(s), head(d), mode).equal;
  t.notOk(eq({ size: 1 }, { size: 2 }), 'different sizes differ');
  t.ok(eq({ etag: md5a }, { etag: md5a.toUpperCase() }), 'single-part MD5 ETags, case-insensitive');
  t.notOk(eq({ etag: md5a }, { etag: md5b }), 'different MD5 ETags');
  t.notOk(eq({ etag: `${md5a}-3`, multipartEtag: true }, { etag: `${md5a}-3`, multipartEtag: true }), 'multipart ETags are never compared');
  t.ok(eq({ crc64: '1', etag: 'x-2', multipartEtag: true }, { crc64: '1', etag: 'y-3', multipartEtag: true }), 'CRC-64 on both sides');
  t.notOk(eq({ crc64: '1' }, { crc64: '2' }), 'CRC-64 differs');
  const fp = (etag: string, crc?: string) => ({ userMetadata: { [FINGERPRINT_ETAG]: etag, ...(crc ? { [FINGERPRINT_CRC64]: crc } : {}) } });
  t.ok(eq({ etag: `${md5a}-4`, multipartEtag: true }, { etag: 'ABC-2', multipartEtag: true, ...fp(`${md5a}-4`) }), 'the stored fingerprint matches the source');
  t.notOk(eq({ etag: `${md5b}-4`, multipartEtag: true }, { etag: 'ABC-2', multipartEtag: true, ...fp(`${md5a}-4`) }), 'the source changed since the copy');
  t.notOk(
    eq({ etag: `${md5a}-4`, multipartEtag: true }, { etag: 'ABC-2', multipartEtag: true, crc64: '9', ...fp(`${md5a}-4`, '7') }),
    "the destination's own CRC-64 contradicts the fingerprint: not equal",
  );
  t.notOk(eq({ etag: md5a }, { etag: md5b, ...fp(md5a) }), 'MD5 ETags that differ beat a matching fingerprint');
  t.ok(eq({ etag: `${md5b}-2`, multipartEtag: true, crc64: '5' }, { etag: 'Q-1', multipartEtag: true, crc64: '5', ...fp('old') }), 'a stale fingerprint, but the contents provably match');
  const nvme = (value: string) => ({ checksum: { algorithm: 'CRC64NVME' as const, value } });
  const multipart = (etag: string) => ({ etag, multipartEtag: true });
  t.ok(eq({ ...multipart(`${md5a}-3`), ...nvme('AAAA') }, { ...multipart(`${md5b}-5`), ...nvme('AAAA') }), 'S3 full-object checksums on both sides: other layouts, same bytes');
  t.notOk(eq({ ...multipart(`${md5a}-3`), ...nvme('AAAA') }, { ...multipart(`${md5a}-3`), ...nvme('BBBB'), ...fp(`${md5a}-3`) }), 'checksums that differ beat a matching fingerprint');
  t.notOk(
    eq({ ...multipart(`${md5a}-3`), ...nvme('AAAA') }, { ...multipart(`${md5b}-5`), checksum: { algorithm: 'CRC32', value: 'AAAA' } }),
    'checksums of two algorithms are not compared',
  );
  const differ = compareObjects(head({ ...multipart(`${md5a}-3`), ...nvme('AAAA') }), head({ ...multipart(`${md5b}-5`), ...nvme('BBBB') }), 'checksum');
  t.equal(differ.equal ? differ.by : differ.reason, 'CRC64NVME checksum differs');
  t.ok(eq({ ...multipart(`${md5a}-3`), ...nvme('AAAA') }, { ...multipart(`${md5b}-5`), ...nvme('AAAA') }, 'size'), 'compare=size ignores them');
  t.ok(eq({ etag: md5a }, { etag: md5b }, 'size'), 'compare=size: same size is enough');
  t.notOk(eq({ etag: md5a }, { etag: md5a }, 'none'), 'compare=none: never equal');
});

t.test('compare with client-side encryption: the envelope state first, then only the source fingerprint', async (t) => {
  const md5a = '0cc175b9c0f1b6a831c399e269772661';
  const cipherMd5 = '92eb5ffee6ae2fec3ad71c777531578f';
  const mine = 'a'.repeat(64);
  const envelope = (keyId: string, key = 'K', iv = 'I') => ({ 'bb-cse-alg': 'AES-256-CTR', 'bb-cse-key': key, 'bb-cse-iv': iv, 'bb-cse-key-id': keyId, 'bb-cse-plaintext-size': '10' });
  const replica = (meta: Record<string, string>, extra: Partial<ObjectHead> = {}) =>
    head({ etag: cipherMd5, crc64: '77', userMetadata: { [FINGERPRINT_ETAG]: md5a, [FINGERPRINT_SIZE]: '10', [FINGERPRINT_CRC64]: '5', ...meta }, ...extra });
  const source = head({ etag: md5a, crc64: '5' });
  const reason = (r: ReturnType<typeof compareObjects>) => (r.equal ? `equal by ${r.by}` : r.reason);
  const enc = { cseKeyId: mine };
  t.equal(reason(compareObjects(source, replica(envelope(mine)), 'checksum', enc)), 'equal by fingerprint (encrypted replica)', 'ciphertext MD5 and CRC-64 are not compared');
  t.equal(reason(compareObjects(head({ etag: 'ffffffffffffffffffffffffffffffff', crc64: '5' }), replica(envelope(mine)), 'checksum', enc)), 'source changed since last copy');
  t.equal(reason(compareObjects(head({ etag: md5a, crc64: '6' }), replica(envelope(mine)), 'checksum', enc)), 'crc64 of the source differs from the one encrypted');
  t.equal(reason(compareObjects(source, replica(envelope('b'.repeat(64))), 'checksum', enc)), 'replica is encrypted for another public key');
  t.equal(reason(compareObjects(source, head({ etag: md5a, crc64: '5', userMetadata: { [FINGERPRINT_ETAG]: md5a } }), 'checksum', enc)), 'replica is not client-side encrypted');
  t.equal(reason(compareObjects(source, head({ etag: md5a, crc64: '5' }), 'size', enc)), 'replica is not client-side encrypted', 'in every compare mode');
  t.equal(reason(compareObjects(source, replica(envelope(mine)), 'checksum')), 'replica is client-side encrypted; the task copies plaintext');
  // A task without encryption copying an encrypted source verbatim: the same envelope, and the ciphertext's own digests.
  const encryptedSource = head({ etag: cipherMd5, crc64: '77', userMetadata: envelope(mine) });
  const verbatim = head({ etag: cipherMd5, crc64: '77', userMetadata: { ...envelope(mine), [FINGERPRINT_ETAG]: cipherMd5 } });
  t.equal(reason(compareObjects(encryptedSource, verbatim, 'checksum')), 'equal by fingerprint');
  t.equal(reason(compareObjects(encryptedSource, { ...verbatim, crc64: '78' }, 'checksum')), 'crc64 differs', 'the ciphertext digests are compared as for any verbatim copy');
  t.equal(reason(compareObjects(encryptedSource, head({ etag: cipherMd5, crc64: '77', userMetadata: envelope(mine, 'other') }), 'checksum')), "replica's envelope is not the source's");
  t.equal(reason(compareObjects(encryptedSource, head({ etag: cipherMd5, crc64: '77' }), 'checksum')), "replica lacks the source's envelope metadata");
});

t.test('metadata: a source envelope is dropped when the task encrypts, carried by a verbatim copy', async (t) => {
  const meta = { 'bb-cse-key': 'K', 'bb-cse-iv': 'I', 'bb-cse-alg': 'AES-256-CTR', 'bb-cse-future-field': 'x', owner: 'me' };
  t.same(putOptionsFor(head({ userMetadata: meta }), { encrypting: true }).userMetadata, { owner: 'me', [FINGERPRINT_ETAG]: head().etag, [FINGERPRINT_SIZE]: '10' });
  t.match(putOptionsFor(head({ userMetadata: meta })).userMetadata, meta);
});

t.test('metadata of a copy: headers, user metadata, mapped class, fingerprint (never one inherited from a replica)', async (t) => {
  const o = putOptionsFor(
    head({
      contentType: 'a/b',
      contentEncoding: 'gzip',
      contentDisposition: 'inline',
      contentLanguage: 'fr',
      cacheControl: 'no-cache',
      expires: '0',
      userMetadata: { owner: 'x', [FINGERPRINT_ETAG]: 'stale', [FINGERPRINT_CRC64]: 'stale', [FINGERPRINT_SIZE]: '1' },
      storageClass: 'STANDARD_IA',
      crc64: '42',
    }),
  );
  t.strictSame(o, {
    userMetadata: { owner: 'x', [FINGERPRINT_ETAG]: 'd41d8cd98f00b204e9800998ecf8427e', [FINGERPRINT_SIZE]: '10', [FINGERPRINT_CRC64]: '42' },
    contentType: 'a/b',
    contentEncoding: 'gzip',
    contentDisposition: 'inline',
    contentLanguage: 'fr',
    cacheControl: 'no-cache',
    expires: '0',
    storageClass: 'STANDARD_IA',
  });
  t.equal(putOptionsFor(head({ storageClass: 'STANDARD_IA' }), { storageClass: 'ARCHIVE' }).storageClass, 'ARCHIVE', 'task override');
  t.equal(putOptionsFor(head({ storageClass: 'OTHER' })).storageClass, undefined, 'no counterpart: bucket default');
});

t.test('byte budget: bounded, FIFO, and a request above the limit runs alone', async (t) => {
  const b = new ByteBudget(100);
  const r1 = await b.acquire(60);
  let second = false;
  const p2 = b.acquire(60).then((r) => ((second = true), r));
  await new Promise((r) => setImmediate(r));
  t.notOk(second, 'waits while it does not fit');
  t.equal(b.inUse, 60);
  r1();
  const r2 = await p2;
  t.ok(second);
  r2();
  r2(); // double release is harmless
  t.equal(b.inUse, 0);
  const big = await b.acquire(500);
  t.equal(b.inUse, 500, 'larger than the limit: admitted when alone');
  big();
  const s = new Semaphore(2);
  let active = 0;
  let max = 0;
  await Promise.all(
    Array.from({ length: 6 }, () =>
      s.run(async () => {
        active++;
        max = Math.max(max, active);
        await new Promise((r) => setTimeout(r, 5));
        active--;
      }),
    ),
  );
  t.equal(max, 2, 'semaphore caps concurrency');
});
