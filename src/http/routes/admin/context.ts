/** What the admin route modules share: repositories, registries, cursor codec; and the body-error mapping. */
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { SenderDirectory } from '../../../auth/senders.js';
import { ConfigError, ReplicationLoopError } from '../../../config/validate.js';
import type { IntakeLedgerRepo } from '../../../db/intake-ledger-repo.js';
import type { ObjectStatusRepo } from '../../../db/object-status-repo.js';
import type { SenderRepo } from '../../../db/sender-repo.js';
import type { TaskStatusRepo } from '../../../db/task-status-repo.js';
import { AppError } from '../../../errors.js';
import type { TaskRegistry } from '../../../tasks/registry.js';
import type { CursorCodec } from '../../cursor.js';

export interface AdminContext {
  pool: pg.Pool;
  boss: PgBoss;
  tasks: TaskRegistry;
  senders: SenderDirectory;
  senderRepo: SenderRepo;
  statusRepo: TaskStatusRepo;
  objects: ObjectStatusRepo;
  ledger: IntakeLedgerRepo;
  cursors: CursorCodec;
  env: NodeJS.ProcessEnv;
}

/** A body validator's ConfigError as the API's 400: REPLICATION_LOOP or VALIDATION_FAILED, naming the field. */
export function validated<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ReplicationLoopError) throw new AppError(400, 'REPLICATION_LOOP', err.message, { field: err.field });
    if (err instanceof ConfigError) throw new AppError(400, 'VALIDATION_FAILED', err.message, { field: err.field });
    throw err;
  }
}

