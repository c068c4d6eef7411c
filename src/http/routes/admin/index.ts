/**
 * The admin API under /admin: bearer-JWT auth with scopes (bb:read for GET,
 * bb:write for everything else), JSON bodies, and the task, sender, status and
 * intake-ledger routes. Encapsulated: its content-type parser, validator and
 * auth hook apply to these routes only.
 *
 * Validation: querystring and params by ajv (with type coercion, so ?limit=5 is
 * a number); bodies by the config validators in the handlers (config/validate.ts),
 * so the API and the config file accept exactly the same tasks.
 */
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import { AdminAuth, requiredScope, type AdminPrincipal } from '../../../auth/admin-jwt.js';
import { SecretBox } from '../../../auth/secret-box.js';
import type { SenderDirectory } from '../../../auth/senders.js';
import { IntakeLedgerRepo } from '../../../db/intake-ledger-repo.js';
import { ObjectStatusRepo } from '../../../db/object-status-repo.js';
import { SenderRepo } from '../../../db/sender-repo.js';
import { TaskStatusRepo } from '../../../db/task-status-repo.js';
import { AppError } from '../../../errors.js';
import type { TaskRegistry } from '../../../tasks/registry.js';
import { CursorCodec } from '../../cursor.js';
import type { AdminContext } from './context.js';
import { registerIntakeLedgerRoutes } from './intake-ledger.js';
import { registerSenderRoutes } from './senders.js';
import { registerStatusRoutes } from './status.js';
import { ADMIN_SCHEMAS } from './schemas.js';
import { registerTaskRoutes } from './tasks.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified admin token's subject and scopes (admin routes only). */
    adminPrincipal: AdminPrincipal | null;
  }
}

/** What the admin API needs beyond the intake's dependencies. */
export interface AdminDeps {
  auth: AdminAuth;
  /** BB_MASTER_KEY: encrypts API senders' secrets; also keys the pagination cursors. */
  masterKey?: Buffer;
  /** Environment that API-created tasks' credential env vars are checked against. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export async function registerAdminRoutes(
  app: FastifyInstance,
  deps: { pool: pg.Pool; boss: PgBoss; tasks: TaskRegistry; senders: SenderDirectory; bodyLimit: number; admin?: AdminDeps },
): Promise<void> {
  const admin = deps.admin ?? { auth: new AdminAuth({}) };
  const ctx: AdminContext = {
    pool: deps.pool,
    boss: deps.boss,
    tasks: deps.tasks,
    senders: deps.senders,
    senderRepo: new SenderRepo(deps.pool, admin.masterKey ? new SecretBox(admin.masterKey) : undefined),
    statusRepo: new TaskStatusRepo(deps.pool),
    objects: new ObjectStatusRepo(deps.pool),
    ledger: new IntakeLedgerRepo(deps.pool),
    cursors: CursorCodec.create(admin.masterKey),
    env: admin.env ?? process.env,
  };
  const queryAjv = addFormats(new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));

  for (const schema of ADMIN_SCHEMAS) app.addSchema(schema);
  app.decorateRequest('adminPrincipal', null);
  await app.register(
    async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: deps.bodyLimit }, (_req, body, done) => {
        const text = typeof body === 'string' ? body : body.toString('utf8');
        if (text.trim() === '') return done(null, undefined);
        try {
          done(null, JSON.parse(text));
        } catch {
          done(new AppError(400, 'INVALID_JSON', 'request body is not valid JSON'), undefined);
        }
      });
      // Bodies are validated in the handlers by the config validators; the body schemas document them.
      scope.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? () => true : queryAjv.compile(schema)));

      scope.addHook('onRequest', async (request, reply) => {
        try {
          request.adminPrincipal = await admin.auth.authorize(request.headers.authorization, requiredScope(request.method));
        } catch (err) {
          if (err instanceof AppError && err.statusCode === 401) {
            reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${err.code}"`);
          }
          throw err;
        }
      });
      scope.addHook('onResponse', async (request: FastifyRequest, reply) => {
        if (request.method !== 'GET' && request.method !== 'HEAD' && reply.statusCode < 400) {
          request.log.info(
            { sub: request.adminPrincipal?.subject, method: request.method, url: request.url.split('?')[0], status: reply.statusCode },
            'admin change',
          );
        }
      });

      await registerTaskRoutes(scope, ctx);
      await registerStatusRoutes(scope, ctx);
      await registerSenderRoutes(scope, ctx);
      await registerIntakeLedgerRoutes(scope, ctx);
    },
    { prefix: '/admin' },
  );
}
