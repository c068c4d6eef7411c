/**
 * One side's listing as a stream of pages, fetched ahead: a producer keeps up
 * to `readAhead` pages buffered while the merge-join and the comparison work
 * on earlier ones, so listing latency and comparing overlap. Memory is bounded
 * by readAhead × pageSize entries, whatever the bucket's size.
 *
 * The stream lists each normalised prefix in order (see scope.ts), so the keys
 * come out in one UTF-8 binary order; it checks that they do, and that each key
 * is inside the prefix asked for, and fails with KeyOrderError otherwise.
 */
import type { ListedObject, ListPage, ObjectStore } from '../storage/object-store.js';
import { StorageError } from '../storage/errors.js';
import { compareKeys, KeyOrderError } from './key-order.js';

export interface ListingOptions {
  side: 'source' | 'destination';
  /** Normalised prefixes (scope.ts); [""] lists the whole bucket. */
  prefixes: readonly string[];
  /** Keys per list request (the stores' maximum is 1000). */
  pageSize?: number;
  /** Pages kept buffered ahead of the consumer. */
  readAhead?: number;
  /** Resume point: only keys after this one. */
  startAfter?: string;
  /** Keys failing the filter are counted as listed but not passed on. */
  keyFilter?: (key: string) => boolean;
  /** Attempts for a page after a transient (retryable) storage error. */
  retries?: number;
  retryDelayMs?: number;
}

export const DEFAULT_PAGE_SIZE = 1000;
export const DEFAULT_READ_AHEAD = 4;

function quote(key: string): string {
  return JSON.stringify(key);
}

export class ListingStream {
  /** Keys the store returned (before the key filter). */
  listed = 0;
  /** List requests made. */
  requests = 0;
  private readonly buffer: ListedObject[][] = [];
  private started = false;
  private finished = false;
  private closed = false;
  private failure: unknown;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;
  private readonly pageSize: number;
  private readonly readAhead: number;

  constructor(
    private readonly store: Pick<ObjectStore, 'listPage' | 'bucket'>,
    private readonly options: ListingOptions,
  ) {
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.readAhead = Math.max(1, options.readAhead ?? DEFAULT_READ_AHEAD);
  }

  /** Begin fetching (next() starts it too); both sides are started at once so they list in parallel. */
  start(): void {
    if (this.started) return;
    this.started = true;
    void this.produce();
  }

  /** The next non-empty page, or undefined when the listing is done. */
  async next(): Promise<ListedObject[] | undefined> {
    this.start();
    for (;;) {
      const page = this.buffer.shift();
      if (page) {
        this.wake('producer');
        return page;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.finished) return undefined;
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
    }
  }

  /** Stop fetching (the scan ended early). */
  close(): void {
    this.closed = true;
    this.buffer.length = 0;
    this.wake('producer');
  }

  private wake(who: 'consumer' | 'producer'): void {
    const fn = who === 'consumer' ? this.wakeConsumer : this.wakeProducer;
    if (who === 'consumer') this.wakeConsumer = undefined;
    else this.wakeProducer = undefined;
    fn?.();
  }

  private async fetch(request: { prefix?: string; startAfter?: string; token?: string; maxKeys: number }): Promise<ListPage> {
    const retries = this.options.retries ?? 4;
    const delay = this.options.retryDelayMs ?? 500;
    for (let attempt = 0; ; attempt++) {
      try {
        this.requests++;
        return await this.store.listPage(request);
      } catch (err) {
        if (!(err instanceof StorageError) || !err.retryable || attempt >= retries || this.closed) throw err;
        await new Promise((r) => setTimeout(r, delay * 2 ** attempt * (0.5 + Math.random() / 2)));
      }
    }
  }

  private async produce(): Promise<void> {
    const { side, startAfter, keyFilter } = this.options;
    let last = startAfter;
    try {
      for (const prefix of this.options.prefixes) {
        let from: string | undefined;
        if (startAfter !== undefined) {
          if (startAfter.startsWith(prefix)) from = startAfter;
          else if (compareKeys(prefix, startAfter) < 0) continue; // every key under it sorts before the resume point
        }
        let token: string | undefined;
        let first = true;
        do {
          if (this.closed) return;
          const page = await this.fetch({
            ...(prefix !== '' ? { prefix } : {}),
            ...(first && from !== undefined ? { startAfter: from } : {}),
            ...(token !== undefined ? { token } : {}),
            maxKeys: this.pageSize,
          });
          first = false;
          for (const o of page.objects) {
            if (!o.key.startsWith(prefix)) {
              throw new KeyOrderError(side, `${side} listing of bucket ${this.store.bucket} returned key ${quote(o.key)} for prefix ${quote(prefix)}`);
            }
            if (last !== undefined && compareKeys(o.key, last) <= 0) {
              throw new KeyOrderError(
                side,
                `${side} listing of bucket ${this.store.bucket} returned ${quote(o.key)} after ${quote(last)}: keys are not in UTF-8 binary order, so the scan cannot compare the two sides; no further differences were queued`,
              );
            }
            last = o.key;
          }
          this.listed += page.objects.length;
          const kept = keyFilter ? page.objects.filter((o) => keyFilter(o.key)) : page.objects;
          if (kept.length > 0) {
            this.buffer.push(kept);
            this.wake('consumer');
            while (this.buffer.length >= this.readAhead && !this.closed) {
              await new Promise<void>((resolve) => (this.wakeProducer = resolve));
            }
          }
          token = page.nextToken;
        } while (token !== undefined);
      }
    } catch (err) {
      this.failure = err;
    } finally {
      this.finished = true;
      this.wake('consumer');
    }
  }
}
