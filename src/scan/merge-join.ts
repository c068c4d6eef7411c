/**
 * Merge-join of two key-ordered listings: walks both streams once, in step,
 * and emits every key with what each side has for it. Only the current page of
 * each side and one chunk of output are held, so memory does not depend on the
 * number of keys.
 */
import type { ListedObject } from '../storage/object-store.js';
import { compareKeys } from './key-order.js';

export interface KeyPair {
  key: string;
  source?: ListedObject;
  destination?: ListedObject;
}

export interface PageSource {
  next(): Promise<ListedObject[] | undefined>;
}

/** Yields pairs in key order, `chunkSize` at a time (the last chunk may be shorter). */
export async function* mergeJoin(source: PageSource, destination: PageSource, chunkSize = 1000): AsyncGenerator<KeyPair[]> {
  let sp = await source.next();
  let dp = await destination.next();
  let si = 0;
  let di = 0;
  let out: KeyPair[] = [];
  for (;;) {
    if (sp && si >= sp.length) {
      sp = await source.next();
      si = 0;
      continue;
    }
    if (dp && di >= dp.length) {
      dp = await destination.next();
      di = 0;
      continue;
    }
    const s = sp?.[si];
    const d = dp?.[di];
    if (!s && !d) break;
    const c = !s ? 1 : !d ? -1 : compareKeys(s.key, d.key);
    if (c < 0) {
      out.push({ key: s!.key, source: s! });
      si++;
    } else if (c > 0) {
      out.push({ key: d!.key, destination: d! });
      di++;
    } else {
      out.push({ key: s!.key, source: s!, destination: d! });
      si++;
      di++;
    }
    if (out.length >= chunkSize) {
      yield out;
      out = [];
    }
  }
  if (out.length > 0) yield out;
}
