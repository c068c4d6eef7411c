/**
 * One pass over a byte stream for what a multipart copy must know of it: the
 * MD5 and the CRC-64 of each segment (a part: its Content-MD5, part ETag check
 * and resume record) and the MD5 of the whole stream (to check the bytes read
 * against a source whose ETag is an MD5) — for about the price of one MD5.
 *
 * Why: done separately (OpenSSL MD5 twice, hash-wasm's CRC-64) these cost
 * 2 × 1.4 + 0.75 CPU-s per GiB on the bench machines, the largest item of a
 * 1 GiB copy's CPU (bench/README.md, "## Copy"), on a bench where every
 * CPU-second is throughput.
 *
 * How: MD5 is a chain of 64 dependent steps per 64-byte block, so one stream
 * is bound by the chain's latency, not by the CPU's width, which leaves room
 * for more work beside it.
 *  - Both MD5s eat the same 64-byte blocks (a segment starts where a block
 *    starts), only their states differ. So the four state words are kept as
 *    WebAssembly SIMD vectors, lane 0 the whole stream's and lane 1 the
 *    segment's, and every step runs on both lanes at once with the message
 *    word broadcast to all lanes. Each step is written so that the value the
 *    previous step made enters last (its chain: f, add, rotate, add).
 *  - The CRC-64 (slicing-by-8, scalar) is interleaved with the MD5 steps, one
 *    8-byte slice after every 8 steps, so the CPU runs it in the MD5 chain's
 *    idle issue slots.
 *  - Finalisation differs per lane (the length in the padding), so each MD5
 *    lane is finished on a copy of the state.
 *
 * The module is generated below from the MD5 and CRC tables (RFC 1321; the
 * CRC-64/XZ polynomial of crc64.ts) rather than shipped as an opaque .wasm:
 * the code that runs is the code that is read. test/segment-hasher.test.ts
 * checks it against node:crypto and crc64.ts.
 */
import { Buffer } from 'node:buffer';
import { REFLECTED_POLY } from './crc64.js';

/** Bytes of input handed to the module per call; the data region also holds up to two padding blocks after it. */
const CHUNK = 64 * 1024;
/** Memory layout: the MD5 state (4 × v128) at 0, the segment's CRC (i64) at CRC, the 8 CRC tables at TABLES, the data at DATA. */
const CRC = 64;
const TABLES = 1024;
const TABLE_BYTES = 256 * 8;
const DATA = TABLES + 8 * TABLE_BYTES;
const PAGES = Math.ceil((DATA + CHUNK + 128) / 65536);
/** Bytes of the state that finishing a lane must leave as they were: the MD5 vectors and the CRC. */
const STATE_BYTES = CRC + 8;

const INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
const SHIFTS = [
  [7, 12, 17, 22],
  [5, 9, 14, 20],
  [4, 11, 16, 23],
  [6, 10, 15, 21],
];
/** RFC 1321's T[i] = floor(2^32 × |sin(i)|), written out rather than computed: Math.sin's last bit is the engine's. As i32 for i32.const. */
const K = [
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
].map((k) => k | 0);

const ALL_ONES = 0xffffffffffffffffn;

/** Slicing-by-8 tables of CRC-64/XZ (crc64.ts's reflected polynomial): T[0] the byte-at-a-time table, T[k][i] = i followed by k zero bytes. */
function crcTables(): BigUint64Array {
  const t = new BigUint64Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = BigInt(i);
    for (let bit = 0; bit < 8; bit++) c = c & 1n ? (c >> 1n) ^ REFLECTED_POLY : c >> 1n;
    t[i] = c;
  }
  for (let k = 1; k < 8; k++) {
    for (let i = 0; i < 256; i++) {
      const prev = t[(k - 1) * 256 + i]!;
      t[k * 256 + i] = (prev >> 8n) ^ t[Number(prev & 0xffn)]!;
    }
  }
  return t;
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Buffer.from(s, 'utf8')];
}

