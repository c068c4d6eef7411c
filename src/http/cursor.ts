/**
 * Opaque, tamper-checked pagination cursors for keyset pagination.
 *
 *   cursor = base64url(JSON {v, k: list kind, q: the query's filters, p: position})
 *            "." base64url(HMAC-SHA256(key, "bb-cursor." + payload)[0..16])
 *
 * The key is derived from BB_MASTER_KEY when it is set (every process behind a
 * load balancer accepts every other's cursors), otherwise it is random per
 * process (a cursor then works only on the process that issued it, and not
 * across restarts). A cursor replayed against another list or other filters is
 * refused like a forged one: 400 INVALID_CURSOR.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { deriveKey } from '../auth/secret-box.js';
import { AppError } from '../errors.js';

type Filters = Record<string, string | null>;

const TAG_BYTES = 16;

const invalid = (why: string) => new AppError(400, 'INVALID_CURSOR', `cursor is invalid: ${why}`);

export class CursorCodec {
  constructor(private readonly key: Buffer) {}

  static create(masterKey?: Buffer): CursorCodec {
    return new CursorCodec(masterKey ? deriveKey(masterKey, 'cursors/v1') : randomBytes(32));
  }

  private tag(payload: string): Buffer {
    return createHmac('sha256', this.key).update(`bb-cursor.${payload}`).digest().subarray(0, TAG_BYTES);
  }

  encode<P extends string | number>(kind: string, filters: Filters, position: P): string {
    const payload = Buffer.from(JSON.stringify({ v: 1, k: kind, q: filters, p: position })).toString('base64url');
    return `${payload}.${this.tag(payload).toString('base64url')}`;
  }

  /** The position of a cursor issued by `encode(kind, filters, …)`; 400 INVALID_CURSOR otherwise. */
  decode(cursor: string, kind: string, filters: Filters, positionType: 'string' | 'number'): string | number {
    const dot = cursor.indexOf('.');
    if (dot <= 0) throw invalid('malformed');
    const payload = cursor.slice(0, dot);
    const given = Buffer.from(cursor.slice(dot + 1), 'base64url');
    const expected = this.tag(payload);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid('signature mismatch (altered, or issued by another server)');
    let parsed: { v?: unknown; k?: unknown; q?: unknown; p?: unknown };
    try {
      parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof parsed;
    } catch {
      throw invalid('malformed');
    }
    if (parsed.v !== 1 || parsed.k !== kind) throw invalid('issued for another list');
    if (JSON.stringify(parsed.q) !== JSON.stringify(filters)) throw invalid('issued for other filters; repeat the query with the same filters');
    if (typeof parsed.p !== positionType) throw invalid('malformed');
    return parsed.p as string | number;
  }
}
