/**
 * TLS for the intake (BB_TLS_CERT / BB_TLS_KEY): PEM files read and checked
 * once at start, so a bad file stops the process with a ConfigError naming
 * the variable instead of failing the first handshake. TLS 1.2 is the floor.
 * Without TLS the service serves plain HTTP, which is only safe on loopback:
 * `plaintextWarning` says so when it is bound anywhere else.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError } from '../config/validate.js';
import { PEM_PRIVATE_KEY } from '../crypto/keys.js';

export const MIN_TLS_VERSION = 'TLSv1.2' as const;

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** What Fastify's `https` option takes. */
export type HttpsOptions = SecureContextOptions & { minVersion: typeof MIN_TLS_VERSION };

function readPem(name: string, file: string, marker: RegExp, what: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    throw new ConfigError(name, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!marker.test(data.toString('latin1'))) throw new ConfigError(name, `${file} is not a PEM ${what}`);
  return data;
}

/**
 * Both variables or neither. The pair is checked by building a secure context
 * (malformed PEM, a key that does not match the certificate, an encrypted key).
 */
export function loadTlsFiles(certFile: string | undefined, keyFile: string | undefined): TlsFiles | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined) throw new ConfigError('BB_TLS_CERT', 'is required when BB_TLS_KEY is set');
  if (keyFile === undefined) throw new ConfigError('BB_TLS_KEY', 'is required when BB_TLS_CERT is set');
  const cert = readPem('BB_TLS_CERT', certFile, /-----BEGIN CERTIFICATE-----/, 'certificate (chain)');
  const key = readPem('BB_TLS_KEY', keyFile, PEM_PRIVATE_KEY, 'private key');
  try {
    createSecureContext({ cert, key, minVersion: MIN_TLS_VERSION });
  } catch (err) {
    const message = (err as Error).message;
    if (/key values mismatch/i.test(message)) throw new ConfigError('BB_TLS_KEY', `does not match the certificate in ${certFile}`);
    if (/bad decrypt|passphrase|PEM_read_bio_PrivateKey|DECODER|private key/i.test(message)) {
      throw new ConfigError('BB_TLS_KEY', `${keyFile} cannot be used (${message}); an encrypted key is not supported`);
    }
    throw new ConfigError('BB_TLS_CERT', `${certFile} cannot be used (${message})`);
  }
  return { cert, key };
}

export function httpsOptions(files: TlsFiles): HttpsOptions {
  return { cert: files.cert, key: files.key, minVersion: MIN_TLS_VERSION };
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost". */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** The warning to log when the intake listens in plain HTTP beyond loopback, else undefined. */
export function plaintextWarning(host: string, tls: boolean): string | undefined {
  if (tls || isLoopback(host)) return undefined;
  return `listening on ${host} without TLS: notifications, signatures and admin tokens cross the network in clear; set BB_TLS_CERT and BB_TLS_KEY or terminate TLS in front`;
}
