/**
 * BufferPool (src/replication/byte-budget.ts): upload units' buffers are
 * recycled by capacity class, small objects included, within the idle cap.
 */
import t from 'tap';
import { BufferPool } from '../src/replication/byte-budget.js';

const KIB = 1024;
const MIB = 1024 * KIB;

t.test('capacity classes: powers of two up to a MiB, whole MiBs above', async (t) => {
  t.equal(BufferPool.capacityFor(64 * KIB), 64 * KIB);
  t.equal(BufferPool.capacityFor(64 * KIB + 1), 128 * KIB);
  t.equal(BufferPool.capacityFor(20 * KIB), 32 * KIB);
  t.equal(BufferPool.capacityFor(MIB), MIB);
  t.equal(BufferPool.capacityFor(MIB + 1), 2 * MIB);
  t.equal(BufferPool.capacityFor(8 * MIB), 8 * MIB);
  t.equal(BufferPool.capacityFor(5 * MIB + 7), 6 * MIB);
});

t.test('a released small unit buffer is handed out again for a unit of the same class', async (t) => {
  const pool = new BufferPool(16 * MIB);
  const a = pool.take(64 * KIB);
  t.equal(a.length, 64 * KIB);
  a.fill(1);
  pool.release(a);
  t.equal(pool.idleBytes, 64 * KIB);
  const b = pool.take(50 * KIB); // same 64 KiB class
  t.equal(b.length, 50 * KIB, 'exactly the size asked for');
  t.equal(b.buffer, a.buffer, 'the same memory');
  t.equal(pool.idleBytes, 0);
  const c = pool.take(64 * KIB);
  t.not(c.buffer, a.buffer, 'a unit taken while the first is out gets its own memory');
});

t.test('units under minBytes are plain allocations and are not kept', async (t) => {
  const pool = new BufferPool(16 * MIB);
  const a = pool.take(4 * KIB);
  pool.release(a);
  t.equal(pool.idleBytes, 0);
});

t.test('no more than maxPooledBytes stay idle, and clear() drops them', async (t) => {
  const pool = new BufferPool(256 * KIB);
  const units = Array.from({ length: 6 }, () => pool.take(64 * KIB));
  for (const u of units) pool.release(u);
  t.equal(pool.idleBytes, 256 * KIB, 'four of six kept');
  pool.clear();
  t.equal(pool.idleBytes, 0);
});

t.test('a buffer that is not the pool\'s own (a slice of something else) is not adopted', async (t) => {
  const pool = new BufferPool(16 * MIB);
  const foreign = Buffer.alloc(256 * KIB).subarray(0, 64 * KIB);
  pool.release(foreign);
  t.equal(pool.idleBytes, 0);
});
