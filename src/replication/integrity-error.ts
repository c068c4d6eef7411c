import { StorageError } from '../storage/errors.js';

/** Bytes that do not match what their side promised: the source's digests, or what the destination reports it stored. */
export class IntegrityError extends StorageError {
  constructor(
    readonly side: 'source' | 'destination',
    message: string,
  ) {
    super('IntegrityMismatch', message);
  }
}
