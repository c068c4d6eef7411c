/**
 * Admin API authentication: `Authorization: Bearer <JWT>` verified with jose,
 * either HS256 with BB_ADMIN_JWT_SECRET or an identity provider's keys from
 * BB_ADMIN_JWKS_URL (both may be configured). Scopes come from a space-separated
 * `scope` string or an `scp` array (or string). With neither key source the
 * admin API is disabled and every call is refused.
 */
import { randomUUID } from 'node:crypto';
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTHeaderParameters,
  type FlattenedJWSInput,
} from 'jose';
import { AppError } from '../errors.js';

export const ADMIN_SCOPES = ['bb:read', 'bb:write'] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

/** Asymmetric algorithms accepted from a JWKS (never HS*: that would let a public key act as a shared secret). */
const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** HS256 needs a 256-bit key: shorter BB_ADMIN_JWT_SECRET values are refused at start. */
export const MIN_ADMIN_SECRET_LENGTH = 32;

/** Seconds of clock skew tolerated on exp / nbf / iat. */
export const CLOCK_TOLERANCE_SECONDS = 5;

export interface AdminAuthOptions {
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** For tests: a key set resolver instead of fetching jwksUrl. */
  jwks?: JWTVerifyGetKey;
}

export interface AdminPrincipal {
  subject?: string;
  scopes: string[];
  claims: JWTPayload;
}

/** The scopes a token carries: `scope: "a b"` and/or `scp: ["a","b"]` (or `scp: "a b"`). */
export function scopesOf(claims: JWTPayload): string[] {
  const out = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === 'string') v.split(/\s+/).filter(Boolean).forEach((s) => out.add(s));
    else if (Array.isArray(v)) v.filter((s): s is string => typeof s === 'string').forEach((s) => add(s));
  };
  add(claims.scope);
  add(claims.scp);
  return [...out];
}

/** GET and HEAD need bb:read; everything else needs bb:write. */
export function requiredScope(method: string): AdminScope {
  return method === 'GET' || method === 'HEAD' ? 'bb:read' : 'bb:write';
}

const unauthenticated = (message: string) => new AppError(401, 'UNAUTHENTICATED', message);

export class AdminAuth {
  private readonly secretKey?: Uint8Array;
  private readonly jwks?: JWTVerifyGetKey;
  private readonly algorithms: string[];

  constructor(private readonly options: AdminAuthOptions) {
    if (options.secret) this.secretKey = new TextEncoder().encode(options.secret);
    if (options.jwks) this.jwks = options.jwks;
    else if (options.jwksUrl) {
      this.jwks = createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
    }
    this.algorithms = [...(this.secretKey ? ['HS256'] : []), ...(this.jwks ? JWKS_ALGORITHMS : [])];
  }

  /** False when neither a secret nor a JWKS is configured: the admin API refuses every call. */
  get enabled(): boolean {
    return this.algorithms.length > 0;
  }

  /** Which key sources are configured, for the start-up log. */
  get mode(): string {
    return [this.secretKey ? 'hs256-secret' : '', this.jwks ? 'jwks' : ''].filter(Boolean).join('+') || 'disabled';
  }

  private readonly getKey = async (header: JWTHeaderParameters, token: FlattenedJWSInput) => {
    if (header.alg === 'HS256' && this.secretKey) return this.secretKey;
    if (!this.jwks) throw unauthenticated('token algorithm not accepted');
    try {
      return await this.jwks(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw err;
      // Fetching or reading the key set failed (network, timeout, non-200, not a JWKS): not the caller's fault.
      throw new AppError(503, 'AUTH_UNAVAILABLE', 'the identity provider key set could not be fetched; retry later');
    }
  };

  /**
   * Verify the bearer token of a request and check it carries `scope`.
   * Throws AppError: 503 ADMIN_DISABLED, 401 UNAUTHENTICATED / TOKEN_EXPIRED,
   * 403 INSUFFICIENT_SCOPE, 503 AUTH_UNAVAILABLE (the JWKS could not be fetched).
   */
  async authorize(authorization: string | undefined, scope: AdminScope): Promise<AdminPrincipal> {
    if (!this.enabled) {
      throw new AppError(503, 'ADMIN_DISABLED', 'the admin API is disabled: set BB_ADMIN_JWT_SECRET or BB_ADMIN_JWKS_URL');
    }
    const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(authorization ?? '');
    if (!match) throw unauthenticated('missing bearer token: send Authorization: Bearer <JWT>');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1]!, this.getKey, {
        algorithms: this.algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw mapJoseError(err);
    }
    const scopes = scopesOf(payload);
    if (!scopes.includes(scope)) {
      throw new AppError(403, 'INSUFFICIENT_SCOPE', `this call needs scope ${scope}; the token has ${scopes.length ? scopes.join(' ') : 'none'}`);
    }
    return { subject: payload.sub, scopes, claims: payload };
  }
}

function mapJoseError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof joseErrors.JWTExpired) return new AppError(401, 'TOKEN_EXPIRED', 'the token has expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) return unauthenticated(`token rejected: ${err.message}`);
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return unauthenticated('token algorithm not accepted');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return unauthenticated('token signature is invalid');
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return unauthenticated('no key of the identity provider matches the token');
  }
  return unauthenticated('token is invalid');
}

export interface MintOptions {
  secret: string;
  scopes: readonly string[];
  ttlSeconds: number;
  issuer?: string;
  audience?: string;
  subject?: string;
  /** Issue time (for tests); defaults to now. */
  now?: Date;
}

/** An HS256 admin token with `scope`, `iat`, `exp`, `jti` (and `iss`/`aud`/`sub` when given). */
export async function mintAdminToken(o: MintOptions): Promise<string> {
  if (!o.secret) throw new Error('a secret is required');
  if (!Number.isFinite(o.ttlSeconds) || o.ttlSeconds <= 0) throw new Error('ttlSeconds must be positive');
  const iat = Math.floor((o.now ?? new Date()).getTime() / 1000);
  let jwt = new SignJWT({ scope: o.scopes.join(' ') })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.floor(o.ttlSeconds))
    .setJti(randomUUID())
    .setSubject(o.subject ?? 'bucketbridge-cli');
  if (o.issuer) jwt = jwt.setIssuer(o.issuer);
  if (o.audience) jwt = jwt.setAudience(o.audience);
  return jwt.sign(new TextEncoder().encode(o.secret));
}
