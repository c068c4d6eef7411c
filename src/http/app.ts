/**
 * Fastify app factory: error shape, body handling, OpenAPI, and the routes.
 * Everything it needs is passed in, so tests build it over real dependencies.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import { errorHandler, errorResponseSchema, sendError } from './errors.js';
import { clientErrorHandler, frameworkErrorHandler, installServerHandlers, SERVER_OPTIONS } from './protocol-errors.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerIntakeRoutes, type IntakeDeps } from './routes/intake.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerAdminRoutes, type AdminDeps } from './routes/admin/index.js';
import { adminAuthorizer, registerScanRoutes } from './routes/admin/scans.js';
import { AdminAuth } from '../auth/admin-jwt.js';
import type { ScanService } from '../scan/scans.js';
import type { Registry } from 'prom-client';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { HttpsOptions } from './tls.js';

export const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Route schemas are JSON Schema draft-07 (what ajv validates); OpenAPI 3.0
 * wants a few keywords in their older form: numeric exclusiveMinimum/Maximum
 * become minimum/maximum + a boolean, and `const` becomes a one-value enum.
 */
export function toOpenApi30<T>(doc: T): T {
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    for (const [kw, bound] of [
      ['exclusiveMinimum', 'minimum'],
      ['exclusiveMaximum', 'maximum'],
    ] as const) {
      if (typeof o[kw] === 'number') {
        o[bound] = o[kw];
        o[kw] = true;
      }
    }
    if ('const' in o && !('enum' in o)) {
      o.enum = [o.const];
      delete o.const;
    }
    Object.values(o).forEach(walk);
  };
  walk(doc);
  return doc;
}

export interface AppDeps extends IntakeDeps {
  pool: pg.Pool;
  boss: PgBoss;
  logger: Logger;
  metricsRegistry: Registry;
  isShuttingDown: () => boolean;
  version: string;
  /** Serve HTTPS with these (src/http/tls.ts); absent → plain HTTP. */
  https?: HttpsOptions;
  /** Admin API auth and keys; absent → the admin routes exist (and are documented) but answer 503 ADMIN_DISABLED. */
  admin?: AdminDeps;
  /** Reconciliation scans (src/scan/); absent → no scan routes. */
  scans?: ScanService;
}

/** Object keys travel as one URL-encoded path segment: up to 1,024 bytes, 3 characters each when encoded. */
export const MAX_PARAM_LENGTH = 4096;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // Fastify types an https server separately; routes and hooks are the same, so keep one instance type.
    ...((deps.https ? { https: { ...deps.https, ...SERVER_OPTIONS } } : {}) as object),
    http: SERVER_OPTIONS,
    // Requests refused before any route runs are answered in the error shape too (protocol-errors.ts).
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    // pino's Logger and fastify's base logger type differ only in generics.
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: 'x-request-id',
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Signatures cover the exact bytes: keep the body raw and parse it ourselves.
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
  });
  installServerHandlers(app);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT_BYTES }, (_req, body, done) => done(null, body));

  app.addSchema(errorResponseSchema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'BucketBridge',
        version: deps.version,
        description: 'Signed webhook service that keeps object-storage buckets in sync across clouds.',
      },
      components: {
        securitySchemes: {
          sdkHmac: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description: 'SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=hex (Huawei APIG scheme)',
          },
          bearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'Admin JWT (HS256 with BB_ADMIN_JWT_SECRET, or from the JWKS at BB_ADMIN_JWKS_URL); scope bb:read for GET, bb:write otherwise',
          },
        },
      },
      tags: [
        { name: 'intake', description: 'Signed object-change notifications' },
        { name: 'admin: tasks', description: 'Replication tasks' },
        { name: 'admin: status', description: 'Replication status, per-object records, retries' },
        { name: 'admin: senders', description: 'Signing credentials of notification senders' },
        { name: 'admin: intake', description: 'The intake ledger' },
        { name: 'admin: scans', description: 'Reconciliation scans: list both buckets, diff, queue the differences' },
        { name: 'health', description: 'Liveness, readiness, metrics, this document' },
      ],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    // On a copy: the document may share objects with the live route and config schemas.
    transformObject: (doc) => toOpenApi30(structuredClone('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject)),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`));

  await registerHealthRoutes(app, deps);
  await registerMetricsRoute(app, deps.metricsRegistry);
  await registerIntakeRoutes(app, deps);
  await registerAdminRoutes(app, { ...deps, bodyLimit: BODY_LIMIT_BYTES });
  if (deps.scans) {
    const authorize = adminAuthorizer(deps.admin?.auth ?? new AdminAuth({}));
    await registerScanRoutes(app, { scans: deps.scans, authorize, bodyLimit: BODY_LIMIT_BYTES });
  }
  app.get(
    '/openapi.json',
    {
      schema: {
        operationId: 'getOpenApiDocument',
        summary: 'This OpenAPI 3 document',
        tags: ['health'],
        response: { 200: { type: 'object', additionalProperties: true, description: 'OpenAPI 3.0 document' } },
      },
    },
    async (_request, reply) => reply.type('application/json').send(JSON.stringify(app.swagger())),
  );
  return app;
}
