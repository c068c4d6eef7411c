/**
 * Huawei OMS synchronisation events: `{"object_keys":["a%2Fb.txt", …]}` — "URL-encoded
 * names" per the OMS API, i.e. percent-encoding where `+` stays a plus (not form encoding).
 * kind is 'unknown': OMS says "sync this key", not what happened to it.
 *
 * Caveat: Huawei's sample OSS sender (seeds/oms-oss-sync-requests.txt) forwards the OSS
 * event key without encoding it. Such keys still decode to themselves unless they contain
 * '%': a literal '%' followed by two hex digits would be mis-decoded, otherwise rejected as
 * INVALID_KEY. Senders should encode keys (encodeURIComponent).
 */
import { isObject, own, requireArray, unsupported, type Collector, type JsonObject } from './collect.js';

export function isOms(body: JsonObject): boolean {
  return Object.hasOwn(body, 'object_keys');
}

export function parseOms(body: unknown, path: string, out: Collector): void {
  if (!isObject(body) || !isOms(body)) throw unsupported('expected an OMS body {"object_keys": [...]}', path);
  const keys = requireArray(own(body, 'object_keys'), `${path}.object_keys`);
  keys.forEach((raw, i) => {
    out.add({ rawKey: raw, encoding: 'percent', index: i, keyPath: `${path}.object_keys[${i}]`, kind: 'unknown' });
  });
}