// The instructions used (WebAssembly core + fixed-width SIMD opcodes).
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32Load: (offset: number) => [0x28, 2, ...uleb(offset)],
  i64Load: (offset: number) => [0x29, 3, ...uleb(offset)],
  i32Load8U: [0x2d, 0, 0],
  i64Store: (offset: number) => [0x37, 3, ...uleb(offset)],
  i64Const: (n: number) => [0x42, ...sleb(n)],
  i32And: [0x71],
  i32Xor: [0x73],
  i32Shl: [0x74],
  i64Xor: [0x85],
  i64ShrU: [0x88],
  i32WrapI64: [0xa7],
  i32Const: (n: number) => [0x41, ...sleb(n)],
  i32Eqz: [0x45],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  simd: (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm],
};
const v128Load = (offset: number) => op.simd(0x00, 4, ...uleb(offset));
const v128Store = (offset: number) => op.simd(0x0b, 4, ...uleb(offset));
const i32x4Splat = op.simd(0x11);
const v128Not = op.simd(0x4d);
const v128And = op.simd(0x4e);
const v128Andnot = op.simd(0x4f);
const v128Or = op.simd(0x50);
const v128Xor = op.simd(0x51);
const v128Bitselect = op.simd(0x52);
const i32x4Shl = op.simd(0xab);
const i32x4ShrU = op.simd(0xad);
const i32x4Add = op.simd(0xae);

/**
 * The module's two functions, both `(n: i32) -> ()`:
 *  - `blocks(n)`: n 64-byte blocks at DATA through the MD5 compression on
 *    both lanes of the state at 0, and through the CRC at CRC;
 *  - `crcBytes(n)`: n bytes at DATA through the CRC only (a segment's tail
 *    shorter than a block).
 */
function buildModule(): Uint8Array {
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec([[0x7f]]), ...vec([])]])),
    ...section(3, vec([[0], [0]])),
    ...section(5, vec([[0x00, ...uleb(PAGES)]])),
    ...section(7, vec([[...name('blocks'), 0x00, 0], [...name('crcBytes'), 0x00, 1], [...name('memory'), 0x02, 0]])),
    ...section(10, vec([functionBody(blocksCode()), functionBody(crcBytesCode())])),
  ]);
}

function functionBody(fn: { locals: number[][]; code: number[] }): number[] {
  const body = [...vec(fn.locals), ...fn.code, ...op.end];
  return [...uleb(body.length), ...body];
}

function blocksCode(): { locals: number[][]; code: number[] } {
  // Locals: 0 = n (param), 1 = p, 2..5 = a b c d, 6..9 = their values at the block's start, 10 = scratch, 11 = crc, 12 = crc ^ word.
  const N = 0;
  const P = 1;
  const SAVED = 6;
  const TMP = 10;
  const CRC_LOCAL = 11;
  const X = 12;
  const code: number[] = [];
  const emit = (...parts: number[][]): void => {
    for (const part of parts) code.push(...part);
  };
  for (let w = 0; w < 4; w++) emit(op.i32Const(0), v128Load(16 * w), op.set(2 + w));
  emit(op.i32Const(0), op.i64Load(CRC), op.set(CRC_LOCAL));
  emit(op.i32Const(DATA), op.set(P));
  emit(op.block, op.loop);
  emit(op.get(N), op.i32Eqz, op.brIf(1));
  for (let w = 0; w < 4; w++) emit(op.get(2 + w), op.set(SAVED + w));
  // regs[0..3] name the locals playing a, b, c, d in the current step; they rotate instead of moving values.
  let regs = [2, 3, 4, 5];
  for (let i = 0; i < 64; i++) {
    const round = i >> 4;
    const [a, b, c, d] = regs as [number, number, number, number];
    const g = round === 0 ? i : round === 1 ? (5 * i + 1) % 16 : round === 2 ? (3 * i + 5) % 16 : (7 * i) % 16;
    const s = SHIFTS[round]![i % 4]!;
    // a + (M[g] + K[i]) broadcast to every lane: none of it waits for the previous step.
    emit(op.get(a), op.get(P), op.i32Load(4 * g), op.i32Const(K[i]!), op.i32Add, i32x4Splat, i32x4Add);
    // + f(b, c, d), written so that b, the value the previous step just made, enters as late as possible.
    if (round === 0) emit(op.get(c), op.get(d), op.get(b), v128Bitselect, i32x4Add); // (b & c) | (~b & d): b is the mask
    // (c & ~d) | (d & b): the two terms share no bit, so | is +, and c & ~d joins the sum before b is there.
    else if (round === 1) emit(op.get(c), op.get(d), v128Andnot, i32x4Add, op.get(d), op.get(b), v128And, i32x4Add);
    else if (round === 2) emit(op.get(c), op.get(d), v128Xor, op.get(b), v128Xor, i32x4Add); // b ^ c ^ d
    else emit(op.get(c), op.get(d), v128Not, op.get(b), v128Or, v128Xor, i32x4Add); // c ^ (b | ~d)
    // rotl(x, s) + b, into a
    emit(op.tee(TMP), op.i32Const(s), i32x4Shl, op.get(TMP), op.i32Const(32 - s), i32x4ShrU, v128Or, op.get(b), i32x4Add, op.set(a));
    regs = [d, a, b, c];
    if (i % 8 === 7) {
      // One CRC slice (8 bytes, slicing-by-8) between MD5 steps: crc = T7[x0] ^ T6[x1] ^ … ^ T0[x7], x = crc ^ word.
      const slice = i >> 3;
      emit(op.get(CRC_LOCAL), op.get(P), op.i64Load(8 * slice), op.i64Xor, op.set(X));
      for (let byte = 0; byte < 8; byte++) {
        emit(op.get(X));
        if (byte > 0) emit(op.i64Const(8 * byte), op.i64ShrU);
        emit(op.i32WrapI64);
        if (byte < 7) emit(op.i32Const(0xff), op.i32And);
        emit(op.i32Const(3), op.i32Shl, op.i64Load(TABLES + (7 - byte) * TABLE_BYTES));
        if (byte > 0) emit(op.i64Xor);
      }
      emit(op.set(CRC_LOCAL));
    }
  }
  // After 64 steps the roles are back where they started.
  for (let w = 0; w < 4; w++) emit(op.get(2 + w), op.get(SAVED + w), i32x4Add, op.set(2 + w));
  emit(op.get(P), op.i32Const(64), op.i32Add, op.set(P));
  emit(op.get(N), op.i32Const(1), op.i32Sub, op.set(N));
  emit(op.br(0), op.end, op.end);
  for (let w = 0; w < 4; w++) emit(op.i32Const(0), op.get(2 + w), v128Store(16 * w));
  emit(op.i32Const(0), op.get(CRC_LOCAL), op.i64Store(CRC));
  return {
    locals: [
      [1, 0x7f],
      [9, 0x7b],
      [2, 0x7e],
    ],
    code,
  };
}

