/**
 * Decides, for one chunk of merge-joined keys, which differ. The rule is the
 * replication engine's (replication/compare.ts), applied as cheaply as the
 * listings allow — listings carry size and ETag, not user metadata or CRC-64:
 *
 *   only in the source                      → missing
 *   only in the destination                 → extra (queued only when the task allows deletes)
 *   compare "none"                          → uncompared (always queued, as the worker copies anyway)
 *   sizes differ                            → size
 *   compare "size"                          → same
 *   compare "checksum", sizes equal:
 *     1. bb_object_status says the key was last completed / found in sync from
 *        this very source ETag (and, when it recorded one, onto this very
 *        destination ETag)                  → same, no request
 *     2. both ETags are single-part MD5s (32 hex) and equal (case-insensitively)
 *                                           → same, no request
 *     3. otherwise HEAD the destination: when it carries the fingerprint
 *        BucketBridge wrote when it copied (bb-source-etag) and no MD5 evidence
 *        could contradict it, that decides; else HEAD the source too and apply
 *        compareObjects exactly as the worker would → same or content.
 *        HEADs run `headConcurrency` at a time.
 *
 * A source listed in an archive class that the task does not restore, whose
 * status row already says `archived` for this ETag, is not queued again
 * (counted as `archived`): the worker could only record the same again.
 *
 * Unequal MD5-looking ETags go to step 3 rather than straight to "content":
 * SSE-KMS and appendable objects have 32-hex ETags that are not MD5s, and the
 * engine's rule knows that from HEAD headers the listing does not carry.
 *
 * Client-side encrypted replicas (bb-cse): their ETag is the MD5 of the
 * ciphertext, so step 2 never matches them, and in step 3 their digests are
 * no evidence either way: the destination HEAD's envelope (encrypted for the
 * task's key?) and stored source fingerprint decide, as in the worker. For a
 * task that encrypts, step 2 is skipped altogether: equal MD5 ETags there mean
 * a plaintext replica, which the task must re-copy encrypted. A bb-cse replica
 * on a task that does not encrypt needs the source's HEAD too (is it a
 * verbatim copy of an encrypted source, same envelope?).
 */
import type { CompareMode } from '../config/types.js';
import { compareObjects, isEncryptedReplica, isMd5Etag, type ReplicaExpectation } from '../replication/compare.js';
import type { ListedObject, ObjectHead, ObjectStore } from '../storage/object-store.js';
import { FINGERPRINT_ETAG } from '../replication/metadata.js';
import type { KeyPair } from './merge-join.js';

export type DifferenceKind = 'missing' | 'size' | 'content' | 'extra' | 'uncompared';

export interface Difference {
  key: string;
  kind: DifferenceKind;
}

/** What bb_object_status remembers of a key's last reconcile. */
export interface StatusRowLite {
  status: string;
  sourceEtag: string | null;
  destinationEtag: string | null;
}

/** One lookup for a whole chunk of keys (the runner does `key = ANY($2)`). */
export type StatusLookup = (keys: string[]) => Promise<Map<string, StatusRowLite>>;

export interface CompareContext {
  mode: CompareMode;
  source: Pick<ObjectStore, 'head'>;
  destination: Pick<ObjectStore, 'head'>;
  statuses?: StatusLookup;
  headConcurrency: number;
  /** Attribute filter: judged on the source object, or the destination's when only it exists. */
  objectFilter?: (object: ListedObject) => boolean;
  /**
   * The task does not restore archived sources: a source listed in an archive
   * class whose status row already says `archived` (from this very ETag) is not
   * queued again — the worker could only record `archived` once more.
   */
  skipKnownArchived?: boolean;
  /** The task encrypts replicas client-side for the public key with this fingerprint (bb-cse-key-id). */
  cseKeyId?: string;
}

export interface ChunkOutcome {
  /** In key order. */
  differences: Difference[];
  /** Keys present on both sides that were compared. */
  compared: number;
  /** Keys left out by the attribute filter. */
  filtered: number;
  /** How equal keys were recognised. */
  sameByStatus: number;
  sameByEtag: number;
  sameByHead: number;
  heads: number;
  /** Differing keys not queued: archived sources already recorded as such (skipKnownArchived). */
  archived: number;
}

const MD5_HEX = /^[0-9a-f]{32}$/i;

