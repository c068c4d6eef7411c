/**
 * Notification parsing: one body in any supported format → the object keys it names.
 * Pure functions over an already-parsed JSON value; the HTTP layer limits the body size
 * (1 MiB) and maps EventParseError codes to responses. Changes are returned in body order
 * and are NOT de-duplicated: duplicates collapse later, on the per-key singleton job.
 */
import { Collector } from './collect.js';
import { parseAny } from './detect.js';
import { EventParseError, type EventFormat, type ParsedNotification } from './object-change.js';
import { parseOms } from './oms.js';

export { EventParseError } from './object-change.js';
export type { ChangeKind, EventFormat, EventParseErrorCode, ObjectChange, ParsedNotification } from './object-change.js';
export { MAX_KEY_BYTES } from './keys.js';

export const DEFAULT_MAX_KEYS = 1000;

export interface ParseOptions {
  /** Most changes one notification may carry; more → TOO_MANY_KEYS. Default 1000. */
  maxKeys?: number;
}

function collector(options: ParseOptions | undefined): Collector {
  const maxKeys = options?.maxKeys ?? DEFAULT_MAX_KEYS;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError('maxKeys must be a positive integer');
  return new Collector(maxKeys);
}

function finish(format: EventFormat, out: Collector): ParsedNotification {
  // Ignored events (e.g. s3:TestEvent) count as events: they are answered, not rejected.
  if (out.events === 0) throw new EventParseError('NO_EVENTS', `the ${format} notification contains no events`);
  return { format, changes: out.changes, ignored: out.ignored() };
}

/** Parse a notification in any supported format (auto-detected by shape; see detect.ts). */
export function parseNotification(body: unknown, options?: ParseOptions): ParsedNotification {
  const out = collector(options);
  return finish(parseAny(body, out), out);
}

/** Parse an OMS body `{"object_keys": [...]}` (percent-encoded keys) — the OMS-compatible route. */
export function parseOmsKeys(body: unknown, options?: ParseOptions): ParsedNotification {
  const out = collector(options);
  parseOms(body, '$', out);
  return finish('oms', out);
}
