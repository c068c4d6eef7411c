/**
 * A process-wide cap on bytes buffered for uploads. Every upload unit (a small
 * object or one part) is held in memory so it can be hashed and sent with
 * Content-MD5; this budget is what keeps many concurrent copies from adding
 * up to unbounded RSS.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(readonly limit: number) {}

  /** Wait until `n` bytes fit. A request larger than the limit runs alone. */
  async acquire(n: number): Promise<() => void> {
    if (this.fits(n) && this.waiters.length === 0) {
      this.used += n;
    } else {
      await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= n;
      this.drain();
    };
  }

  get inUse(): number {
    return this.used;
  }

  private fits(n: number): boolean {
    return this.used === 0 || this.used + n <= this.limit;
  }

  private drain(): void {
    // FIFO: a large waiter is not starved by a stream of small ones.
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.n)) {
      const w = this.waiters.shift()!;
      this.used += w.n;
      w.resolve();
    }
  }
}

/** A counting semaphore (per-task copy cap, part concurrency). */
export class Semaphore {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly max: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((r) => this.queue.push(r)); // the releasing holder hands its slot over
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Recycles the large buffers that hold upload units. A fresh multi-MiB
 * buffer costs a page fault per 4 KiB on first touch (plus the kernel zeroing
 * it) and garbage-collection pressure later; a copy that reuses the buffers of
 * its finished parts pays neither. Small objects matter too: each 64 KiB unit
 * is an allocation outside V8's heap, and 2,000 of them drive V8 into extra
 * collections (0.3 ms per object of the copier's CPU in the copy bench's
 * profile). Buffers are pooled by capacity: a size under a MiB rounded up to a
 * power of two (so a unit never wastes more than half its buffer), a larger one
 * to a whole MiB; units under `minBytes` are plain allocations (Node's own slab
 * serves those), and at most `maxPooledBytes` are kept idle.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooled = 0;

  constructor(
    private readonly maxPooledBytes: number,
    private readonly minBytes = 16 * 1024,
  ) {}

  static capacityFor(size: number): number {
    const mib = 1024 * 1024;
    if (size <= mib) return 2 ** Math.ceil(Math.log2(Math.max(size, 1)));
    return Math.ceil(size / mib) * mib;
  }

  /** A buffer of exactly `size` bytes (contents undefined). Give it back with release(). */
  take(size: number): Buffer {
    if (size < this.minBytes) return Buffer.allocUnsafe(size);
    const capacity = BufferPool.capacityFor(size);
    const list = this.free.get(capacity);
    const buf = list?.pop();
    if (buf) {
      this.pooled -= capacity;
      return buf.subarray(0, size);
    }
    return Buffer.allocUnsafeSlow(capacity).subarray(0, size);
  }

  /** Return a buffer from take() once nothing reads it any more. */
  release(buf: Buffer): void {
    if (buf.length < this.minBytes) return;
    const backing = Buffer.from(buf.buffer, buf.byteOffset, buf.buffer.byteLength - buf.byteOffset);
    const capacity = backing.length;
    if (capacity !== BufferPool.capacityFor(buf.length) || this.pooled + capacity > this.maxPooledBytes) return;
    let list = this.free.get(capacity);
    if (!list) {
      list = [];
      this.free.set(capacity, list);
    }
    list.push(backing);
    this.pooled += capacity;
  }

  get idleBytes(): number {
    return this.pooled;
  }

  /** Drop every idle buffer (lets the memory go back to the system). */
  clear(): void {
    this.free.clear();
    this.pooled = 0;
  }
}
