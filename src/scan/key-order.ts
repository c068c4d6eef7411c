/**
 * Object keys in the order S3 and OSS list them: UTF-8 binary order.
 *
 * JavaScript's `<` compares UTF-16 code units, which disagrees with UTF-8 byte
 * order exactly when a supplementary character (a surrogate pair, D800–DFFF)
 * meets a BMP character at or above U+E000: "\u{1F600}" < "\uFF5E" in UTF-16 but
 * not in UTF-8. compareKeys compares code points instead, which is the same
 * order as the UTF-8 bytes (a property test checks it against Buffer.compare)
 * without encoding every key into a Buffer.
 */

/** Negative, zero or positive as `a` sorts before, with or after `b` in UTF-8 binary order. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Both in D800–FFFF: move surrogates above E000–FFFF, as code points (and UTF-8) order them.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** The reference definition, for tests: compare the UTF-8 encodings byte by byte. */
export function compareKeysByBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * A listing that is not in UTF-8 binary order (or strays outside the prefix
 * asked for) would make the merge-join report wrong differences — and, with
 * deletes on, delete the wrong keys. The scan fails with this error instead.
 */
export class KeyOrderError extends Error {
  override readonly name = 'KeyOrderError';
  constructor(
    readonly side: 'source' | 'destination',
    message: string,
  ) {
    super(message);
  }
}
