/**
 * Reads one object version front to back through a single GET, the way a
 * multipart copy consumes it: part after part, each part's bytes handed over
 * as they arrive (so they are hashed while still in cache) and copied into the
 * part's buffer.
 *
 * Why one stream instead of a ranged GET per part: the reading never stops
 * while parts upload (the next part fills while earlier ones are sent), a
 * new object's bytes come from the GET that already opened it for its head,
 * and the source serves one request per object instead of one per part —
 * on a source and copier that share CPUs that is throughput (bench/README.md,
 * "## Copy"). One GET also reads one consistent version.
 *
 * A stream that fails (reset, timeout — including a socket that idled out
 * while every upload slot was busy) is re-opened with a ranged GET from the
 * first byte not yet delivered, with If-Match on the ETag seen at HEAD: the
 * bytes after the break are of the same version, or the re-open fails with
 * PreconditionFailed and the attempt is queued again (the source changed
 * mid-copy). A stream that keeps failing without real progress in between (a
 * MiB) fails the attempt after `maxReopens` re-opens: a source that breaks
 * every few bytes must not turn one copy into millions of requests.
 */
import type { Readable } from 'node:stream';
import { StorageError } from '../storage/errors.js';
import { fillsBuffers, type BufferFillingBody, type ObjectStore } from '../storage/object-store.js';
import { IntegrityError } from './integrity-error.js';

export interface SequentialSourceOptions {
  store: ObjectStore;
  key: string;
  /** ETag of the version being copied (If-Match of every GET this reader opens). */
  etag: string;
  size: number;
  /** The whole-object GET that already opened the object (its head is `etag`), if any. */
  opened?: Readable;
  /** Re-opens in a row without `minProgressBytes` delivered in between before the attempt fails. Default 3. */
  maxReopens?: number;
  /** Bytes a stream must deliver for its failure not to count against `maxReopens`. Default 1 MiB. */
  minProgressBytes?: number;
  /** Told about every re-open (logging, tests). */
  onReopen?: (offset: number, err: unknown) => void;
}

export class SequentialSource {
  #stream: Readable | undefined;
  #chunks: AsyncIterator<unknown> | undefined;
  /** A body that fills our buffers itself (BufferFillingBody): read with readInto instead of #chunks. */
  #filling: BufferFillingBody | undefined;
  #leftover: Buffer | undefined;
  #offset = 0;
  #failuresInRow = 0;
  #sinceOpen = 0;
  readonly #options: SequentialSourceOptions;

  constructor(options: SequentialSourceOptions) {
    this.#options = options;
    if (options.opened) this.#attach(options.opened);
  }

  /**
   * Fill `buf` with the next `buf.length` bytes, giving each piece to `sink`
   * as it lands (in order, exactly once, whatever re-opens happen).
   */
  async read(buf: Buffer, sink: (piece: Buffer) => void): Promise<void> {
    let filled = 0;
    while (filled < buf.length) {
      if (this.#filling) {
        filled += await this.#readFilling(buf.subarray(filled), sink);
        continue;
      }
      let chunk: Buffer;
      if (this.#leftover) {
        chunk = this.#leftover;
        this.#leftover = undefined;
      } else {
        const next = await this.#next();
        if (next === undefined) continue; // re-opened: read again
        chunk = next;
      }
      const take = Math.min(chunk.length, buf.length - filled);
      const piece = take === chunk.length ? chunk : chunk.subarray(0, take);
      piece.copy(buf, filled);
      sink(piece);
      if (take < chunk.length) this.#leftover = chunk.subarray(take);
      filled += take;
      this.#offset += take;
      this.#sinceOpen += take;
    }
  }

