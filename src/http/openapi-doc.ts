/**
 * The OpenAPI document, built from the route schemas without a database,
 * queue or listening socket: the app is assembled over stand-in dependencies
 * that throw if a handler ever reached them (none runs). Deterministic: routes
 * register in a fixed order and the version comes from package.json.
 * `node scripts/openapi.mjs` writes it to openapi/openapi.json; a test keeps
 * the committed file current.
 */
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { createLogger } from '../logger.js';
import { buildApp, type AppDeps } from './app.js';

export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

function unavailable<T extends object>(name: string): T {
  return new Proxy({} as T, {
    get(_target, prop) {
      if (prop === 'then') return undefined; // not a thenable
      throw new Error(`${name}.${String(prop)} is not available while generating the OpenAPI document`);
    },
  });
}

export async function buildOpenApiDocument(): Promise<Record<string, unknown>> {
  const deps: AppDeps = {
    logger: createLogger('silent'),
    metricsRegistry: new Registry(),
    isShuttingDown: () => false,
    version: PACKAGE_VERSION,
    pool: unavailable('pool'),
    boss: unavailable('boss'),
    enqueuer: unavailable('enqueuer'),
    tasks: unavailable('tasks'),
    senders: unavailable('senders'),
    maxSkewSeconds: 900,
    // Optional route groups are documented too: give them stand-ins so they register.
    scans: unavailable<NonNullable<AppDeps['scans']>>('scans'),
  };
  const app = await buildApp(deps);
  try {
    await app.ready();
    return structuredClone(app.swagger()) as unknown as Record<string, unknown>;
  } finally {
    await app.close();
  }
}

/** The document as committed: 2-space JSON with a final newline. */
export async function renderOpenApiDocument(): Promise<string> {
  return `${JSON.stringify(await buildOpenApiDocument(), null, 2)}\n`;
}
