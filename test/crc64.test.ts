import t from 'tap';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Crc64, crc64Combine, crc64Of, crc64Transform } from '../src/storage/crc64.js';

/** Independent bit-at-a-time CRC-64/XZ, written from the catalogue parameters only. */
function slowCrc64Xz(buf: Uint8Array): string {
  const poly = 0xc96c5795d7870f42n; // 0x42F0E1EBA9EA3693 reflected
  let crc = 0xffffffffffffffffn;
  for (const byte of buf) {
    crc ^= BigInt(byte);
    for (let i = 0; i < 8; i++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return (crc ^ 0xffffffffffffffffn).toString(10);
}

t.test('check value of "123456789" is 0x995DC9BBDF1939FA (CRC-64/XZ, OSS crc64ecma)', async (t) => {
  const expected = BigInt('0x995DC9BBDF1939FA').toString(10);
  t.equal(await crc64Of(Buffer.from('123456789')), expected);
  t.equal(slowCrc64Xz(Buffer.from('123456789')), expected, 'the reference implementation agrees');
});

t.test('CRC of the empty input is 0', async (t) => {
  t.equal(await crc64Of(new Uint8Array(0)), '0');
});

t.test('incremental updates equal the one-shot value and the bitwise reference', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.nat({ max: 2048 }), async (bytes, cut) => {
      const at = Math.min(cut, bytes.length);
      const h = await Crc64.create();
      h.update(bytes.subarray(0, at)).update(bytes.subarray(at));
      const incremental = h.digest();
      return incremental === (await crc64Of(bytes)) && incremental === slowCrc64Xz(bytes);
    }),
    { numRuns: 200 },
  );
});

t.test('digest() can be called once only', async (t) => {
  const h = await Crc64.create();
  h.digest();
  t.throws(() => h.digest());
  t.throws(() => h.update(new Uint8Array(1)));
});

t.test('reused hashers start clean: interleaved hashers whose predecessors were digested, abandoned or are still open stay independent', async (t) => {
  const inputs = Array.from({ length: 40 }, (_, i) => randomBytes(17 * i + 3));
  // Round 1 leaves hashers behind in every state: digested (returned for reuse), abandoned mid-way, and open.
  const open: Crc64[] = [];
  for (const [i, buf] of inputs.entries()) {
    const h = (await Crc64.create()).update(buf.subarray(0, buf.length >> 1));
    if (i % 3 === 0) h.update(buf.subarray(buf.length >> 1)).digest();
    else if (i % 3 === 1) open.push(h);
    // i % 3 === 2: abandoned without a digest
  }
  // Round 2 runs on reused hashers, interleaved with each other and with the still-open ones.
  const fresh = await Promise.all(inputs.map(() => Crc64.create()));
  for (const [i, buf] of inputs.entries()) fresh[i]!.update(buf.subarray(0, 5));
  for (const [i, buf] of inputs.entries()) fresh[i]!.update(buf.subarray(5));
  for (const [i, buf] of inputs.entries()) t.equal(fresh[i]!.digest(), slowCrc64Xz(buf), `input ${i}`);
  for (const [n, h] of open.entries()) {
    const buf = inputs[3 * n + 1]!;
    t.equal(h.update(buf.subarray(buf.length >> 1)).digest(), slowCrc64Xz(buf), `open hasher ${n} finished after the reuse`);
  }
});

t.test('combine(crc(A), crc(B), len(B)) === crc(A||B), including empty parts', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.uint8Array({ maxLength: 4096 }), async (a, b) => {
      const whole = Buffer.concat([a, b]);
      const combined = crc64Combine(await crc64Of(a), await crc64Of(b), b.length);
      return combined === (await crc64Of(whole));
    }),
    { numRuns: 300 },
  );
});

t.test('combining many parts in sequence equals the CRC of the whole (resume after crash)', async (t) => {
  const parts = [0, 1, 7, 0, 1000, 65537, 3].map((n) => randomBytes(n));
  let acc = await crc64Of(parts[0] ?? Buffer.alloc(0));
  for (const p of parts.slice(1)) acc = crc64Combine(acc, await crc64Of(p), p.length);
  t.equal(acc, await crc64Of(Buffer.concat(parts)));
});

t.test('combine works for lengths of 2^32 and more (no 32-bit truncation)', async (t) => {
  // Buffers that large cannot be hashed in a test. Zero runs commute, so
  // crc(zeros(17) || zeros(2^32)) must equal crc(zeros(2^32) || zeros(17)); only the
  // left side passes len2 = 2^32, which a 32-bit shift would turn into 0.
  // crc(zeros(2^32)) itself is built by doubling, with lengths below 2^32.
  let z = await crc64Of(Buffer.alloc(1));
  for (let len = 1; len < 2 ** 32; len *= 2) z = crc64Combine(z, z, len);
  const z17 = await crc64Of(Buffer.alloc(17));
  t.equal(crc64Combine(z17, z, 2 ** 32), crc64Combine(z, z17, 17));
  t.not(crc64Combine(z17, z, 2 ** 32), crc64Combine(z17, z, 0), 'the length is not truncated to 32 bits');
  const zz = crc64Combine(z, z, 2 ** 32); // zeros(2^33)
  t.equal(crc64Combine(z17, zz, 2 ** 33), crc64Combine(zz, z17, 17));
});

t.test('combine rejects malformed input', async (t) => {
  t.throws(() => crc64Combine('abc', '0', 1), RangeError);
  t.throws(() => crc64Combine('18446744073709551616', '0', 1), RangeError, 'more than 64 bits');
  t.throws(() => crc64Combine('0', '0', -1), RangeError);
  t.throws(() => crc64Combine('0', '0', 1.5), RangeError);
});

t.test('crc64Transform passes bytes through unchanged and hashes them', async (t) => {
  const chunks = [randomBytes(100), randomBytes(0), randomBytes(70_000), randomBytes(1)];
  const tr = crc64Transform();
  t.throws(() => tr.digest(), 'digest before the stream finished');
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    tr,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  const whole = Buffer.concat(chunks);
  t.ok(Buffer.concat(out).equals(whole));
  t.equal(tr.bytes, whole.length);
  t.equal(tr.digest(), await crc64Of(whole));
});

t.test('crc64Transform of an empty stream digests to 0', async (t) => {
  const tr = crc64Transform();
  await pipeline(Readable.from([]), tr, new Writable({ write: (_c, _e, cb) => cb() }));
  t.equal(tr.digest(), '0');
});
