/**
 * The scan itself, free of the database and the queue so the benchmark can run
 * it over a synthetic lister: two read-ahead listings → merge-join → compare a
 * chunk → hand differences to the sink in batches. Counters are updated in
 * place, so a progress timer can read them while the scan runs.
 *
 * `position` is the resume point: every key up to it has been compared and its
 * differences handed to the sink (committed). It advances only when nothing
 * is pending, so resuming from it never loses a difference.
 */
import type { CompareMode } from '../config/types.js';
import type { ObjectStore } from '../storage/object-store.js';
import { compareChunk, type Difference, type StatusLookup } from './compare.js';
import { ListingStream, DEFAULT_PAGE_SIZE, DEFAULT_READ_AHEAD } from './listing.js';
import { mergeJoin } from './merge-join.js';
import type { ScanCounters } from './scan-repo.js';
import type { ResolvedScope } from './scope.js';

export interface PipelineOptions {
  /** Keys per list request. */
  pageSize: number;
  /** Pages buffered ahead per side. */
  readAhead: number;
  /** Keys compared per chunk (one status query per chunk). */
  chunkSize: number;
  /** HEAD requests in flight at once. */
  headConcurrency: number;
  /** Jobs per enqueue transaction. */
  enqueueBatch: number;
  /** Pending differences are flushed at least this often. */
  flushIntervalMs: number;
}

export const DEFAULT_PIPELINE_OPTIONS: PipelineOptions = {
  pageSize: DEFAULT_PAGE_SIZE,
  readAhead: DEFAULT_READ_AHEAD,
  chunkSize: 1000,
  headConcurrency: 16,
  enqueueBatch: 500,
  flushIntervalMs: 1000,
};

export type StoreView = Pick<ObjectStore, 'listPage' | 'head' | 'bucket'>;

export interface PipelineInput {
  source: StoreView;
  destination: StoreView;
  scope: ResolvedScope;
  compare: CompareMode;
  /** Destination-only keys are queued (as deletes) only when true; they are counted either way. */
  deletes: boolean;
  statuses?: StatusLookup;
  /** Don't re-queue archived sources already recorded as archived (the task does not restore them). */
  skipKnownArchived?: boolean;
  /** The task encrypts replicas client-side for the public key with this fingerprint (scan/compare.ts). */
  cseKeyId?: string;
  /** Queue these differences; resolves with how many were new and how many were already queued. */
  sink: (differences: Difference[]) => Promise<{ queued: number; alreadyQueued: number }>;
  /** Updated in place; start from a resumed scan's counters. */
  counters: ScanCounters;
  /** Resume after this key. */
  startAfter?: string;
  /** Checked between chunks: a reason to stop, or undefined to go on. */
  shouldStop: () => 'cancelled' | 'shutdown' | undefined;
  /**
   * Called whenever `position` advances, with the counters as of that point:
   * saving the two together makes a resumed scan count every key once.
   */
  onPosition?: (position: string, counters: ScanCounters) => void;
  options?: Partial<PipelineOptions>;
}

export interface PipelineResult {
  /** Why it stopped early; undefined when both listings were read to the end. */
  stopped?: 'cancelled' | 'shutdown';
  position: string | null;
}

export async function runPipeline(input: PipelineInput): Promise<PipelineResult> {
  const o = { ...DEFAULT_PIPELINE_OPTIONS, ...input.options };
  const { counters } = input;
  const baseRequests = counters.listRequests;
  const listingOptions = {
    prefixes: input.scope.prefixes,
    pageSize: o.pageSize,
    readAhead: o.readAhead,
    ...(input.startAfter !== undefined ? { startAfter: input.startAfter } : {}),
    ...(input.scope.keyFilter ? { keyFilter: input.scope.keyFilter } : {}),
  };
  const source = new ListingStream(input.source, { ...listingOptions, side: 'source' });
  const destination = new ListingStream(input.destination, { ...listingOptions, side: 'destination' });
  const syncListed = () => {
    counters.listRequests = baseRequests + source.requests + destination.requests;
  };
  let position: string | null = input.startAfter ?? null;
  let lastProcessed: string | null = position;
  const commit = () => {
    if (pending.length > 0 || lastProcessed === null || lastProcessed === position) return;
    position = lastProcessed;
    syncListed();
    input.onPosition?.(position, { ...counters });
  };
  let pending: Difference[] = [];
  let lastFlush = Date.now();
  const flush = async () => {
    while (pending.length > 0) {
      const batch = pending.slice(0, o.enqueueBatch);
      const r = await input.sink(batch);
      counters.jobsQueued += r.queued;
      counters.jobsAlreadyQueued += r.alreadyQueued;
      pending = pending.slice(batch.length);
    }
    lastFlush = Date.now();
  };
  const ctx = {
    mode: input.compare,
    source: input.source,
    destination: input.destination,
    headConcurrency: o.headConcurrency,
    ...(input.statuses ? { statuses: input.statuses } : {}),
    ...(input.scope.objectFilter ? { objectFilter: input.scope.objectFilter } : {}),
    ...(input.skipKnownArchived ? { skipKnownArchived: true } : {}),
    ...(input.cseKeyId !== undefined ? { cseKeyId: input.cseKeyId } : {}),
  };
  source.start();
  destination.start();
  try {
    for await (const chunk of mergeJoin(source, destination, o.chunkSize)) {
      const stop = input.shouldStop();
      if (stop) {
        if (stop === 'shutdown') {
          await flush();
          commit();
        }
        return { stopped: stop, position };
      }
      const r = await compareChunk(chunk, ctx);
      // Keys in scope per side, counted as they are compared (exact across a resume, unlike pages fetched ahead).
      for (const p of chunk) {
        if (p.source) counters.sourceKeys++;
        if (p.destination) counters.destinationKeys++;
      }
      counters.compared += r.compared;
      counters.filtered += r.filtered;
      counters.sameByStatus += r.sameByStatus;
      counters.sameByEtag += r.sameByEtag;
      counters.sameByHead += r.sameByHead;
      counters.heads += r.heads;
      counters.archived += r.archived;
      for (const d of r.differences) {
        switch (d.kind) {
          case 'missing':
            counters.missing++;
            break;
          case 'size':
            counters.sizeDiffers++;
            break;
          case 'content':
            counters.contentDiffers++;
            break;
          case 'extra':
            counters.extra++;
            break;
          case 'uncompared':
            counters.uncompared++;
            break;
        }
        if (d.kind !== 'extra' || input.deletes) pending.push(d);
      }
      syncListed();
      if (pending.length >= o.enqueueBatch || (pending.length > 0 && Date.now() - lastFlush >= o.flushIntervalMs)) await flush();
      lastProcessed = chunk[chunk.length - 1]!.key;
      commit();
    }
    const stop = input.shouldStop();
    if (stop === 'cancelled') return { stopped: stop, position };
    await flush();
    commit();
    return { position };
  } finally {
    source.close();
    destination.close();
    syncListed();
  }
}
