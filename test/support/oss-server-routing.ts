/**
 * Works out which bucket and key a request addresses.
 *
 * ali-oss 6.x, given an IP endpoint such as `http://127.0.0.1:PORT`, keeps the
 * bucket OUT of the path (`PUT /key`) and instead sets
 * `Host: {bucket}.{region}.aliyuncs.com` (see lib/common/utils/createRequest.js,
 * the `isIP(...)` branch, and lib/common/client/getReqUrl.js). With
 * `sldEnable: true` it additionally puts the bucket in the path. Other
 * clients use plain path style (`/bucket/key`, Host = the IP) or a virtual
 * host such as `bucket.127.0.0.1:PORT`. We produce every plausible reading
 * and let the signature pick (see authenticate()).
 */
import { isIP } from 'node:net';

import type { ResourceTarget } from './oss-server-auth.js';
import { OssError } from './oss-server-errors.js';
import { isValidBucketName } from './oss-server-store.js';

function decodePathPart(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new OssError('InvalidArgument', `The request path is not valid percent-encoding: ${raw}`);
  }
}

/** The Host header without its port (and without brackets for IPv6). */
function hostnameOf(hostHeader: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader);
  if (bracketed !== null) return bracketed[1] ?? '';
  return hostHeader.replace(/:\d+$/, '').toLowerCase();
}

/** `bucket` from `bucket.rest-of-host` when the Host names one; undefined for bare IPs/localhost. */
function virtualHostBucket(hostHeader: string | undefined): string | undefined {
  if (hostHeader === undefined) return undefined;
  const hostname = hostnameOf(hostHeader);
  if (isIP(hostname) !== 0 || hostname === 'localhost') return undefined;
  const dot = hostname.indexOf('.');
  if (dot <= 0) return undefined;
  const label = hostname.slice(0, dot);
  return isValidBucketName(label) ? label : undefined;
}

function pathStyleTarget(rawPath: string): ResourceTarget {
  const withoutSlash = rawPath.replace(/^\//, '');
  if (withoutSlash === '') return {};
  const slash = withoutSlash.indexOf('/');
  if (slash === -1) return { bucket: decodePathPart(withoutSlash) };
  const key = decodePathPart(withoutSlash.slice(slash + 1));
  return { bucket: decodePathPart(withoutSlash.slice(0, slash)), ...(key === '' ? {} : { key }) };
}

/**
 * Candidate targets in order of preference: virtual-host reading first (what
 * real OSS does when the Host names a bucket), then path style.
 * `rawPath` is the still-percent-encoded path, without the query string.
 */
export function routeCandidates(hostHeader: string | undefined, rawPath: string): ResourceTarget[] {
  const candidates: ResourceTarget[] = [];
  const hostBucket = virtualHostBucket(hostHeader);
  if (hostBucket !== undefined) {
    const key = decodePathPart(rawPath.replace(/^\//, ''));
    candidates.push({ bucket: hostBucket, ...(key === '' ? {} : { key }) });
  }
  candidates.push(pathStyleTarget(rawPath));
  return candidates;
}
