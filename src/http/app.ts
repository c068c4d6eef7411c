/**
 * Fastify app factory: error shape, body handling, OpenAPI, and the routes.
 * Everything it needs is passed in, so tests build it over real dependencies.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import { errorHandler, errorResponseSchema, sendError } from './errors.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerIntakeRoutes, type IntakeDeps } from './routes/intake.js';
import { registerMetricsRoute } from './routes/metrics.js';
import type { Registry } from 'prom-client';

export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface AppDeps extends IntakeDeps {
  logger: Logger;
  metricsRegistry: Registry;
  isShuttingDown: () => boolean;
  version: string;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger and fastify's base logger type differ only in generics.
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    disableRequestLogging: false,
    requestIdHeader: 'x-request-id',
    // Signatures cover the exact bytes: keep the body raw and parse it ourselves.
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
  });
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
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`));

  await registerHealthRoutes(app, deps);
  await registerMetricsRoute(app, deps.metricsRegistry);
  await registerIntakeRoutes(app, deps);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
