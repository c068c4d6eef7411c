/**
 * A synthetic bucket for bench/scan: `listPage` and `head` over N virtual keys
 * generated from their index, so the lister itself holds nothing per key and
 * the benchmark's memory is the scan's own.
 *
 *   key(i) = "data/" + i zero-padded to 9 digits   (byte order = index order)
 *
 * The destination differs from the source in fixed patterns (per 1,000 keys):
 * 10 missing, 4 of another size, 2 with an ETag that is not the source's
 * (1 equal by the fingerprint on HEAD, as an SSE-KMS copy would be, 1 with
 * different content), and 1 extra key that only the destination has.
 */

export const key = (i) => `data/${String(i).padStart(9, '0')}`;
const md5ish = (n) => n.toString(16).padStart(32, '0');
const EPOCH = new Date('2024-01-01T00:00:00Z');

export const destinationRules = {
  missing: (i) => i % 100 === 7,
  size: (i) => i % 250 === 11,
  fingerprinted: (i) => i % 1000 === 13,
  content: (i) => i % 1000 === 513,
  extra: (i) => i % 1000 === 3,
};

/** Expected differences for n keys. */
export function expected(n) {
  const out = { missing: 0, size: 0, content: 0, extra: 0 };
  for (let i = 0; i < n; i++) {
    if (destinationRules.missing(i)) out.missing++;
    else if (destinationRules.size(i)) out.size++;
    else if (destinationRules.content(i)) out.content++;
    if (destinationRules.extra(i)) out.extra++;
  }
  return out;
}

function sleep(ms) {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

export class SyntheticStore {
  /**
   * @param {'source'|'destination'} side
   * @param {number} n
   * @param {{ listLatencyMs?: number, headLatencyMs?: number }} [o]
   */
  constructor(side, n, o = {}) {
    this.provider = 's3';
    this.bucket = `bench-${side}`;
    this.side = side;
    this.n = n;
    this.listLatencyMs = o.listLatencyMs ?? 0;
    this.headLatencyMs = o.headLatencyMs ?? 0;
    this.listCalls = 0;
    this.headCalls = 0;
  }

  /** Entries of index i: [key(i)?, extra?] on this side. */
  #entries(i) {
    const out = [];
    const d = this.side === 'destination';
    if (!d || !destinationRules.missing(i)) {
      const size = d && destinationRules.size(i) ? 1025 : 1024;
      const etag = d && (destinationRules.fingerprinted(i) || destinationRules.content(i)) ? md5ish(i + 1e12) : md5ish(i);
      out.push({ key: key(i), size, etag, lastModified: EPOCH, storageClass: 'STANDARD' });
    }
    if (d && destinationRules.extra(i)) out.push({ key: `${key(i)}x`, size: 10, etag: md5ish(7), lastModified: EPOCH, storageClass: 'STANDARD' });
    return out;
  }

  async listPage({ prefix = '', startAfter, token, maxKeys = 1000 }) {
    this.listCalls++;
    await sleep(this.listLatencyMs);
    if (prefix !== '' && !'data/'.startsWith(prefix) && !prefix.startsWith('data/')) return { objects: [] };
    // token "i:skip": continue at index i, skipping the first `skip` entries of it.
    let [i, skip] = token ? token.split(':').map(Number) : [0, 0];
    if (!token && startAfter !== undefined) {
      const m = /^data\/(\d{9})(x?)/.exec(startAfter);
      if (m) {
        i = Number(m[1]);
        skip = m[2] ? 2 : 1;
      }
    }
    const objects = [];
    while (i < this.n && objects.length < maxKeys) {
      const entries = this.#entries(i).slice(skip);
      for (const e of entries) {
        if (objects.length >= maxKeys) break;
        objects.push(e);
        skip++;
      }
      if (objects.length >= maxKeys && skip < this.#entries(i).length) break;
      i++;
      skip = 0;
    }
    return i < this.n ? { objects, nextToken: `${i}:${skip}` } : { objects };
  }

  async head(k) {
    this.headCalls++;
    await sleep(this.headLatencyMs);
    const m = /^data\/(\d{9})$/.exec(k);
    if (!m) return null;
    const i = Number(m[1]);
    const e = this.#entries(i)[0];
    if (!e || e.key !== k) return null;
    const userMetadata = {};
    // The fingerprinted copy carries the source's ETag, as BucketBridge writes it.
    if (this.side === 'destination' && destinationRules.fingerprinted(i)) userMetadata['bb-source-etag'] = md5ish(i);
    return {
      key: k,
      size: e.size,
      etag: e.etag,
      lastModified: EPOCH,
      userMetadata,
      storageClass: 'STANDARD',
      multipartEtag: this.side === 'destination' && destinationRules.fingerprinted(i),
      needsRestore: false,
      restoreInProgress: false,
    };
  }

  async close() {}
}
