/**
 * The load generator's HTTP side: node:http with a keep-alive Agent (fetch tops
 * out near 1,000 req/s on these machines; see /work/shared/BENCH-NOTES.md) and
 * requests signed before the run, so signing (~35 µs each) is not paid inside
 * the measurement window.
 */
import http from 'node:http';
import { signedHeaders } from '../../dist/auth/signed-client.js';

/** One S3 event record for one object key (the body of every request). */
export function s3EventBody(key) {
  return Buffer.from(
    JSON.stringify({
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          eventName: 'ObjectCreated:Put',
          s3: { bucket: { name: 'bench-src' }, object: { key, size: 1 } },
        },
      ],
    }),
  );
}

/**
 * `n` signed POSTs to `url`, each with its own key `k/<tag>-<i>`, hence its own
 * body hash and signature: no two are duplicates or replays of each other.
 */
export function presign(url, n, tag, credentials) {
  const u = new URL(url);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const body = s3EventBody(`k/${tag}-${i}`);
    const headers = signedHeaders('POST', u, body, credentials);
    headers['content-length'] = String(body.length);
    out[i] = { body, headers };
  }
  return out;
}

export function keepAliveAgent(concurrency) {
  return new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, scheduling: 'fifo' });
}

/**
 * POST one pre-signed request; resolves to the status code as a string, or
 * `error:<code>`. Every `sampleEvery`-th answer's body is parsed and passed to
 * `onSample` (so the client does not pay JSON.parse on every answer).
 */
export function poster({ agent, port, path = '/sync', timeoutMs = 30_000, sampleEvery = 512, onSample }) {
  let count = 0;
  return (req) =>
    new Promise((resolve) => {
      const sample = onSample && count++ % sampleEvery === 0;
      const r = http.request(
        { agent, host: '127.0.0.1', port, method: 'POST', path, headers: req.headers },
        (res) => {
          const chunks = sample ? [] : undefined;
          res.on('data', (c) => chunks?.push(c));
          res.on('end', () => {
            if (chunks) onSample(res.statusCode, Buffer.concat(chunks).toString('utf8'));
            resolve(String(res.statusCode));
          });
          res.on('error', (err) => resolve(`error:${err.code ?? err.message}`));
        },
      );
      r.setTimeout(timeoutMs, () => r.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      r.on('error', (err) => resolve(`error:${err.code ?? err.message}`));
      r.end(req.body);
    });
}
