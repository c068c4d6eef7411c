/**
 * A failure that has an HTTP meaning and a stable code. Domain modules throw
 * it; http/errors.ts renders it as `{"error":{"code","message"}}`.
 */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}
