/**
 * Applying a task's `options.limits` to its storage traffic through the shared
 * PostgreSQL token bucket (token-bucket.ts):
 *  - requestsPerSecond: one token per storage request, on both sides;
 *  - bytesPerSecond: object bytes as they are READ from the source. A copy
 *    reads every byte once and writes it once, so pacing the reads paces the
 *    transfer; the read stream applies backpressure, so memory stays bounded.
 *
 * `throttledStore` wraps an ObjectStore so the replication engine needs no
 * knowledge of limits: wrap the task's source with bytes counted, the
 * destination without, both sharing one TaskLimiter.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { LimitsConfig } from '../config/types.js';
import type {
  GetOptions,
  HeadOptions,
  ListPage,
  ObjectHead,
  ObjectStore,
  OpenedObject,
  PartInfo,
  PutOptions,
  WriteResult,
} from '../storage/object-store.js';
import { quantumFor, type PgTokenBucket } from './token-bucket.js';

export class TaskLimiter {
  constructor(
    private readonly bucket: PgTokenBucket,
    readonly taskId: string,
    readonly limits: LimitsConfig,
  ) {}

  get limitsBytes(): boolean {
    return this.limits.bytesPerSecond !== undefined;
  }

  /** Wait for one request token (no-op without requestsPerSecond). */
  async request(signal?: AbortSignal): Promise<void> {
    const rate = this.limits.requestsPerSecond;
    if (rate === undefined) return;
    await this.bucket.take(this.taskId, 'requests', rate, 1, signal);
  }

  /** Wait for `n` byte tokens (no-op without bytesPerSecond). */
  async bytes(n: number, signal?: AbortSignal): Promise<void> {
    const rate = this.limits.bytesPerSecond;
    if (rate === undefined || n <= 0) return;
    await this.bucket.take(this.taskId, 'bytes', rate, n, signal);
  }

  async refundBytes(n: number): Promise<void> {
    if (this.limits.bytesPerSecond === undefined) return;
    await this.bucket.refund(this.taskId, 'bytes', n);
  }

  /** `stream` paced at bytesPerSecond (the stream itself without a byte limit). */
  throttle(stream: Readable): Readable {
    const rate = this.limits.bytesPerSecond;
    if (rate === undefined) return stream;
    const paced = new PacedStream(this, quantumFor('bytes', rate));
    // Errors of the source reach the consumer; destroying the consumer releases the source.
    stream.on('error', (err) => paced.destroy(err));
    paced.on('close', () => {
      if (!stream.destroyed && !stream.readableEnded) stream.destroy();
    });
    return stream.pipe(paced);
  }
}

/**
 * Passes chunks on once byte tokens for them are granted; reserves whole
 * quanta and gives back what it did not use when it ends or is destroyed.
 */
class PacedStream extends Transform {
  #credit = 0;
  readonly #abort = new AbortController();

  constructor(
    private readonly limiter: TaskLimiter,
    private readonly quantum: number,
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const need = chunk.length - this.#credit;
    if (need <= 0) {
      this.#credit -= chunk.length;
      done(null, chunk);
      return;
    }
    const take = Math.ceil(need / this.quantum) * this.quantum;
    this.limiter.bytes(take, this.#abort.signal).then(
      () => {
        this.#credit += take - chunk.length;
        done(null, chunk);
      },
      (err: unknown) => done(err as Error),
    );
  }

  override _flush(done: TransformCallback): void {
    this.#giveBack();
    done();
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.#abort.abort(err ?? new Error('stream destroyed'));
    this.#giveBack();
    done(err);
  }

  #giveBack(): void {
    const credit = this.#credit;
    this.#credit = 0;
    if (credit > 0) void this.limiter.refundBytes(credit).catch(() => {});
  }
}

/**
 * `store` with every request paced by `limiter`, and (countBytes) every GET
 * body paced at the byte rate.
 */
export function throttledStore(store: ObjectStore, limiter: TaskLimiter, options: { countBytes: boolean }): ObjectStore {
  const gate = <T>(run: () => Promise<T>): Promise<T> => limiter.request().then(run);
  return {
    provider: store.provider,
    bucket: store.bucket,
    head: (key: string, o?: HeadOptions): Promise<ObjectHead | null> => gate(() => store.head(key, o)),
    get: async (key: string, o?: GetOptions): Promise<Readable> => {
      const body = await gate(() => store.get(key, o));
      return options.countBytes ? limiter.throttle(body) : body;
    },
    ...(store.open
      ? {
          open: async (key: string, o?: HeadOptions): Promise<OpenedObject | null> => {
            const opened = await gate(() => store.open!(key, o));
            return opened && options.countBytes ? { head: opened.head, body: limiter.throttle(opened.body) } : opened;
          },
        }
      : {}),
    put: (key: string, body: Readable | Buffer, size: number, o?: PutOptions): Promise<WriteResult> => gate(() => store.put(key, body, size, o)),
    createMultipartUpload: (key: string, o?: PutOptions): Promise<string> => gate(() => store.createMultipartUpload(key, o)),
    uploadPart: (key, uploadId, partNumber, body, o): Promise<WriteResult> => gate(() => store.uploadPart(key, uploadId, partNumber, body, o)),
    completeMultipartUpload: (key, uploadId, parts): Promise<WriteResult> => gate(() => store.completeMultipartUpload(key, uploadId, parts)),
    abortMultipartUpload: (key, uploadId): Promise<void> => gate(() => store.abortMultipartUpload(key, uploadId)),
    listParts: (key, uploadId): Promise<PartInfo[]> => gate(() => store.listParts(key, uploadId)),
    ...(store.headPart ? { headPart: (key: string, n: number, ifMatch: string) => gate(() => store.headPart!(key, n, ifMatch)) } : {}),
    ...(store.listMultipartUploads ? { listMultipartUploads: (key: string) => gate(() => store.listMultipartUploads!(key)) } : {}),
    delete: (key): Promise<void> => gate(() => store.delete(key)),
    listPage: (o): Promise<ListPage> => gate(() => store.listPage(o)),
    restore: (key, days): Promise<void> => gate(() => store.restore(key, days)),
    ...(store.payloadSha256Wanted ? { payloadSha256Wanted: () => store.payloadSha256Wanted!() } : {}),
    // Closing is local: it needs no token.
    close: (): Promise<void> => store.close(),
  };
}
