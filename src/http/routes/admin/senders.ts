/**
 * Senders: create (the server generates the secret and shows it once), list
 * and get (never a secret), rotate (new secret; the old one keeps working
 * until a given time), disable / enable, delete. API senders' secrets are
 * stored encrypted (BB_MASTER_KEY); config-file senders are listed with
 * managedBy "config" and are read-only here.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Sender } from '../../../auth/senders.js';
import { apiSenderSchema, senderRotationSchema } from '../../../config/schema.js';
import { validateApiSender, validateSenderRotation } from '../../../config/validate.js';
import { masterKeyRequired, type SenderRecord } from '../../../db/sender-repo.js';
import { AppError } from '../../../errors.js';
import { validated, type AdminContext } from './context.js';
import { authErrors, errorRef, mediaTypeError, notFoundError, readOnlyError, ref, senderParams, senderRecordSchema, senderWithSecretSchema } from './schemas.js';

const tags = ['admin: senders'];
const security = [{ bearer: [] }];

const DEFAULT_OVERLAP_MS = 24 * 3600_000;
const MAX_OVERLAP_MS = 30 * 24 * 3600_000;

/** 32 random bytes, base64url: what a sender signs with. */
export function generateSenderSecret(): string {
  return randomBytes(32).toString('base64url');
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function apiView(s: SenderRecord) {
  return {
    accessKeyId: s.accessKeyId,
    tasks: s.tasks,
    managedBy: 'api' as const,
    disabled: s.disabled,
    description: s.description,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
    rotatedAt: iso(s.rotatedAt),
    previousSecretExpiresAt: iso(s.previousSecretExpiresAt),
  };
}

function configView(s: Sender) {
  return {
    accessKeyId: s.accessKeyId,
    tasks: s.tasks,
    managedBy: 'config' as const,
    disabled: false,
    description: null,
    createdAt: null,
    updatedAt: null,
    rotatedAt: null,
    previousSecretExpiresAt: null,
  };
}

const notFound = (id: string) => new AppError(404, 'NOT_FOUND', `sender ${id} does not exist`);
const readOnly = (id: string) =>
  new AppError(409, 'MANAGED_BY_CONFIG', `sender ${id} comes from the config file and is read-only through the API; edit the file instead`);

export async function registerSenderRoutes(app: FastifyInstance, ctx: AdminContext): Promise<void> {
  /** This process sees the change at once; others within BB_REFRESH_INTERVAL_MS. */
  const reload = () => ctx.senders.loadApiSenders(ctx.senderRepo);

  const requireApiSender = (accessKeyId: string) => {
    if (ctx.senders.isConfigSender(accessKeyId)) throw readOnly(accessKeyId);
  };

  app.get(
    '/senders',
    {
      schema: {
        operationId: 'listSenders',
        summary: 'List senders (config-file and API-managed); secrets are never shown',
        description: 'Scope bb:read.',
        tags,
        security,
        response: {
          200: { type: 'object', required: ['senders'], properties: { senders: { type: 'array', items: ref(senderRecordSchema) } } },
          ...authErrors,
        },
      },
    },
    async () => {
      const config = ctx.senders.configSenders().map(configView);
      const api = (await ctx.senderRepo.list()).filter((s) => !ctx.senders.isConfigSender(s.accessKeyId)).map(apiView);
      return { senders: [...config, ...api].sort((a, b) => (a.accessKeyId < b.accessKeyId ? -1 : a.accessKeyId > b.accessKeyId ? 1 : 0)) };
    },
  );

  app.post(
    '/senders',
    {
      schema: {
        operationId: 'createSender',
        summary: 'Create a sender; the answer carries its secret, shown only this once',
        description:
          'Scope bb:write. Needs BB_MASTER_KEY on the server (503 MASTER_KEY_REQUIRED otherwise). accessKeyId is generated when absent; ' +
          'tasks must exist. The sender can sign POST /sync at once on this process, on the others within BB_REFRESH_INTERVAL_MS.',
        tags,
        security,
        body: apiSenderSchema,
        response: {
          201: ref(senderWithSecretSchema),
          400: { description: 'VALIDATION_FAILED (naming the field), INVALID_JSON', ...errorRef },
          409: { description: 'SENDER_EXISTS', ...errorRef },
          415: mediaTypeError,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      if (!ctx.senderRepo.canStoreSecrets) throw masterKeyRequired();
      const known = new Set((await ctx.tasks.list()).map((t) => t.id));
      const input = validated(() => validateApiSender(structuredClone(request.body ?? null), 'body', (id) => known.has(id)));
      const accessKeyId = input.accessKeyId ?? `bb-${randomBytes(8).toString('hex')}`;
      const exists = () => new AppError(409, 'SENDER_EXISTS', `a sender with access key ${accessKeyId} already exists`);
      if (ctx.senders.isConfigSender(accessKeyId)) throw exists();
      const secret = generateSenderSecret();
      const created = await ctx.senderRepo.create({ accessKeyId, tasks: input.tasks, description: input.description }, secret);
      if (!created) throw exists();
      await reload();
      return reply
        .code(201)
        .header('location', `/admin/senders/${encodeURIComponent(accessKeyId)}`)
        .header('cache-control', 'no-store')
        .send({ ...apiView(created), secret });
    },
  );

  app.get(
    '/senders/:accessKeyId',
    {
      schema: {
        operationId: 'getSender',
        summary: 'Get a sender (never its secret)',
        description: 'Scope bb:read.',
        tags,
        security,
        params: senderParams,
        response: { 200: ref(senderRecordSchema), 404: notFoundError, ...authErrors },
      },
    },
    async (request) => {
      const { accessKeyId } = request.params as { accessKeyId: string };
      const config = ctx.senders.isConfigSender(accessKeyId) ? ctx.senders.get(accessKeyId) : undefined;
      if (config) return configView(config);
      const s = await ctx.senderRepo.get(accessKeyId);
      if (!s) throw notFound(accessKeyId);
      return apiView(s);
    },
  );

  app.post(
    '/senders/:accessKeyId/rotate',
    {
      schema: {
        operationId: 'rotateSenderSecret',
        summary: 'Rotate a sender secret: the answer carries the new secret; the old one works until previousSecretValidUntil',
        description: 'Scope bb:write. Default overlap 24 hours, at most 30 days; a past time revokes the old secret at once.',
        tags,
        security,
        params: senderParams,
        body: senderRotationSchema,
        response: {
          200: ref(senderWithSecretSchema),
          400: { description: 'VALIDATION_FAILED, INVALID_JSON', ...errorRef },
          404: notFoundError,
          409: readOnlyError,
          415: mediaTypeError,
          ...authErrors,
        },
      },
    },
    async (request, reply) => {
      const { accessKeyId } = request.params as { accessKeyId: string };
      requireApiSender(accessKeyId);
      if (!ctx.senderRepo.canStoreSecrets) throw masterKeyRequired();
      const body = validated(() => validateSenderRotation(structuredClone(request.body ?? {}), 'body'));
      const until = body.previousSecretValidUntil ? new Date(body.previousSecretValidUntil) : new Date(Date.now() + DEFAULT_OVERLAP_MS);
      if (until.getTime() > Date.now() + MAX_OVERLAP_MS) {
        throw new AppError(400, 'VALIDATION_FAILED', 'body.previousSecretValidUntil: must be at most 30 days ahead', { field: 'body.previousSecretValidUntil' });
      }
      const secret = generateSenderSecret();
      const rotated = await ctx.senderRepo.rotate(accessKeyId, secret, until);
      if (!rotated) throw notFound(accessKeyId);
      await reload();
      return reply.header('cache-control', 'no-store').send({ ...apiView(rotated), secret });
    },
  );

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(
      `/senders/:accessKeyId/${action}`,
      {
        schema: {
          operationId: disabled ? 'disableSender' : 'enableSender',
          summary: disabled ? 'Disable a sender: its requests are refused (401 UNKNOWN_ACCESS_KEY)' : 'Enable a disabled sender',
          description: 'Scope bb:write. Idempotent.',
          tags,
          security,
          params: senderParams,
          response: { 200: ref(senderRecordSchema), 404: notFoundError, 409: readOnlyError, ...authErrors },
        },
      },
      async (request) => {
        const { accessKeyId } = request.params as { accessKeyId: string };
        requireApiSender(accessKeyId);
        const s = await ctx.senderRepo.setDisabled(accessKeyId, disabled);
        if (!s) throw notFound(accessKeyId);
        await reload();
        return apiView(s);
      },
    );
  }

  app.delete(
    '/senders/:accessKeyId',
    {
      schema: {
        operationId: 'deleteSender',
        summary: 'Delete a sender',
        description: 'Scope bb:write.',
        tags,
        security,
        params: senderParams,
        response: { 204: { type: 'null', description: 'deleted' }, 404: notFoundError, 409: readOnlyError, ...authErrors },
      },
    },
    async (request, reply) => {
      const { accessKeyId } = request.params as { accessKeyId: string };
      requireApiSender(accessKeyId);
      if (!(await ctx.senderRepo.delete(accessKeyId))) throw notFound(accessKeyId);
      await reload();
      return reply.code(204).send();
    },
  );
}