  /** After the last byte: the source must have nothing more to say. Releases the stream. */
  async finish(): Promise<void> {
    try {
      if (this.#offset !== this.#options.size) throw new Error(`finish() at ${this.#offset} of ${this.#options.size} bytes`);
      const more = this.#filling
        ? (await this.#filling.readInto(Buffer.allocUnsafe(1), () => {})) > 0
        : this.#leftover !== undefined || (this.#chunks !== undefined && (await this.#chunks.next()).done !== true);
      if (more) {
        throw new IntegrityError('source', `source returned more than the expected ${this.#options.size} bytes`);
      }
    } finally {
      this.close();
    }
  }

  /** Release the stream (idempotent; also used when the attempt fails). */
  close(): void {
    this.#stream?.destroy();
    this.#stream = undefined;
    this.#chunks = undefined;
    this.#filling = undefined;
    this.#leftover = undefined;
  }

  #attach(stream: Readable): void {
    // Until the first read, no iterator listens: an error meanwhile (a reset while the upload is being
    // created) must wait in the stream for that read, not crash the process as an unhandled 'error' event.
    stream.on('error', () => {});
    this.#stream = stream;
    // No iterator on a body read with readInto: it would start reading it as a stream.
    if (fillsBuffers(stream)) this.#filling = stream;
    else this.#chunks = stream[Symbol.asyncIterator]();
    this.#sinceOpen = 0;
  }

  /**
   * Fill `target` from a BufferFillingBody (no copy: the socket reads into
   * it); returns the bytes delivered, also when the stream broke part way and
   * was re-opened (the caller reads on from there).
   */
  async #readFilling(target: Buffer, sink: (piece: Buffer) => void): Promise<number> {
    let delivered = 0;
    let n: number;
    try {
      n = await this.#filling!.readInto(target, (piece) => {
        delivered += piece.length;
        this.#offset += piece.length;
        this.#sinceOpen += piece.length;
        sink(piece);
      });
    } catch (err) {
      await this.#reopenAfter(err);
      return delivered;
    }
    if (n < target.length) await this.#reopenAfter(this.#endedEarly());
    return delivered;
  }

  /** The next chunk, or undefined after the stream was (re-)opened (the caller reads again). */
  async #next(): Promise<Buffer | undefined> {
    if (!this.#chunks) {
      await this.#openRetrying(undefined);
      return undefined;
    }
    let result: IteratorResult<unknown>;
    try {
      result = await this.#chunks.next();
    } catch (err) {
      await this.#reopenAfter(err);
      return undefined;
    }
    if (result.done) {
      await this.#reopenAfter(this.#endedEarly());
      return undefined;
    }
    return result.value as Buffer;
  }

  /** The stream broke with `err`: a permanent error ends the read, anything else re-opens it from the offset reached. */
  async #reopenAfter(err: unknown): Promise<void> {
    if (err instanceof StorageError && !err.retryable) throw err;
    this.close();
    await this.#openRetrying(err);
  }

  /** Ended before the object did: a connection closed cleanly but early. The rest is read again (IntegrityMismatch is retryable). */
  #endedEarly(): IntegrityError {
    return new IntegrityError('source', `source stream ended at byte ${this.#offset} of ${this.#options.size}`);
  }

  /**
   * Open the stream at the current offset: the first time (`broken`
   * undefined), or again after the stream failed with `broken`. Each failure —
   * the stream's, or a transient one of an open itself — counts against
   * `maxReopens`, unless the stream delivered `minProgressBytes` first.
   */
  async #openRetrying(broken: unknown): Promise<void> {
    let err = broken;
    if (err !== undefined && this.#sinceOpen >= (this.#options.minProgressBytes ?? 1024 * 1024)) this.#failuresInRow = 0;
    for (;;) {
      if (err !== undefined) {
        this.#failuresInRow++;
        if (this.#failuresInRow > (this.#options.maxReopens ?? 3)) {
          if (err instanceof StorageError) throw err;
          throw new StorageError('NetworkError', `reading the source failed: ${(err as Error).message}`, undefined, undefined, { cause: err });
        }
        this.#options.onReopen?.(this.#offset, err);
      }
      try {
        await this.#open();
        return;
      } catch (e) {
        // The source changed (PreconditionFailed), is gone, or refuses: that ends the attempt.
        if (!(e instanceof StorageError) || !e.retryable || e.code === 'PreconditionFailed') throw e;
        err = e;
      }
    }
  }

  /** GET from the current offset, If-Match the version being copied. */
  async #open(): Promise<void> {
    const { store, key, etag, size } = this.#options;
    const range = this.#offset > 0 ? { range: { start: this.#offset, end: size - 1 } } : {};
    this.#attach(await store.get(key, { ...range, ifMatch: etag }));
  }
}
