/**
 * AWS Data Transfer Hub's minimal message `{"key":"...","size":123}` (what its Function
 * Compute sender forwards) and a JSON array of those. Keys are NOT encoded.
 * kind is 'unknown': the message names a key but not what happened to it.
 */
import { optSize, own, requireObject, type Collector, type JsonObject } from './collect.js';

export function isDth(body: JsonObject): boolean {
  return Object.hasOwn(body, 'key');
}

export function parseDthMessage(message: unknown, index: number, path: string, out: Collector): void {
  const m = requireObject(message, path);
  out.add({
    rawKey: own(m, 'key'),
    encoding: 'none',
    index,
    keyPath: `${path}.key`,
    kind: 'unknown',
    size: optSize(m, 'size', path),
  });
}

export function parseDthList(list: unknown[], path: string, out: Collector): void {
  list.forEach((m, i) => parseDthMessage(m, i, `${path}[${i}]`, out));
}