function crcBytesCode(): { locals: number[][]; code: number[] } {
  // Locals: 0 = n (param), 1 = p, 2 = crc. Per byte: crc = T0[(crc ^ byte) & 0xff] ^ (crc >> 8).
  const N = 0;
  const P = 1;
  const C = 2;
  const code = [
    [op.i32Const(0), op.i64Load(CRC), op.set(C)],
    [op.i32Const(DATA), op.set(P)],
    [op.block, op.loop, op.get(N), op.i32Eqz, op.brIf(1)],
    [op.get(C), op.i64Const(8), op.i64ShrU],
    [op.get(C), op.i32WrapI64, op.get(P), op.i32Load8U, op.i32Xor, op.i32Const(0xff), op.i32And, op.i32Const(3), op.i32Shl, op.i64Load(TABLES)],
    [op.i64Xor, op.set(C)],
    [op.get(P), op.i32Const(1), op.i32Add, op.set(P)],
    [op.get(N), op.i32Const(1), op.i32Sub, op.set(N)],
    [op.br(0), op.end, op.end],
    [op.i32Const(0), op.get(C), op.i64Store(CRC)],
  ].flat(2);
  return {
    locals: [
      [1, 0x7f],
      [1, 0x7e],
    ],
    code,
  };
}

/** The slice of the WebAssembly JS API used here (Node's type definitions do not declare it; lib "DOM" would bring a browser's globals with it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | undefined;

interface Engine {
  blocks(n: number): void;
  crcBytes(n: number): void;
  mem: Uint8Array;
  view: DataView;
}

let tables: Uint8Array | undefined;

/** Idle engines, reused: an instance is 128 KiB of memory and 16 KiB of tables to fill. */
const idle: Engine[] = [];
const MAX_IDLE = 16;

function engine(): Engine {
  const reused = idle.pop();
  if (reused) return reused;
  compiled ??= new wasm.Module(buildModule());
  tables ??= new Uint8Array(crcTables().buffer);
  const instance = new wasm.Instance(compiled);
  const memory = instance.exports['memory'] as { buffer: ArrayBuffer };
  const mem = new Uint8Array(memory.buffer);
  mem.set(tables, TABLES);
  return {
    blocks: instance.exports['blocks'] as (n: number) => void,
    crcBytes: instance.exports['crcBytes'] as (n: number) => void,
    mem,
    view: new DataView(memory.buffer),
  };
}

