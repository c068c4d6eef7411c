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
