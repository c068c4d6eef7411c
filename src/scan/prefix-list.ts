/**
 * A prefix-list object (as AWS Data Transfer Hub's prefix-list file): one
 * prefix per line, UTF-8, "\n" or "\r\n" line ends, blank lines ignored.
 * Lines are not trimmed otherwise — keys may end in spaces. The list is held
 * in memory while the scan runs, so its size is capped.
 */
import type { ObjectStore } from '../storage/object-store.js';
import { MAX_PREFIXES } from './scope.js';

export const MAX_PREFIX_LIST_BYTES = 8 * 1024 * 1024;

export class PrefixListError extends Error {
  override readonly name = 'PrefixListError';
}

export async function readPrefixList(store: ObjectStore, key: string, maxBytes = MAX_PREFIX_LIST_BYTES): Promise<string[]> {
  const head = await store.head(key);
  if (!head) throw new PrefixListError(`prefix list ${store.bucket}/${key} does not exist`);
  if (head.size > maxBytes) throw new PrefixListError(`prefix list ${store.bucket}/${key} is ${head.size} bytes; the limit is ${maxBytes}`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of await store.get(key, { ifMatch: head.etag })) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > maxBytes) throw new PrefixListError(`prefix list ${store.bucket}/${key} is larger than ${maxBytes} bytes`);
    chunks.push(buf);
  }
  const text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false }).decode(Buffer.concat(chunks));
  const prefixes = text
    .split('\n')
    .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line))
    .filter((line) => line.length > 0);
  if (prefixes.length > MAX_PREFIXES) {
    throw new PrefixListError(`prefix list ${store.bucket}/${key} has ${prefixes.length} lines; the limit is ${MAX_PREFIXES}`);
  }
  return prefixes;
}