const WHOLE = 0;
const SEGMENT = 1;

/** What a segment was: its MD5 and its CRC-64/XZ as an unsigned decimal string (the form of crc64.ts and OSS headers). */
export interface SegmentDigest {
  md5: Buffer;
  crc64: string;
}

export class SegmentHasher {
  #engine: Engine | undefined;
  /** Bytes at DATA not yet hashed (< 64 between calls). */
  #pending = 0;
  #total = 0;
  #segment = 0;
  /** Set when a segment ended off a block boundary: a next one could not share blocks with the whole stream. */
  #unaligned = false;

  constructor() {
    const e = engine();
    this.#engine = e;
    for (let w = 0; w < 4; w++) {
      for (let lane = 0; lane < 4; lane++) e.view.setUint32(16 * w + 4 * lane, INIT[w]!, true);
    }
    e.view.setBigUint64(CRC, ALL_ONES, true);
  }

  #live(): Engine {
    if (!this.#engine) throw new Error('SegmentHasher used after digestWhole()');
    return this.#engine;
  }

  /** Feed the next bytes of the stream (and of the current segment). */
  update(chunk: Uint8Array): this {
    const e = this.#live();
    if (this.#unaligned && chunk.length > 0) throw new Error('SegmentHasher: a segment ended off a 64-byte boundary, so no more bytes can follow');
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(CHUNK - this.#pending, chunk.length - offset);
      e.mem.set(chunk.subarray(offset, offset + take), DATA + this.#pending);
      this.#pending += take;
      offset += take;
      const blocks = this.#pending >>> 6;
      if (blocks > 0) {
        e.blocks(blocks);
        const rest = this.#pending & 63;
        if (rest > 0) e.mem.copyWithin(DATA, DATA + blocks * 64, DATA + this.#pending);
        this.#pending = rest;
      }
    }
    this.#total += chunk.length;
    this.#segment += chunk.length;
    return this;
  }

  /**
   * MD5 and CRC-64 of the bytes since the previous segment ended (or the
   * start); the next segment starts here. A segment must end a multiple of 64
   * bytes from the start of the stream unless it is the last.
   */
  endSegment(): SegmentDigest {
    const e = this.#live();
    const md5 = this.#finish(SEGMENT, this.#segment);
    if (this.#pending > 0) {
      // The segment's tail, shorter than a block (the stream's last bytes): the CRC has not seen it yet.
      e.crcBytes(this.#pending);
      this.#unaligned = true;
    }
    const crc64 = (e.view.getBigUint64(CRC, true) ^ ALL_ONES).toString(10);
    e.view.setBigUint64(CRC, ALL_ONES, true);
    for (let w = 0; w < 4; w++) e.view.setUint32(16 * w + 4 * SEGMENT, INIT[w]!, true);
    this.#segment = 0;
    return { md5, crc64 };
  }

  /** MD5 of everything fed. Ends the hasher. */
  digestWhole(): Buffer {
    const digest = this.#finish(WHOLE, this.#total);
    this.end();
    return digest;
  }

  /** End the hasher without the whole stream's MD5 (its engine goes back to the pool). One abandoned instead is garbage-collected. */
  end(): void {
    const e = this.#live();
    this.#engine = undefined;
    if (idle.length < MAX_IDLE) idle.push(e);
  }

  /** Pad a copy of the state for `lane` (RFC 1321 §3.1–3.2) and read that lane's digest; the running state (and the CRC) are left as they were. */
  #finish(lane: number, length: number): Buffer {
    const e = this.#live();
    const saved = e.mem.slice(0, STATE_BYTES);
    const pending = this.#pending;
    const blocks = pending < 56 ? 1 : 2;
    const end = DATA + blocks * 64;
    e.mem.fill(0, DATA + pending, end);
    e.mem[DATA + pending] = 0x80;
    e.view.setUint32(end - 8, (length * 8) >>> 0, true);
    e.view.setUint32(end - 4, Math.floor(length / 2 ** 29), true);
    e.blocks(blocks);
    const digest = Buffer.allocUnsafe(16);
    for (let w = 0; w < 4; w++) digest.writeUInt32LE(e.view.getUint32(16 * w + 4 * lane, true), 4 * w);
    e.mem.set(saved, 0);
    return digest;
  }
}
