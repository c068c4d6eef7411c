/**
 * The one error shape of the HTTP API, `{"error":{"code","message"}}`, and the
 * single place where failures become status codes.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';

export { AppError };

export const errorResponseSchema = {
  $id: 'ErrorResponse',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        field: { type: 'string' },
      },
    },
  },
} as const;

const PG_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);

/** True for errors that mean "the database can't be reached right now". */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && PG_UNAVAILABLE.has(e.code)) return true;
  const msg = e.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)/i.test(
    msg,
  );
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, field?: string): FastifyReply {
  return reply.code(status).type('application/json').send({ error: field ? { code, message, field } : { code, message } });
}

export function errorHandler(err: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof AppError) {
    return sendError(reply, err.statusCode, err.code, err.message, err.details?.field as string | undefined);
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    const first = fe.validation[0];
    const path = first?.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
    const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
    const field = [fe.validationContext, path, missing].filter(Boolean).join('.');
    return sendError(reply, 400, 'VALIDATION_FAILED', `${field}: ${first?.message ?? 'is invalid'}`, field);
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendError(reply, 413, 'BODY_TOO_LARGE', 'request body is larger than the limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'unsupported content type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return sendError(reply, 400, 'INVALID_JSON', 'request body is not valid JSON');
    default:
      break;
  }
  if (isDatabaseUnavailable(err)) {
    request.log.warn({ err }, 'database unavailable');
    return sendError(reply, 503, 'DATABASE_UNAVAILABLE', 'the database is unavailable; retry later');
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return sendError(reply, fe.statusCode, fe.code ?? 'BAD_REQUEST', fe.message);
  }
  request.log.error({ err }, 'unhandled error');
  return sendError(reply, 500, 'INTERNAL', 'internal error');
}
