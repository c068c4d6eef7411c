/**
 * Glob patterns for scan include/exclude filters, matched against whole keys:
 *
 *   *       any run of characters except "/"
 *   **      any run of characters, "/" included ("a/**" = everything under a/;
 *           "**\/" matches zero or more directory levels, so "**\/*.jpg" also matches "x.jpg")
 *   ?       one character except "/"
 *   [abc] [a-z] [!a-z] [^a-z]   one character of (not of) the class
 *   {jpg,png}   alternatives (may nest)
 *   \x      x literally
 *
 * Small and dependency-free on purpose (minimatch/picomatch are only
 * transitive dependencies here). Patterns compile once into one RegExp.
 */

export class GlobError extends Error {
  override readonly name = 'GlobError';
}

const SPECIAL = new Set(['*', '?', '[', '{', '\\']);

function escapeRegExp(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

interface Parser {
  src: string;
  pos: number;
}

/** Parse until `stops` (inside braces: "," and "}") or the end; returns the regex source. */
function parseSequence(p: Parser, depth: number): string {
  let out = '';
  while (p.pos < p.src.length) {
    const ch = p.src[p.pos]!;
    if (depth > 0 && (ch === ',' || ch === '}')) return out;
    p.pos++;
    switch (ch) {
      case '\\': {
        if (p.pos >= p.src.length) throw new GlobError(`pattern "${p.src}" ends with an unfinished escape`);
        const cp = p.src.codePointAt(p.pos)!;
        const lit = String.fromCodePoint(cp);
        p.pos += lit.length;
        out += escapeRegExp(lit);
        break;
      }
      case '*': {
        const start = p.pos - 1;
        if (p.src[p.pos] === '*') {
          while (p.src[p.pos] === '*') p.pos++;
          const atSegmentStart = start === 0 || p.src[start - 1] === '/';
          if (atSegmentStart && p.src[p.pos] === '/') {
            // "**/" : zero or more whole directory levels.
            p.pos++;
            out += '(?:.*/)?';
          } else {
            out += '.*';
          }
        } else {
          out += '[^/]*';
        }
        break;
      }
      case '?':
        out += '[^/]';
        break;
      case '[': {
        const close = findClassEnd(p.src, p.pos);
        if (close < 0) {
          out += '\\[';
          break;
        }
        let body = p.src.slice(p.pos, close);
        p.pos = close + 1;
        let negate = false;
        if (body.startsWith('!') || body.startsWith('^')) {
          negate = true;
          body = body.slice(1);
        }
        let cls = '';
        for (let i = 0; i < body.length; ) {
          if (body[i] === '\\' && i + 1 < body.length) {
            const lit = String.fromCodePoint(body.codePointAt(i + 1)!);
            cls += `\\${lit}`;
            i += 1 + lit.length;
            continue;
          }
          const lit = String.fromCodePoint(body.codePointAt(i)!);
          cls += lit === '-' ? '-' : /[\\\]^[]/.test(lit) ? `\\${lit}` : lit;
          i += lit.length;
        }
        // A class never matches "/": keys' directory separators are only matched literally.
        out += negate ? `[^/${cls}]` : `(?!/)[${cls}]`;
        break;
      }
      case '{': {
        const alternatives: string[] = [];
        for (;;) {
          alternatives.push(parseSequence(p, depth + 1));
          if (p.pos >= p.src.length) throw new GlobError(`pattern "${p.src}" has an unclosed "{"`);
          const sep = p.src[p.pos++];
          if (sep === '}') break;
        }
        out += `(?:${alternatives.join('|')})`;
        break;
      }
      default: {
        const cp = p.src.codePointAt(p.pos - 1)!;
        const lit = String.fromCodePoint(cp);
        p.pos += lit.length - 1;
        out += escapeRegExp(lit);
      }
    }
  }
  return out;
}

function findClassEnd(src: string, from: number): number {
  let i = from;
  if (src[i] === '!' || src[i] === '^') i++;
  if (src[i] === ']') i++; // a leading "]" is literal
  for (; i < src.length; i++) {
    if (src[i] === '\\') i++;
    else if (src[i] === ']') return i;
  }
  return -1;
}

/** Compile one glob into an anchored RegExp. Throws GlobError for malformed patterns. */
export function globToRegExp(pattern: string): RegExp {
  const p: Parser = { src: pattern, pos: 0 };
  const body = parseSequence(p, 0);
  if (p.pos < pattern.length) throw new GlobError(`pattern "${pattern}" has an unmatched "${pattern[p.pos]}"`);
  try {
    return new RegExp(`^${body}$`, 'su');
  } catch (err) {
    throw new GlobError(`pattern "${pattern}" is not valid: ${(err as Error).message}`);
  }
}

/**
 * The literal text every match starts with ("logs/2024/*.gz" → "logs/2024/"),
 * used to narrow listings to the prefixes an include filter can match.
 */
export function globLiteralPrefix(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) {
      out += pattern[++i];
      continue;
    }
    if (SPECIAL.has(ch)) return out;
    out += ch;
  }
  return out;
}

/** A key filter from include and exclude globs: included (by any, or when none are given) and excluded by none. */
export function keyFilter(include: readonly string[] = [], exclude: readonly string[] = []): ((key: string) => boolean) | undefined {
  if (include.length === 0 && exclude.length === 0) return undefined;
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return (key) => (inc.length === 0 || inc.some((r) => r.test(key))) && !exc.some((r) => r.test(key));
}
