/**
 * Prototype C (bench only): prototype B (enqueue-1-round-trip.mjs) sent as a
 * named prepared statement, so each pooled connection parses and plans the
 * statement once instead of on every request. pg-boss's job INSERT is costly to
 * plan (json_to_recordset, a join on the queue table, a partitioned target).
 */
import { makeEnqueue } from './enqueue-1-round-trip.mjs';

export { findReplay, ReplayError } from './enqueue-1-round-trip.mjs';
export const enqueueReplications = makeEnqueue({ prepared: true });
