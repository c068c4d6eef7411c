import t from 'tap';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { crc64Of } from '../src/storage/crc64.js';
import { SegmentHasher } from '../src/storage/segment-hasher.js';

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

interface Digests {
  whole: string;
  segments: { md5: string; crc64: string }[];
}

/** Feed `data` as segments of `segment` bytes, each in chunks cut at `cuts` (cycled), and collect the hasher's digests. */
function hashed(data: Buffer, segment: number, cuts: number[]): Digests {
  const h = new SegmentHasher();
  const segments: Digests['segments'] = [];
  let offset = 0;
  let cut = 0;
  do {
    const end = Math.min(data.length, offset + segment);
    for (let at = offset; at < end; ) {
      const next = Math.min(end, at + Math.max(1, cuts[cut++ % cuts.length]!));
      h.update(data.subarray(at, next));
      at = next;
    }
    const d = h.endSegment();
    segments.push({ md5: d.md5.toString('hex'), crc64: d.crc64 });
    offset = end;
  } while (offset < data.length);
  return { whole: h.digestWhole().toString('hex'), segments };
}

/** The same digests from node:crypto and crc64.ts (hash-wasm), each segment hashed on its own. */
async function expected(data: Buffer, segment: number): Promise<Digests> {
  const segments: Digests['segments'] = [];
  let offset = 0;
  do {
    const part = data.subarray(offset, Math.min(data.length, offset + segment));
    segments.push({ md5: md5(part), crc64: await crc64Of(part) });
    offset += segment;
  } while (offset < data.length);
  return { whole: md5(data), segments };
}

t.test('RFC 1321 test suite: the whole-stream and the segment MD5 of one segment', async (t) => {
  const suite: [string, string][] = [
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
    ['1234567890'.repeat(8), '57edf4a22be3c955ac49da2e2107b67a'],
  ];
  for (const [text, expected] of suite) {
    const h = new SegmentHasher().update(Buffer.from(text));
    t.equal(h.endSegment().md5.toString('hex'), expected, `segment MD5 of ${JSON.stringify(text)}`);
    t.equal(h.digestWhole().toString('hex'), expected, `whole MD5 of ${JSON.stringify(text)}`);
  }
});

t.test('CRC-64 check value of "123456789" is 0x995DC9BBDF1939FA (CRC-64/XZ, OSS crc64ecma)', async (t) => {
  const h = new SegmentHasher().update(Buffer.from('123456789'));
  t.equal(h.endSegment().crc64, BigInt('0x995DC9BBDF1939FA').toString(10));
  h.digestWhole();
});

t.test('lengths around the block and padding edges, segments of one and several blocks, odd chunking', async (t) => {
  for (const size of [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 70_001]) {
    const data = randomBytes(size);
    for (const segment of [64, 128, 4096, 1 << 20]) {
      t.same(hashed(data, segment, [1, 7, 63, 64, 65, 4999]), await expected(data, segment), `${size} bytes in segments of ${segment}`);
    }
  }
});

t.test("chunks larger than the module's 64 KiB window, multi-MiB segments", async (t) => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  t.same(hashed(data, 1024 * 1024, [200_000, 65_536, 1]), await expected(data, 1024 * 1024));
});

t.test('property: any data, any segment size that is a multiple of 64, any chunking', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 3000 }),
      fc.integer({ min: 1, max: 20 }),
      fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
      async (bytes, blocks, cuts) => {
        const data = Buffer.from(bytes);
        const want = await expected(data, 64 * blocks);
        const got = hashed(data, 64 * blocks, cuts);
        return got.whole === want.whole && JSON.stringify(got.segments) === JSON.stringify(want.segments);
      },
    ),
    { numRuns: 200 },
  );
  t.pass('200 random cases agree with node:crypto and crc64.ts');
});

t.test('a segment ending off a block boundary must be the last: more bytes after it are refused', async (t) => {
  const h = new SegmentHasher().update(randomBytes(100));
  h.endSegment();
  t.throws(() => h.update(randomBytes(1)), /64-byte boundary/);
});

t.test('hashers are independent and reusable after digestWhole (pooled engines)', async (t) => {
  const a = randomBytes(5000);
  const b = randomBytes(7000);
  const ha = new SegmentHasher();
  const hb = new SegmentHasher();
  ha.update(a.subarray(0, 2500));
  hb.update(b.subarray(0, 3000));
  ha.update(a.subarray(2500));
  hb.update(b.subarray(3000));
  t.equal(ha.digestWhole().toString('hex'), md5(a));
  t.equal(hb.digestWhole().toString('hex'), md5(b));
  const again = new SegmentHasher().update(a);
  t.equal(again.endSegment().md5.toString('hex'), md5(a), 'a reused engine starts from a clean state');
  again.digestWhole();
  t.throws(() => again.update(a), /after digestWhole/);
});

t.test('a stream past 512 MiB: the padding carries a bit length over 32 bits', async (t) => {
  // 2^32 bits = 512 MiB; the length's high word is where a slip would show.
  const chunk = randomBytes(1024 * 1024);
  const h = new SegmentHasher();
  const reference = createHash('md5');
  for (let i = 0; i < 513; i++) {
    h.update(chunk);
    reference.update(chunk);
  }
  const tail = chunk.subarray(0, 1000);
  h.update(tail);
  reference.update(tail);
  const want = reference.digest('hex');
  t.equal(h.endSegment().md5.toString('hex'), want, 'segment lane');
  t.equal(h.digestWhole().toString('hex'), want, 'whole lane');
});
