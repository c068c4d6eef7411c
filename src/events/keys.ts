/**
 * Decoding and validation of object keys taken from notifications.
 *
 * Three encodings occur in the wild:
 *  - 'form'    S3 / MinIO `s3.object.key`: application/x-www-form-urlencoded, so `+` is a
 *              space and a real plus arrives as `%2B`.
 *  - 'percent' OMS `object_keys`: plain percent-encoding; `+` is a plus.
 *  - 'none'    EventBridge, OSS Function Compute, DTH, MinIO's top-level `Key`: the key as is.
 *
 * Decoding is strict (unlike the signer, which must accept whatever a sender signed): a key
 * that does not decode to exactly one well-formed UTF-8 string is rejected rather than
 * guessed at, because a guessed key would replicate (or delete!) the wrong object.
 * Valid keys: 1..1024 UTF-8 bytes after decoding, no control characters (Unicode Cc: C0,
 * DEL, C1 — NUL and friends break logs, marker paths and XML listings), no lone surrogates.
 */
import { EventParseError } from './object-change.js';

export const MAX_KEY_BYTES = 1024;

export type KeyEncoding = 'none' | 'percent' | 'form';

/** Where a key came from, for error messages: its index in its array and its JSON path. */
export interface KeySite {
  index: number;
  path: string;
}

// ignoreBOM: a leading U+FEFF is part of the key, not a byte-order mark to strip.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const CONTROL = /\p{Cc}/u;

function invalid(site: KeySite, why: string): EventParseError {
  return new EventParseError('INVALID_KEY', `invalid key at index ${site.index} (${site.path}): ${why}`, site.path);
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/** Strict percent-decoding: every '%' must start a `%XX`, and the bytes must be UTF-8. */
function percentDecodeStrict(s: string, site: KeySite): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  let i = 0;
  while (i < s.length) {
    const pct = s.indexOf('%', i);
    const end = pct === -1 ? s.length : pct;
    if (end > i) for (const b of encoder.encode(s.slice(i, end))) bytes.push(b);
    if (pct === -1) break;
    const hi = pct + 2 < s.length ? hexValue(s.charCodeAt(pct + 1)) : -1;
    const lo = pct + 2 < s.length ? hexValue(s.charCodeAt(pct + 2)) : -1;
    if (hi < 0 || lo < 0) throw invalid(site, `invalid percent-encoding at offset ${pct}`);
    bytes.push((hi << 4) | lo);
    i = pct + 3;
  }
  try {
    return utf8.decode(new Uint8Array(bytes));
  } catch {
    throw invalid(site, 'percent-decoded bytes are not valid UTF-8');
  }
}

/** Decode a raw key with the given encoding and validate it; throws EventParseError('INVALID_KEY'). */
export function decodeKey(raw: unknown, encoding: KeyEncoding, site: KeySite): string {
  if (typeof raw !== 'string') throw invalid(site, raw === undefined ? 'missing' : `must be a string, got ${raw === null ? 'null' : typeof raw}`);
  if (raw === '') throw invalid(site, 'empty');
  // Every UTF-16 unit of the raw text yields at least 1/3 of a decoded byte ('%XX' → 1 byte),
  // so this bounds the work done on absurd inputs before decoding them.
  if (raw.length > 3 * MAX_KEY_BYTES) throw invalid(site, `longer than ${MAX_KEY_BYTES} UTF-8 bytes`);
  // Checked on the raw text: TextEncoder would silently turn a lone surrogate into U+FFFD.
  if (LONE_SURROGATE.test(raw)) throw invalid(site, 'contains a lone UTF-16 surrogate (not valid Unicode)');
  const key =
    encoding === 'none' ? raw : encoding === 'percent' ? percentDecodeStrict(raw, site) : percentDecodeStrict(raw.replace(/\+/g, ' '), site);
  if (key === '') throw invalid(site, 'empty after decoding');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw invalid(site, `longer than ${MAX_KEY_BYTES} UTF-8 bytes`);
  const control = CONTROL.exec(key);
  if (control !== null) {
    const cp = control[0].codePointAt(0) ?? 0;
    throw invalid(site, `contains control character U+${cp.toString(16).toUpperCase().padStart(4, '0')}`);
  }
  return key;
}
