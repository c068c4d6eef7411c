/**
 * An in-memory ObjectStore view (listPage + head) over a fixed set of objects,
 * for scan unit tests: lists in UTF-8 binary order (or in whatever order it was
 * given, with `keepOrder`, to test the scan's order check), counts requests.
 */
import type { ListedObject, ListPage, ObjectHead } from '../../src/storage/object-store.js';
import { compareKeysByBytes } from '../../src/scan/key-order.js';

export interface FakeObject {
  key: string;
  size: number;
  etag: string;
  meta?: Record<string, string>;
  crc64?: string;
}

export class FakeLister {
  readonly provider = 's3' as const;
  listCalls = 0;
  headCalls = 0;
  readonly objects: FakeObject[];

  constructor(
    readonly bucket: string,
    objects: FakeObject[],
    options: { keepOrder?: boolean } = {},
  ) {
    this.objects = options.keepOrder ? [...objects] : [...objects].sort((a, b) => compareKeysByBytes(a.key, b.key));
  }

  async listPage(o: { prefix?: string; startAfter?: string; token?: string; maxKeys?: number }): Promise<ListPage> {
    this.listCalls++;
    const prefix = o.prefix ?? '';
    let start = o.token !== undefined ? Number(o.token) : 0;
    if (o.token === undefined && o.startAfter !== undefined) {
      while (start < this.objects.length && compareKeysByBytes(this.objects[start]!.key, o.startAfter) <= 0) start++;
    }
    const max = o.maxKeys ?? 1000;
    const out: ListedObject[] = [];
    let i = start;
    for (; i < this.objects.length && out.length < max; i++) {
      const obj = this.objects[i]!;
      if (!obj.key.startsWith(prefix)) continue;
      out.push({ key: obj.key, size: obj.size, etag: obj.etag, lastModified: new Date(0), storageClass: 'STANDARD' });
    }
    const more = this.objects.slice(i).some((x) => x.key.startsWith(prefix));
    return more ? { objects: out, nextToken: String(i) } : { objects: out };
  }

  async head(key: string): Promise<ObjectHead | null> {
    this.headCalls++;
    const obj = this.objects.find((x) => x.key === key);
    if (!obj) return null;
    return {
      key,
      size: obj.size,
      etag: obj.etag,
      lastModified: new Date(0),
      userMetadata: obj.meta ?? {},
      storageClass: 'STANDARD',
      multipartEtag: !/^[0-9a-f]{32}$/i.test(obj.etag),
      needsRestore: false,
      restoreInProgress: false,
      ...(obj.crc64 ? { crc64: obj.crc64 } : {}),
    };
  }
}