function sameText(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

export function trustedByStatus(row: StatusRowLite | undefined, source: ListedObject, destination: ListedObject): boolean {
  if (!row || (row.status !== 'completed' && row.status !== 'in_sync')) return false;
  if (row.sourceEtag === null || !sameText(row.sourceEtag, source.etag)) return false;
  return row.destinationEtag === null || sameText(row.destinationEtag, destination.etag);
}

/** Run `fn` over `items`, at most `limit` at a time; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return results;
}

function asSourceHead(listed: ListedObject): ObjectHead {
  // A HEAD as far as the listing knows it: size and ETag. The ETag is not offered
  // as MD5 evidence (multipartEtag: true), since a listing cannot tell SSE-KMS apart.
  return {
    key: listed.key,
    size: listed.size,
    etag: listed.etag,
    lastModified: listed.lastModified,
    userMetadata: {},
    storageClass: listed.storageClass,
    multipartEtag: true,
    needsRestore: false,
    restoreInProgress: false,
  };
}

/**
 * Step 3: decide with HEAD requests, by compareObjects. The destination's HEAD
 * alone suffices when it carries our fingerprint and no MD5 evidence could
 * contradict it; otherwise the source is HEADed too. Returns the difference
 * kind, or undefined when equal.
 */
async function compareByHead(pair: Required<KeyPair>, ctx: CompareContext, count: () => void): Promise<DifferenceKind | undefined> {
  count();
  const dst = await ctx.destination.head(pair.key);
  if (!dst) return 'missing'; // deleted since it was listed
  if (dst.size !== pair.source.size) return 'size';
  const expect: ReplicaExpectation = ctx.cseKeyId !== undefined ? { cseKeyId: ctx.cseKeyId } : {};
  const encrypted = isEncryptedReplica(dst);
  // A ciphertext MD5 is no evidence about the source's bytes.
  const md5Evidence = !encrypted && MD5_HEX.test(pair.source.etag) && isMd5Etag(dst);
  // Without encryption of its own, the task keeps an encrypted replica only as a verbatim copy of an encrypted source: that takes the source's metadata.
  const needsSourceMetadata = encrypted && ctx.cseKeyId === undefined;
  if (dst.userMetadata[FINGERPRINT_ETAG] !== undefined && !md5Evidence && !needsSourceMetadata) {
    return compareObjects(asSourceHead(pair.source), dst, 'checksum', expect).equal ? undefined : 'content';
  }
  count();
  const src = await ctx.source.head(pair.key);
  if (!src) return 'content'; // deleted since it was listed: the worker will find out
  return compareObjects(src, dst, 'checksum', expect).equal ? undefined : 'content';
}

export async function compareChunk(pairs: readonly KeyPair[], ctx: CompareContext): Promise<ChunkOutcome> {
  const outcome: ChunkOutcome = { differences: [], compared: 0, filtered: 0, sameByStatus: 0, sameByEtag: 0, sameByHead: 0, heads: 0, archived: 0 };
  const kinds = new Array<DifferenceKind | null | undefined>(pairs.length); // null: left out; undefined: equal
  const pending: number[] = []; // indexes needing step 1–3
  for (let i = 0; i < pairs.length; i++) {
    const { source, destination } = pairs[i]!;
    const subject = source ?? destination!;
    if (ctx.objectFilter && !ctx.objectFilter(subject)) {
      kinds[i] = null;
      outcome.filtered++;
      continue;
    }
    if (!destination) kinds[i] = 'missing';
    else if (!source) kinds[i] = 'extra';
    else {
      outcome.compared++;
      if (ctx.mode === 'none') kinds[i] = 'uncompared';
      else if (source.size !== destination.size) kinds[i] = 'size';
      else if (ctx.mode === 'size') kinds[i] = undefined;
      else pending.push(i);
    }
  }
  // Archived sources that differ (missing or another size) may be known as archived already.
  const archivedCandidates: number[] = [];
  if (ctx.skipKnownArchived) {
    for (let i = 0; i < pairs.length; i++) {
      const kind = kinds[i];
      if ((kind === 'missing' || kind === 'size') && pairs[i]!.source?.storageClass === 'ARCHIVE') archivedCandidates.push(i);
    }
  }
  const lookup = [...pending, ...archivedCandidates];
  const rows = lookup.length > 0 && ctx.statuses ? await ctx.statuses(lookup.map((i) => pairs[i]!.key)) : new Map<string, StatusRowLite>();
  for (const i of archivedCandidates) {
    const row = rows.get(pairs[i]!.key);
    if (row?.status === 'archived' && row.sourceEtag !== null && sameText(row.sourceEtag, pairs[i]!.source!.etag)) {
      kinds[i] = undefined;
      outcome.archived++;
    }
  }
  if (pending.length > 0) {
    const needHead: number[] = [];
    for (const i of pending) {
      const { key, source, destination } = pairs[i]! as Required<KeyPair>;
      if (trustedByStatus(rows.get(key), source, destination)) {
        outcome.sameByStatus++;
        kinds[i] = undefined;
      } else if (ctx.cseKeyId === undefined && MD5_HEX.test(source.etag) && MD5_HEX.test(destination.etag) && sameText(source.etag, destination.etag)) {
        outcome.sameByEtag++;
        kinds[i] = undefined;
      } else {
        needHead.push(i);
      }
    }
    const decided = await mapLimit(needHead, ctx.headConcurrency, (i) =>
      compareByHead(pairs[i]! as Required<KeyPair>, ctx, () => outcome.heads++),
    );
    needHead.forEach((i, n) => {
      kinds[i] = decided[n];
      if (decided[n] === undefined) outcome.sameByHead++;
    });
  }
  for (let i = 0; i < pairs.length; i++) {
    const kind = kinds[i];
    if (kind) outcome.differences.push({ key: pairs[i]!.key, kind });
  }
  return outcome;
}
